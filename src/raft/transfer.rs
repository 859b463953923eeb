//! Leadership transfer (Raft dissertation §3.10): the leader stops taking
//! new work, brings the target's log up to its own, then tells it to start
//! an election at once. The transfer is abandoned if it has not finished
//! within an election timeout.

use super::core::{NotLeader, RaftCore};
use super::effect::Effect;
use super::message::{Message, TimeoutNow};
use super::role::RoleState;
use super::types::{NodeId, Repair};

/// Why [`RaftCore::transfer_leadership`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferError {
    /// This node does not lead, or it is already handing leadership over.
    NotLeader(NotLeader),
    /// No such node, or the leader itself.
    InvalidTarget,
}

impl RaftCore {
    /// Hand leadership to node `to`: once its log is the leader's, it is
    /// told to campaign at once. New proposals and reads are refused until
    /// the transfer ends (the leader steps down, or an election timeout
    /// passes and it serves again).
    pub fn transfer_leadership(&mut self, to: NodeId) -> Result<(), TransferError> {
        self.check_serving().map_err(TransferError::NotLeader)?;
        if to >= self.config.node_count || to == self.config.id {
            return Err(TransferError::InvalidTarget);
        }
        if let RoleState::Leader(leader) = &mut self.role {
            leader.transfer_target = Some(to);
        }
        // The leader's election timer bounds the transfer.
        self.effects.push(Effect::ResetElectionTimer);
        self.continue_transfer();
        Ok(())
    }

    /// The follower whose log is furthest along: the one to hand over to.
    pub fn best_transfer_target(&self) -> Option<NodeId> {
        let RoleState::Leader(leader) = &self.role else {
            return None;
        };
        leader
            .progress
            .iter()
            .max_by_key(|(peer, progress)| (progress.match_index, std::cmp::Reverse(**peer)))
            .map(|(peer, _)| *peer)
    }

    /// The follower leadership is being handed to, if a transfer is under way.
    pub fn transfer_target(&self) -> Option<NodeId> {
        match &self.role {
            RoleState::Leader(leader) => leader.transfer_target,
            _ => None,
        }
    }

    /// Send TimeoutNow once the target holds the whole log; until then,
    /// keep replicating to it.
    pub(super) fn continue_transfer(&mut self) {
        let RoleState::Leader(leader) = &self.role else {
            return;
        };
        let Some(target) = leader.transfer_target else {
            return;
        };
        let caught_up = leader.progress.get(&target).is_some_and(|p| p.match_index == self.log.last_index());
        if caught_up {
            let request = TimeoutNow { term: self.hard_state.current_term, leader: self.config.id };
            self.send(target, Message::TimeoutNow(request));
        } else {
            self.send_append(target, false);
        }
    }

    /// Raft dissertation §3.10: only the leader of our term may tell us to
    /// campaign. A stale one (an earlier term) is ignored; one in our term
    /// from any other node, or sent to a leader, cannot be honest.
    pub(super) fn on_timeout_now(&mut self, from: NodeId, request: TimeoutNow) {
        if request.term != self.hard_state.current_term {
            return;
        }
        if matches!(self.role, RoleState::Leader(_)) || self.term_leader != Some(from) {
            self.drop_message(from, "TimeoutNow from a node not known to lead this term");
            return;
        }
        if self.hard_state.repair != Repair::Intact {
            return; // never campaigns while repairing; the transfer times out
        }
        self.start_election(true);
    }
}
