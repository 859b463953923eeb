//! What a leader knows about one follower's log (Raft Figure 2's nextIndex and
//! matchIndex), plus the flow control that lets it pipeline AppendEntries.

use std::collections::VecDeque;

use super::types::{LogIndex, Snapshot};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicationState {
    /// Where the follower's log diverges is unknown: one message at a time.
    Probe,
    /// The follower is known to match up to `match_index`: send optimistically
    /// up to the in-flight window (etcd's MaxInflightMsgs).
    Replicate,
    /// The entries the follower needs were compacted away: the leader is
    /// streaming its snapshot, one chunk at a time.
    Snapshot,
}

/// Heartbeat intervals without progress after which the leader resends the
/// snapshot chunk it is waiting on (its own retransmission timeout).
pub const SNAPSHOT_RESEND_HEARTBEATS: u32 = 4;

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
    /// Highest ReadIndex round the follower answered in this term.
    pub acked_read_round: u64,
    /// In Snapshot: which snapshot is being sent and how far the follower got.
    pub snapshot_index: LogIndex,
    /// In Snapshot: the snapshot being streamed. Kept until the follower
    /// has it even when the leader saves a newer one meanwhile: restarting
    /// the stream at every new snapshot would never finish a transfer that
    /// takes longer than the log takes to reach the next snapshot.
    pub streamed_snapshot: Option<Snapshot>,
    pub snapshot_acked_bytes: u64,
    /// In Snapshot: heartbeats since the follower last reported progress.
    pub snapshot_idle_heartbeats: u32,
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
            acked_read_round: 0,
            snapshot_index: 0,
            streamed_snapshot: None,
            snapshot_acked_bytes: 0,
            snapshot_idle_heartbeats: 0,
        }
    }

    pub fn can_send(&self, max_inflight: usize) -> bool {
        match self.state {
            ReplicationState::Probe => !self.probe_sent,
            ReplicationState::Replicate => self.inflight.len() < max_inflight,
            ReplicationState::Snapshot => false,
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
            ReplicationState::Snapshot => unreachable!("no entries are sent while a snapshot is streamed"),
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
        if self.state != ReplicationState::Replicate {
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

impl Progress {
    /// Start streaming `snapshot` from byte 0.
    pub fn begin_snapshot(&mut self, snapshot: Snapshot) {
        self.state = ReplicationState::Snapshot;
        self.snapshot_index = snapshot.last_index;
        self.streamed_snapshot = Some(snapshot);
        self.snapshot_acked_bytes = 0;
        self.snapshot_idle_heartbeats = 0;
        self.inflight.clear();
        self.probe_sent = false;
    }

    /// The follower holds the snapshot: replicate entries after it.
    pub fn on_snapshot_installed(&mut self, snapshot_index: LogIndex) {
        assert_eq!(self.state, ReplicationState::Snapshot, "only a streamed snapshot completes");
        self.match_index = self.match_index.max(snapshot_index);
        self.next_index = snapshot_index + 1;
        self.state = ReplicationState::Probe;
        self.streamed_snapshot = None;
        self.probe_sent = false;
    }
}
