//! What a leader knows about one follower's log (Raft Figure 2's nextIndex and
//! matchIndex), plus the flow control that lets it pipeline AppendEntries.

use std::collections::VecDeque;

use super::types::LogIndex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicationState {
    /// Where the follower's log diverges is unknown: one message at a time.
    Probe,
    /// The follower is known to match up to `match_index`: send optimistically
    /// up to the in-flight window (etcd's MaxInflightMsgs).
    Replicate,
}

#[derive(Debug, Clone)]
pub struct Progress {
    pub next_index: LogIndex,
    pub match_index: LogIndex,
    pub state: ReplicationState,
    /// Last index carried by each unacknowledged message, oldest first.
    inflight: VecDeque<LogIndex>,
    /// In Probe, a message is out and we wait for its reply or a heartbeat.
    probe_sent: bool,
    /// The follower replied since the leader's last quorum check.
    pub recent_active: bool,
}

impl Progress {
    pub fn new(next_index: LogIndex) -> Progress {
        Progress {
            next_index,
            match_index: 0,
            state: ReplicationState::Probe,
            inflight: VecDeque::new(),
            probe_sent: false,
            recent_active: false,
        }
    }

    pub fn can_send(&self, max_inflight: usize) -> bool {
        match self.state {
            ReplicationState::Probe => !self.probe_sent,
            ReplicationState::Replicate => self.inflight.len() < max_inflight,
        }
    }

    /// Record a message carrying entries up to `last_index`.
    pub fn on_entries_sent(&mut self, last_index: LogIndex) {
        match self.state {
            ReplicationState::Probe => self.probe_sent = true,
            ReplicationState::Replicate => {
                self.next_index = last_index + 1;
                self.inflight.push_back(last_index);
            }
        }
    }

    /// The follower matches up to `index`. Returns true if that was news.
    pub fn on_success(&mut self, index: LogIndex) -> bool {
        let advanced = index > self.match_index;
        if advanced {
            self.match_index = index;
        }
        self.next_index = self.next_index.max(index + 1);
        while self.inflight.front().is_some_and(|&last| last <= index) {
            self.inflight.pop_front();
        }
        if self.state == ReplicationState::Probe {
            self.state = ReplicationState::Replicate;
            self.inflight.clear();
        }
        self.probe_sent = false;
        advanced
    }

    /// The follower rejected; go back to probing from `next_index`. A hint at
    /// or below the known match means the follower's log shrank (it restarted
    /// without durable storage) or the reply is a reordered stale one: either
    /// way, forgetting the match is safe (commit never moves back) and lets
    /// the follower be re-verified and refilled.
    pub fn on_rejection(&mut self, next_index: LogIndex) {
        assert!(next_index >= 1, "log indices start at 1");
        self.next_index = next_index;
        self.match_index = self.match_index.min(next_index - 1);
        self.state = ReplicationState::Probe;
        self.inflight.clear();
        self.probe_sent = false;
    }

    /// A heartbeat interval passed: let a stalled probe try again.
    pub fn on_heartbeat(&mut self) {
        self.probe_sent = false;
    }
}
