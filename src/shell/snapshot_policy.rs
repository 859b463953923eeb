//! When to snapshot the state machine: once the log applied since the last
//! snapshot has grown past a threshold of bytes and past the size of the
//! last snapshot, one at a time. The second bound keeps the cost of
//! snapshots in proportion to the log: a snapshot writes the whole state,
//! so with a fixed threshold a large queue (say 1 GB) would be written out
//! again for every 32 MB of log, and the disk would do little else. A
//! failed attempt is retried after another half threshold, not at once.

use crate::storage::RECORD_OVERHEAD_BYTES;

pub struct SnapshotPolicy {
    threshold_bytes: u64,
    /// Log bytes applied since the last snapshot began.
    bytes_since_snapshot: u64,
    /// Size of the last snapshot written.
    last_snapshot_bytes: u64,
    in_progress: bool,
}

impl SnapshotPolicy {
    pub fn new(threshold_bytes: u64) -> SnapshotPolicy {
        assert!(threshold_bytes > 0, "a zero threshold would snapshot every turn");
        SnapshotPolicy { threshold_bytes, bytes_since_snapshot: 0, last_snapshot_bytes: 0, in_progress: false }
    }

    /// An entry of `data_bytes` was applied.
    pub fn on_applied(&mut self, data_bytes: usize) {
        self.bytes_since_snapshot += data_bytes as u64 + RECORD_OVERHEAD_BYTES;
    }

    /// A snapshot from the leader replaced the state: the log starts afresh.
    pub fn on_installed(&mut self) {
        self.bytes_since_snapshot = 0;
    }

    pub fn is_due(&self) -> bool {
        !self.in_progress && self.bytes_since_snapshot >= self.threshold_bytes.max(self.last_snapshot_bytes)
    }

    /// A snapshot of `bytes` was written (the node's own or the leader's).
    pub fn on_written(&mut self, bytes: u64) {
        self.last_snapshot_bytes = bytes;
    }

    pub fn on_started(&mut self) {
        assert!(!self.in_progress, "one snapshot at a time");
        self.in_progress = true;
        self.bytes_since_snapshot = 0;
    }

    /// The snapshot is in place (or storage failed meanwhile, and it was dropped).
    pub fn on_finished(&mut self) {
        self.in_progress = false;
    }

    /// Writing failed: try again after another half threshold of log.
    pub fn on_failed(&mut self) {
        self.in_progress = false;
        self.bytes_since_snapshot = self.threshold_bytes / 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_state_is_snapshotted_only_after_as_much_log() {
        let mut policy = SnapshotPolicy::new(1000);
        policy.on_written(5000);
        policy.on_applied(2000);
        assert!(!policy.is_due(), "1,000 bytes of log would rewrite 5,000 bytes of state");
        policy.on_applied(3000);
        assert!(policy.is_due());
    }

    #[test]
    fn due_after_the_threshold_once_at_a_time_and_retried_later() {
        let mut policy = SnapshotPolicy::new(1000);
        policy.on_applied(900);
        assert!(!policy.is_due());
        policy.on_applied(100);
        assert!(policy.is_due());
        policy.on_started();
        policy.on_applied(5000);
        assert!(!policy.is_due(), "one at a time");
        policy.on_failed();
        assert!(!policy.is_due(), "retried only after half a threshold more");
        policy.on_applied(500);
        assert!(policy.is_due());
    }
}
