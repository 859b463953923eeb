//! Warnings about what arrives from outside (dropped frames and messages,
//! refused connections) come in floods when someone floods: each kind gets
//! at most one log line a second, and the line counts what happened since
//! the previous one. One counter serves the sans-I/O shell, whose time is a
//! `Duration` handed in, and the node's threads, which read an `Instant`.

use std::time::{Duration, Instant};

/// The shortest time between two lines of one kind.
pub(crate) const LINE_INTERVAL: Duration = Duration::from_secs(1);

/// A point in time: an `Instant`, or the shell's time since it started.
pub(crate) trait Moment: Copy {
    /// How long after `earlier` this is (zero if it is not after it).
    fn since(self, earlier: Self) -> Duration;
}

impl Moment for Instant {
    fn since(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

impl Moment for Duration {
    fn since(self, earlier: Duration) -> Duration {
        self.saturating_sub(earlier)
    }
}

/// Occurrences of one kind since its last log line.
#[derive(Debug)]
pub(crate) struct RateLimited<T> {
    last_line: Option<T>,
    since_last_line: u64,
}

impl<T> Default for RateLimited<T> {
    fn default() -> RateLimited<T> {
        RateLimited { last_line: None, since_last_line: 0 }
    }
}

impl<T: Moment> RateLimited<T> {
    /// Count one occurrence at `now`. When a line is due, the number of
    /// occurrences it reports (this one included); otherwise None.
    pub(crate) fn note(&mut self, now: T) -> Option<u64> {
        self.since_last_line += 1;
        if self.last_line.is_some_and(|last| now.since(last) < LINE_INTERVAL) {
            return None;
        }
        let count = self.since_last_line;
        self.last_line = Some(now);
        self.since_last_line = 0;
        Some(count)
    }

    /// Occurrences not reported by a line yet.
    #[cfg(test)]
    pub(crate) fn unreported(&self) -> u64 {
        self.since_last_line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_a_second_counting_what_it_did_not_report() {
        let mut counter = RateLimited::default();
        let at = Duration::from_millis;
        assert_eq!(counter.note(at(0)), Some(1), "the first occurrence is reported");
        for millis in (100..1000).step_by(100) {
            assert_eq!(counter.note(at(millis)), None);
        }
        assert_eq!(counter.unreported(), 9);
        assert_eq!(counter.note(at(1000)), Some(10));
        assert_eq!(counter.unreported(), 0);
        assert_eq!(counter.note(at(500)), None, "a time before the last line is not a second after it");
    }
}
