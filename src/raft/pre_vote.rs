//! PreVote (Raft dissertation §9.6): before raising its term, a node asks
//! whether a majority would vote for it. A node that was cut off, whose
//! peers still hear from their leader, is refused, and so never disrupts
//! that leader by forcing a higher term on the cluster.

use super::core::RaftCore;
use super::effect::Effect;
use super::message::{Message, RequestVote, RequestVoteResponse};
use super::types::{NodeId, Role};

impl RaftCore {
    pub(super) fn start_pre_vote(&mut self) {
        let me = self.config.id;
        self.role = Role::PreCandidate;
        self.leader = None;
        self.votes.clear();
        self.votes.insert(me);
        self.effects.push(Effect::ResetElectionTimer);
        self.announce_role();
        if self.votes.len() >= self.quorum() {
            self.start_election(false);
            return;
        }
        let request = RequestVote {
            term: self.hard_state.current_term + 1,
            candidate: me,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
            leadership_transfer: false,
        };
        let peers: Vec<NodeId> = self.peers().collect();
        for peer in peers {
            self.send(peer, Message::PreVote(request.clone()));
        }
    }

    /// Grant when we would vote for the candidate in its next term: its log
    /// is up to date (§5.4.1) and we have no leader we still hear from.
    pub(super) fn on_pre_vote(&mut self, from: NodeId, request: RequestVote) {
        let current_term = self.hard_state.current_term;
        let grant = request.term > current_term
            && request.candidate == from
            && self.role != Role::Leader
            && self.leader.is_none()
            && self.log.is_up_to_date(request.last_log_index, request.last_log_term);
        // A grant names the term asked about; a refusal names ours, so a
        // pre-candidate behind the cluster's term learns it.
        let term = if grant { request.term } else { current_term };
        self.send(from, Message::PreVoteResponse(RequestVoteResponse { term, vote_granted: grant }));
    }

    pub(super) fn on_pre_vote_response(&mut self, from: NodeId, response: RequestVoteResponse) {
        let asked_term = self.hard_state.current_term + 1;
        if self.role != Role::PreCandidate || !response.vote_granted || response.term != asked_term {
            return;
        }
        self.votes.insert(from);
        if self.votes.len() >= self.quorum() {
            self.start_election(false);
        }
    }
}
