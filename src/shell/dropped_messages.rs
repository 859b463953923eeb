//! Peer messages the core refused as untrustworthy (`Effect::MessageDropped`),
//! logged at most once a second with a count, so a flood of forged or
//! confused frames cannot flood the log.

use std::time::Duration;

use log::warn;

use super::Time;
use crate::raft::NodeId;

const LOG_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct DroppedMessages {
    /// Every message dropped since start.
    pub total: u64,
    /// Dropped since the last log line.
    unlogged: u64,
    last_logged: Option<Time>,
}

impl DroppedMessages {
    pub fn on_dropped(&mut self, from: NodeId, reason: &str, now: Time) {
        self.total += 1;
        self.unlogged += 1;
        if self.last_logged.is_some_and(|at| now.saturating_sub(at) < LOG_INTERVAL) {
            return;
        }
        warn!("dropped {} peer message(s) the core cannot trust; latest from node {from}: {reason}", self.unlogged);
        self.unlogged = 0;
        self.last_logged = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_drop_and_logs_at_most_once_a_second() {
        let mut dropped = DroppedMessages::default();
        dropped.on_dropped(1, "term too far ahead", Duration::ZERO);
        assert_eq!(dropped.unlogged, 0, "the first one is logged");
        dropped.on_dropped(1, "term too far ahead", Duration::from_millis(10));
        dropped.on_dropped(2, "not a member", Duration::from_millis(20));
        assert_eq!((dropped.total, dropped.unlogged), (3, 2));
        dropped.on_dropped(2, "not a member", Duration::from_millis(1500));
        assert_eq!((dropped.total, dropped.unlogged), (4, 0));
    }
}
