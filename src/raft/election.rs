//! Leader election: Raft §5.2 and the voting restriction of §5.4.1.

use super::core::RaftCore;
use super::effect::Effect;
use super::message::{Message, RequestVote, RequestVoteResponse};
use super::progress::Progress;
use super::types::{Entry, HardState, NodeId, Role};

impl RaftCore {
    pub(super) fn on_election_timeout(&mut self) {
        if self.role == Role::Leader {
            self.abort_transfer();
            if self.config.check_quorum {
                self.check_quorum();
            }
            return;
        }
        if self.config.pre_vote {
            self.start_pre_vote();
        } else {
            self.start_election(false);
        }
    }

    /// The shortest election timeout passed with no word from the leader:
    /// stop counting on it, so votes and pre-votes are granted at once
    /// (otherwise a failover waits for the second-fastest node's timer).
    pub(super) fn on_lease_timeout(&mut self) {
        if self.role == Role::Follower && self.leader.is_some() {
            self.leader = None;
            self.announce_role();
        }
    }

    /// Once per election timeout: step down unless a majority (counting this
    /// leader) replied since the last check.
    fn check_quorum(&mut self) {
        let active = 1 + self.progress.values().filter(|progress| progress.recent_active).count();
        for progress in self.progress.values_mut() {
            progress.recent_active = false;
        }
        if active >= self.quorum() {
            self.effects.push(Effect::ResetElectionTimer);
        } else {
            self.become_follower(self.hard_state.current_term, None);
        }
    }

    /// Raft §5.2: raise the term, vote for ourselves, ask everyone.
    /// `leadership_transfer` when the leader asked us to (TimeoutNow).
    pub(super) fn start_election(&mut self, leadership_transfer: bool) {
        let me = self.config.id;
        self.hard_state = HardState { current_term: self.hard_state.current_term + 1, voted_for: Some(me) };
        self.role = Role::Candidate;
        self.leader = None;
        self.votes.clear();
        self.votes.insert(me);
        self.effects.push(Effect::PersistHardState(self.hard_state));
        self.effects.push(Effect::ResetElectionTimer);
        self.announce_role();
        if self.votes.len() >= self.quorum() {
            self.become_leader();
            return;
        }
        let request = RequestVote {
            term: self.hard_state.current_term,
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
            None => self.leader.is_none(),
            Some(voted) => voted == request.candidate,
        };
        let grant = request.term == term
            && request.candidate == from
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
        if self.role != Role::Candidate || response.term != self.hard_state.current_term {
            return;
        }
        if response.vote_granted {
            self.votes.insert(from);
            if self.votes.len() >= self.quorum() {
                self.become_leader();
            }
        }
    }

    /// Raft §5.2, §8: take office, then append a no-op so entries of earlier
    /// terms can commit (Figure 8) and followers learn who leads.
    pub(super) fn become_leader(&mut self) {
        assert_eq!(self.role, Role::Candidate, "only a candidate wins an election");
        assert!(self.votes.len() >= self.quorum(), "leader without a quorum of votes");
        self.role = Role::Leader;
        self.leader = Some(self.config.id);
        let next_index = self.log.last_index() + 1;
        let peers: Vec<NodeId> = self.peers().collect();
        for peer in peers {
            self.progress.insert(peer, Progress::new(next_index));
        }
        self.announce_role();
        self.effects.push(Effect::ResetHeartbeatTimer);
        self.term_start_index = next_index;
        let noop = Entry { term: self.hard_state.current_term, index: next_index, data: Vec::new() };
        self.log.append(noop.clone());
        self.effects.push(Effect::PersistEntries(vec![noop]));
        self.broadcast_append();
    }
}
