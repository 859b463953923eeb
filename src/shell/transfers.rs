//! `transfer_leader` requests waiting to see leadership move (Raft
//! dissertation §3.10). Each gets exactly one answer: success once the
//! target leads; an error once another node leads, this node takes
//! leadership back, or the deadline passes.

use super::input::TransferRequest;
use super::Time;
use crate::protocol::{ErrorCode, ReplyBody};
use crate::queue::QueueReply;
use crate::raft::NodeId;

#[derive(Default)]
pub struct Transfers {
    waiting: Vec<(TransferRequest, Time)>,
}

impl Transfers {
    pub fn add(&mut self, request: TransferRequest, deadline: Time) {
        self.waiting.push((request, deadline));
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    pub fn next_deadline(&self) -> Option<Time> {
        self.waiting.iter().map(|(_, deadline)| *deadline).min()
    }

    /// Answer what can be answered given who leads now (`leader`, which on
    /// a leader is itself) and whether a handover is still under way. While
    /// the target's election runs (no leader known) requests wait, unless
    /// the node is `closing`.
    pub fn settle(
        &mut self,
        leader: Option<NodeId>,
        transferring: bool,
        now: Time,
        closing: bool,
    ) -> Vec<(TransferRequest, ReplyBody)> {
        let mut answered = Vec::new();
        for (request, deadline) in std::mem::take(&mut self.waiting) {
            let body = match leader {
                Some(leader) if leader == request.to => ReplyBody::Queue(QueueReply::Done),
                _ if now >= deadline || closing => {
                    let detail = format!("leadership did not move to node {} in time", request.to);
                    ReplyBody::error(ErrorCode::Timeout, detail)
                }
                Some(other) if !transferring => {
                    let detail = format!("leadership went to node {other}, not node {}", request.to);
                    ReplyBody::error(ErrorCode::Timeout, detail)
                }
                _ => {
                    self.waiting.push((request, deadline));
                    continue;
                }
            };
            answered.push((request, body));
        }
        answered
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn request(to: NodeId) -> TransferRequest {
        TransferRequest { envelope: vec![vec![to as u8]], id: None, to }
    }

    #[test]
    fn answers_once_the_target_leads_or_time_runs_out() {
        let mut transfers = Transfers::default();
        transfers.add(request(1), Duration::from_millis(600));
        transfers.add(request(2), Duration::from_millis(600));
        assert!(transfers.settle(None, false, Duration::from_millis(10), false).is_empty(), "election under way");
        let answered = transfers.settle(Some(1), false, Duration::from_millis(20), false);
        assert_eq!(answered.len(), 2);
        assert_eq!(answered[0].1, ReplyBody::Queue(QueueReply::Done));
        assert!(matches!(answered[1].1, ReplyBody::Error { code: ErrorCode::Timeout, .. }));
        transfers.add(request(2), Duration::from_millis(600));
        assert!(transfers.settle(Some(0), true, Duration::from_millis(30), false).is_empty(), "handing over");
        assert_eq!(transfers.settle(None, false, Duration::from_millis(600), false).len(), 1, "deadline");
        assert!(transfers.is_empty());
    }
}
