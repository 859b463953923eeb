//! Log replication: Raft §5.3, commitment §5.4.2, and the leader's pipeline.

use super::core::RaftCore;
use super::effect::Effect;
use super::message::{AppendEntries, AppendEntriesResponse, Message};
use super::progress::ReplicationState;
use super::role::RoleState;
use super::types::{LogIndex, NodeId, Term};

impl RaftCore {
    pub(super) fn on_heartbeat_timeout(&mut self) {
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        for progress in leader.progress.values_mut() {
            progress.on_heartbeat();
        }
        self.effects.push(Effect::ResetHeartbeatTimer);
        let peers: Vec<NodeId> = self.peers().collect();
        for peer in peers {
            // Always send something: it asserts leadership and, through the
            // log check, exposes anything lost since the last reply.
            self.send_append(peer, true);
        }
    }

    /// Send new entries to every follower the pipeline window allows.
    pub(super) fn broadcast_append(&mut self) {
        let peers: Vec<NodeId> = self.peers().collect();
        for peer in peers {
            self.send_append(peer, false);
        }
        // A cluster of one commits as soon as its own disk has the entry.
        self.maybe_advance_commit();
    }

    /// Send `peer` an AppendEntries from its next index. Without `force`, only
    /// when there are entries to carry and the flow-control window is open.
    pub(super) fn send_append(&mut self, peer: NodeId, force: bool) {
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        let Some(progress) = leader.progress.get_mut(&peer) else {
            return;
        };
        let next_index = progress.next_index;
        // Raft §7: entries the follower needs were compacted into a snapshot.
        if progress.state == ReplicationState::Snapshot || next_index < self.log.first_index() {
            self.send_snapshot(peer, force);
            return;
        }
        let has_entries = next_index <= self.log.last_index();
        let window_open = progress.can_send(self.config.max_inflight_messages);
        if !(force || has_entries && window_open) {
            return;
        }
        let entries = if has_entries && window_open {
            self.log.slice(next_index, self.config.max_entries_per_message, self.config.max_bytes_per_message)
        } else {
            Vec::new()
        };
        let prev_log_index = next_index - 1;
        let prev_log_term = self.log.term_at(prev_log_index).expect("next_index stays within the log");
        if let Some(last) = entries.last() {
            progress.on_entries_sent(last.index);
        }
        let message = AppendEntries {
            term: self.hard_state.current_term,
            leader: self.config.id,
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit: self.commit_index,
            read_round: self.read_round,
        };
        self.send(peer, Message::AppendEntries(message));
    }

    pub(super) fn on_append_entries(&mut self, from: NodeId, request: AppendEntries) {
        let term = self.hard_state.current_term;
        if request.term < term {
            // Raft §5.1: reject a stale leader; our term in the reply deposes it.
            let rejection = Rejection { index: request.prev_log_index, conflict_index: 0, conflict_term: None };
            self.respond_append(from, request.read_round, Err(rejection));
            return;
        }
        // on_message raised our term to the request's first.
        if let Err(reason) = self.check_claimed_leadership(request.leader) {
            self.drop_message(from, reason);
            return;
        }
        if self.leader() != Some(request.leader) {
            self.become_follower(term, Some(request.leader));
        }
        self.effects.push(Effect::ResetElectionTimer);
        self.accept_entries(from, request);
    }

