//! Peer messages the core refused as untrustworthy (`Effect::MessageDropped`),
//! logged at most once a second with a count, so a flood of forged or
//! confused frames cannot flood the log.

use log::warn;

use super::Time;
use crate::raft::NodeId;
use crate::rate_limited::RateLimited;

#[derive(Default)]
pub struct DroppedMessages {
    /// Every message dropped since start.
    pub total: u64,
    log_lines: RateLimited<Time>,
}

impl DroppedMessages {
    pub fn on_dropped(&mut self, from: NodeId, reason: &str, now: Time) {
        self.total += 1;
        if let Some(dropped) = self.log_lines.note(now) {
            warn!("dropped {dropped} peer message(s) the core cannot trust; latest from node {from}: {reason}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn counts_every_drop_and_logs_at_most_once_a_second() {
        let mut dropped = DroppedMessages::default();
        dropped.on_dropped(1, "term too far ahead", Duration::ZERO);
        assert_eq!(dropped.log_lines.unreported(), 0, "the first one is logged");
        dropped.on_dropped(1, "term too far ahead", Duration::from_millis(10));
        dropped.on_dropped(2, "not a member", Duration::from_millis(20));
        assert_eq!((dropped.total, dropped.log_lines.unreported()), (3, 2));
        dropped.on_dropped(2, "not a member", Duration::from_millis(1500));
        assert_eq!((dropped.total, dropped.log_lines.unreported()), (4, 0));
    }
}
