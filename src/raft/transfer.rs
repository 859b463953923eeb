//! Leadership transfer (Raft dissertation §3.10): the leader stops taking
//! new work, brings the target's log up to its own, then tells it to start
//! an election at once. The transfer is abandoned if it has not finished
//! within an election timeout.

use super::core::{NotLeader, RaftCore};
use super::effect::Effect;
use super::message::{Message, TimeoutNow};
use super::types::{NodeId, Role};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferError {
    NotLeader(NotLeader),
    /// No such node, or the leader itself.
    InvalidTarget,
}

impl RaftCore {
    pub fn transfer_leadership(&mut self, to: NodeId) -> Result<(), TransferError> {
        self.check_serving().map_err(TransferError::NotLeader)?;
        if to >= self.config.node_count || to == self.config.id {
            return Err(TransferError::InvalidTarget);
        }
        self.transfer_target = Some(to);
        // The leader's election timer bounds the transfer.
        self.effects.push(Effect::ResetElectionTimer);
        self.continue_transfer();
        Ok(())
    }

    /// The follower whose log is furthest along: the one to hand over to.
    pub fn best_transfer_target(&self) -> Option<NodeId> {
        if self.role != Role::Leader {
            return None;
        }
        self.progress
            .iter()
            .max_by_key(|(peer, progress)| (progress.match_index, std::cmp::Reverse(**peer)))
            .map(|(peer, _)| *peer)
    }

    /// The follower leadership is being handed to, if a transfer is under way.
    pub fn transfer_target(&self) -> Option<NodeId> {
        self.transfer_target
    }

    /// Send TimeoutNow once the target holds the whole log; until then,
    /// keep replicating to it.
    pub(super) fn continue_transfer(&mut self) {
        let Some(target) = self.transfer_target else {
            return;
        };
        let progress = &self.progress[&target];
        if progress.match_index == self.log.last_index() {
            let request = TimeoutNow { term: self.hard_state.current_term, leader: self.config.id };
            self.send(target, Message::TimeoutNow(request));
        } else {
            self.send_append(target, false);
        }
    }

    pub(super) fn abort_transfer(&mut self) {
        self.transfer_target = None;
    }

    pub(super) fn on_timeout_now(&mut self, from: NodeId, request: TimeoutNow) {
        let from_our_leader = request.term == self.hard_state.current_term && request.leader == from;
        if from_our_leader && self.role != Role::Leader {
            self.start_election(true);
        }
    }
}
