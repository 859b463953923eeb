//! Leader election: Raft §5.2 and the voting restriction of §5.4.1.

use super::core::RaftCore;
use super::effect::Effect;
use super::message::{Message, RequestVote, RequestVoteResponse};
use super::role::{RoleState, Votes};
use super::types::{Entry, NodeId, Repair};

impl RaftCore {
    pub(super) fn on_election_timeout(&mut self) {
        if let RoleState::Leader(leader) = &mut self.role {
            leader.transfer_target = None; // the transfer did not finish in time
            if self.config.check_quorum {
                self.check_quorum();
            }
            return;
        }
        if self.hard_state.repair != Repair::Intact {
            self.on_election_timeout_while_repairing();
        } else if self.config.pre_vote {
            self.start_pre_vote();
        } else {
            self.start_election(false);
        }
    }

    /// The shortest election timeout passed with no word from the leader:
    /// stop counting on it, so votes and pre-votes are granted at once
    /// (otherwise a failover waits for the second-fastest node's timer).
    pub(super) fn on_lease_timeout(&mut self) {
        if let RoleState::Follower(follower) = &mut self.role {
            if follower.leader.take().is_some() {
                self.announce_role();
            }
        }
    }

    /// Once per election timeout: step down unless a majority (counting this
    /// leader) replied since the last check.
    fn check_quorum(&mut self) {
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        let active = 1 + leader.progress.values().filter(|progress| progress.recent_active).count();
        for progress in leader.progress.values_mut() {
            progress.recent_active = false;
        }
        if self.quorum.is_reached(active) {
            self.effects.push(Effect::ResetElectionTimer);
        } else {
            self.become_follower(self.hard_state.current_term, None);
        }
    }

    /// Raft §5.2: raise the term, vote for ourselves, ask everyone.
    /// `leadership_transfer` when the leader asked us to (TimeoutNow).
    pub(super) fn start_election(&mut self, leadership_transfer: bool) {
        assert_eq!(self.hard_state.repair, Repair::Intact, "a repairing node never campaigns");
        let Some(term) = self.next_term() else {
            self.effects.push(Effect::ResetElectionTimer);
            return; // at the term ceiling: never wrap around
        };
        let me = self.config.id;
        self.set_term(term, Some(me));
        self.role = RoleState::Candidate(Votes::for_self(me));
        self.effects.push(Effect::ResetElectionTimer);
        self.announce_role();
        if self.quorum.is_reached(1) {
            self.become_leader();
            return;
        }
        let request = RequestVote {
            term,
            candidate: me,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
            leadership_transfer,
        };
        let peers: Vec<NodeId> = self.peers().collect();
        for peer in peers {
            self.send(peer, Message::RequestVote(request.clone()));
        }
    }

    pub(super) fn on_request_vote(&mut self, from: NodeId, request: RequestVote) {
        let term = self.hard_state.current_term;
        let free_to_vote = match self.hard_state.voted_for {
            None => self.leader().is_none(),
            Some(voted) => voted == request.candidate,
        };
        // A repairing node's vote could break a promise it lost (repair.rs).
        let grant = request.term == term
            && self.hard_state.repair == Repair::Intact
            && free_to_vote
            && self.log.is_up_to_date(request.last_log_index, request.last_log_term);
        if grant {
            if self.hard_state.voted_for.is_none() {
                self.hard_state.voted_for = Some(request.candidate);
                self.effects.push(Effect::PersistHardState(self.hard_state));
            }
            self.effects.push(Effect::ResetElectionTimer);
        }
        self.send(from, Message::RequestVoteResponse(RequestVoteResponse { term, vote_granted: grant }));
    }

    pub(super) fn on_request_vote_response(&mut self, from: NodeId, response: RequestVoteResponse) {
        let RoleState::Candidate(votes) = &mut self.role else {
            return;
        };
        if response.term != self.hard_state.current_term || !response.vote_granted {
            return;
        }
        votes.granted.insert(from);
        if self.quorum.is_reached(votes.granted.len()) {
            self.become_leader();
        }
    }

    /// Raft §5.2, §8: take office, then append a no-op so entries of earlier
    /// terms can commit (Figure 8) and followers learn who leads.
    fn become_leader(&mut self) {
        let RoleState::Candidate(votes) = &self.role else {
            unreachable!("only a candidate wins an election");
        };
        assert!(self.quorum.is_reached(votes.granted.len()), "leader without a quorum of votes");
        let next_index = self.log.last_index() + 1;
        self.become_leader_state(next_index);
        self.announce_role();
        self.effects.push(Effect::ResetHeartbeatTimer);
        let noop = Entry { term: self.hard_state.current_term, index: next_index, data: Vec::new() };
        self.log.append(noop.clone());
        self.effects.push(Effect::PersistEntries(vec![noop]));
        self.broadcast_append();
    }
}
