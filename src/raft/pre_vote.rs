//! PreVote (Raft dissertation §9.6): before raising its term, a node asks
//! whether a majority would vote for it. A node that was cut off, whose
//! peers still hear from their leader, is refused, and so never disrupts
//! that leader by forcing a higher term on the cluster.

use super::core::RaftCore;
use super::effect::Effect;
use super::message::{Message, RequestVote, RequestVoteResponse};
use super::role::{RoleState, Votes};
use super::types::{NodeId, Repair};

impl RaftCore {
    pub(super) fn start_pre_vote(&mut self) {
        assert_eq!(self.hard_state.repair, Repair::Intact, "a repairing node never campaigns");
        let Some(asked_term) = self.next_term() else {
            self.effects.push(Effect::ResetElectionTimer);
            return; // at the term ceiling: never wrap around
        };
        let me = self.config.id;
        self.role = RoleState::PreCandidate(Votes::for_self(me));
        self.effects.push(Effect::ResetElectionTimer);
        self.announce_role();
        if self.quorum.is_reached(1) {
            self.start_election(false);
            return;
        }
        let request = RequestVote {
            term: asked_term,
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
            && self.hard_state.repair == Repair::Intact
            && self.leader().is_none()
            && self.log.is_up_to_date(request.last_log_index, request.last_log_term);
        // A grant names the term asked about; a refusal names ours, so a
        // pre-candidate behind the cluster's term learns it.
        let term = if grant { request.term } else { current_term };
        self.send(from, Message::PreVoteResponse(RequestVoteResponse { term, vote_granted: grant }));
    }

    pub(super) fn on_pre_vote_response(&mut self, from: NodeId, response: RequestVoteResponse) {
        let asked_term = self.next_term();
        let RoleState::PreCandidate(votes) = &mut self.role else {
            return;
        };
        if !response.vote_granted || Some(response.term) != asked_term {
            return;
        }
        votes.granted.insert(from);
        if self.quorum.is_reached(votes.granted.len()) {
            self.start_election(false);
        }
    }
}