    /// Raft §5.2 (Election Safety): at most one leader per term. A node that
    /// leads, or that knows another leader of this term, cannot trust a
    /// message from `leader` claiming the same term.
    pub(super) fn check_claimed_leadership(&self, leader: NodeId) -> Result<(), &'static str> {
        if matches!(self.role, RoleState::Leader(_)) {
            return Err("a second leader in this node's own term");
        }
        if self.term_leader.is_some_and(|known| known != leader) {
            return Err("a second leader in a term whose leader is known");
        }
        Ok(())
    }

    /// Raft §5.3: check the log matches at prev_log_index, then reconcile.
    fn accept_entries(&mut self, from: NodeId, mut request: AppendEntries) {
        let compacted_through = self.log.first_index() - 1;
        if request.prev_log_index < compacted_through {
            // Entries up to the compaction point are committed and held in
            // the snapshot: they match. Continue from the compaction point.
            request.entries.retain(|entry| entry.index > compacted_through);
            request.prev_log_index = compacted_through;
            request.prev_log_term = self.log.term_at(compacted_through).expect("the compaction point has a term");
        }
        let prev_log_index = request.prev_log_index;
        let read_round = request.read_round;
        match self.log.term_at(prev_log_index) {
            None => {
                let conflict_index = self.log.last_index() + 1;
                let rejection = Rejection { index: prev_log_index, conflict_index, conflict_term: None };
                self.respond_append(from, read_round, Err(rejection));
                return;
            }
            Some(held) if held != request.prev_log_term => {
                let conflict_index = self.log.first_index_of_term(held, prev_log_index);
                let rejection = Rejection { index: prev_log_index, conflict_index, conflict_term: Some(held) };
                self.respond_append(from, read_round, Err(rejection));
                return;
            }
            Some(_) => {}
        }
        // Entries are contiguous from prev_log_index + 1 and contradict no
        // entry held here (checked on arrival, in validation.rs).
        let last_new_index = prev_log_index + request.entries.len() as LogIndex;
        let mut appended = Vec::new();
        for entry in request.entries {
            match self.log.term_at(entry.index) {
                Some(held) if held == entry.term => continue, // already have it
                Some(_) => {
                    // Raft §5.3: a conflicting entry and all that follow it
                    // go (never a committed one: checked on arrival).
                    self.log.truncate_from(entry.index);
                    self.persisted_index = self.persisted_index.min(entry.index - 1);
                }
                None => {}
            }
            self.log.append(entry.clone());
            appended.push(entry);
        }
        if !appended.is_empty() {
            self.effects.push(Effect::PersistEntries(appended));
        }
        // Figure 2: commitIndex = min(leaderCommit, index of last new entry).
        let commit_index = request.leader_commit.min(last_new_index);
        self.set_commit_index(commit_index);
        self.maybe_finish_repair();
        self.respond_append(from, read_round, Ok(last_new_index));
    }

    /// Answer an AppendEntries: Ok(last index now matching), or the rejection.
    fn respond_append(&mut self, to: NodeId, read_round: u64, outcome: Result<LogIndex, Rejection>) {
        let (success, index, conflict_index, conflict_term) = match outcome {
            Ok(index) => (true, index, 0, None),
            Err(rejection) => (false, rejection.index, rejection.conflict_index, rejection.conflict_term),
        };
        let term = self.hard_state.current_term;
        let response = AppendEntriesResponse { term, success, index, conflict_index, conflict_term, read_round };
        self.send(to, Message::AppendEntriesResponse(response));
    }

    pub(super) fn on_append_entries_response(&mut self, from: NodeId, response: AppendEntriesResponse) {
        let last_index = self.log.last_index();
        let read_round = self.read_round;
        let RoleState::Leader(leader) = &mut self.role else {
            return; // a reply to an earlier term's request
        };
        if response.term != self.hard_state.current_term {
            return; // a reply to an earlier term's request
        }
        if response.success && response.index > last_index {
            self.drop_message(from, "acknowledges entries this leader does not hold");
            return;
        }
        let Some(progress) = leader.progress.get_mut(&from) else {
            return; // check_message admits members only, and a leader tracks them all
        };
        progress.recent_active = true;
        // Any reply in this term, success or not, shows the follower still
        // took us for its leader when it read the message.
        if response.read_round > progress.acked_read_round {
            progress.acked_read_round = response.read_round.min(read_round);
            self.confirm_reads();
        }
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        let Some(progress) = leader.progress.get_mut(&from) else {
            return;
        };
        if progress.state == ReplicationState::Snapshot {
            return; // replies to entries sent before the snapshot began
        }
        if response.success {
            if progress.on_success(response.index) {
                self.maybe_advance_commit();
            }
            if self.transfer_target() == Some(from) {
                self.continue_transfer();
                return;
            }
        } else {
            if response.index >= progress.next_index {
                return; // stale: we already backed off below this probe
            }
            let next_index = self.next_index_after_rejection(&response);
            if let RoleState::Leader(leader) = &mut self.role {
                if let Some(progress) = leader.progress.get_mut(&from) {
                    progress.on_rejection(next_index);
                }
            }
        }
        self.send_append(from, false);
    }

    /// Fast backtracking: skip a whole conflicting term per round trip.
    /// (Below: `Rejection` is what a follower's refusal carries.)
    fn next_index_after_rejection(&self, response: &AppendEntriesResponse) -> LogIndex {
        let hinted = match response.conflict_term {
            Some(term) => match self.log.last_index_of_term(term) {
                Some(index) => index + 1,
                None => response.conflict_index,
            },
            None => response.conflict_index,
        };
        // Never above the rejected probe; never index 0.
        hinted.min(response.index).max(1)
    }

    pub(super) fn on_log_persisted(&mut self, index: LogIndex, term: Term) {
        // Entries may have been replaced since the write began; only count
        // what is still the log's content.
        if self.log.term_at(index) != Some(term) || index <= self.persisted_index {
            return;
        }
        self.persisted_index = index;
        self.maybe_advance_commit();
        self.maybe_finish_repair();
    }

    /// Raft §5.3, §5.4.2: commit the highest index a majority holds durably,
    /// counting replicas only for an entry of the current term (Figure 8).
    pub(super) fn maybe_advance_commit(&mut self) {
        let RoleState::Leader(leader) = &self.role else {
            return;
        };
        let matched = leader.progress.values().map(|progress| progress.match_index);
        let candidate = self.quorum.agreed_value(matched.chain([self.persisted_index]));
        if candidate > self.commit_index && self.log.term_at(candidate) == Some(self.hard_state.current_term) {
            self.set_commit_index(candidate);
        }
    }
}

/// Why a follower refused an AppendEntries, for the leader's backtracking.
struct Rejection {
    /// The prev_log_index that was refused.
    index: LogIndex,
    conflict_index: LogIndex,
    conflict_term: Option<Term>,
}
