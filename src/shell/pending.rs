//! Client requests waiting for their log entry to commit, keyed by the
//! (index, term) the leader gave them (raft-rs's five_mem_node, hashicorp's
//! futures). Each one gets exactly one reply: its result, or an error when
//! its deadline passes, leadership is lost or its entry is overwritten.

use std::collections::{BTreeMap, VecDeque};

use serde_json::Value;

use super::input::Envelope;
use super::Time;
use crate::raft::{LogIndex, Term};

#[derive(Debug)]
pub struct PendingRequest {
    pub term: Term,
    pub envelope: Envelope,
    pub id: Option<Value>,
    pub deadline: Time,
}

#[derive(Debug, Default)]
pub struct PendingRequests {
    by_index: BTreeMap<LogIndex, PendingRequest>,
    /// (deadline, index) in registration order; deadlines share one length,
    /// so this is also deadline order.
    expiry_order: VecDeque<(Time, LogIndex)>,
}

impl PendingRequests {
    pub fn insert(&mut self, index: LogIndex, request: PendingRequest) {
        assert!(
            self.expiry_order.back().is_none_or(|(deadline, _)| *deadline <= request.deadline),
            "deadlines must be registered in order"
        );
        self.expiry_order.push_back((request.deadline, index));
        let previous = self.by_index.insert(index, request);
        assert!(previous.is_none(), "two requests wait on index {index}");
    }

    pub fn take(&mut self, index: LogIndex) -> Option<PendingRequest> {
        self.by_index.remove(&index)
    }

    /// Remove and return every request whose deadline has passed.
    pub fn take_expired(&mut self, now: Time) -> Vec<PendingRequest> {
        let mut expired = Vec::new();
        while let Some(&(deadline, index)) = self.expiry_order.front() {
            if deadline > now {
                break;
            }
            self.expiry_order.pop_front();
            expired.extend(self.by_index.remove(&index));
        }
        expired
    }

    /// Remove and return every waiting request (leadership was lost).
    pub fn take_all(&mut self) -> Vec<PendingRequest> {
        self.expiry_order.clear();
        std::mem::take(&mut self.by_index).into_values().collect()
    }

    pub fn next_deadline(&mut self) -> Option<Time> {
        // Skip entries already answered through `take`.
        while let Some(&(_, index)) = self.expiry_order.front() {
            if self.by_index.contains_key(&index) {
                break;
            }
            self.expiry_order.pop_front();
        }
        self.expiry_order.front().map(|(deadline, _)| *deadline)
    }

    pub fn len(&self) -> usize {
        self.by_index.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn request(term: Term, deadline: Time) -> PendingRequest {
        PendingRequest { term, envelope: vec![b"client".to_vec(), vec![]], id: None, deadline }
    }

    #[test]
    fn expires_in_deadline_order_and_skips_answered() {
        let start = Duration::from_secs(7);
        let mut pending = PendingRequests::default();
        pending.insert(1, request(1, start));
        pending.insert(2, request(1, start + Duration::from_millis(5)));
        pending.insert(3, request(1, start + Duration::from_millis(10)));
        assert!(pending.take(1).is_some());
        assert_eq!(pending.next_deadline(), Some(start + Duration::from_millis(5)));
        let expired = pending.take_expired(start + Duration::from_millis(7));
        assert_eq!(expired.len(), 1);
        assert_eq!(pending.len(), 1);
        assert_eq!(pending.take_all().len(), 1);
        assert_eq!(pending.len(), 0);
        assert_eq!(pending.next_deadline(), None);
    }
}
