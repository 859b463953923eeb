//! When to snapshot the state machine: once the log applied since the last
//! snapshot has grown past a threshold of bytes, and one at a time. A
//! failed attempt is retried after another half threshold, not at once.

use crate::storage::RECORD_OVERHEAD_BYTES;

pub struct SnapshotPolicy {
    threshold_bytes: u64,
    /// Log bytes applied since the last snapshot began.
    bytes_since_snapshot: u64,
    in_progress: bool,
}

impl SnapshotPolicy {
    pub fn new(threshold_bytes: u64) -> SnapshotPolicy {
        assert!(threshold_bytes > 0, "a zero threshold would snapshot every turn");
        SnapshotPolicy { threshold_bytes, bytes_since_snapshot: 0, in_progress: false }
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
        !self.in_progress && self.bytes_since_snapshot >= self.threshold_bytes
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
