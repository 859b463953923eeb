//! A resettable deadline on the shell's clock. Firing one becomes an event
//! for the core, which never reads a clock itself.

use std::time::Duration;

use super::Time;

#[derive(Debug, Default)]
pub struct Timer {
    deadline: Option<Time>,
}

impl Timer {
    pub fn reset(&mut self, now: Time, after: Duration) {
        self.deadline = Some(now + after);
    }

    pub fn cancel(&mut self) {
        self.deadline = None;
    }

    pub fn deadline(&self) -> Option<Time> {
        self.deadline
    }

    /// True once the deadline has passed; the timer then stays disarmed
    /// until the next reset.
    pub fn fire_if_due(&mut self, now: Time) -> bool {
        match self.deadline {
            Some(deadline) if deadline <= now => {
                self.deadline = None;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_once_per_reset() {
        let now = Duration::from_millis(3);
        let mut timer = Timer::default();
        assert!(!timer.fire_if_due(now));
        timer.reset(now, Duration::from_millis(10));
        assert!(!timer.fire_if_due(now + Duration::from_millis(9)));
        assert!(timer.fire_if_due(now + Duration::from_millis(10)));
        assert!(!timer.fire_if_due(now + Duration::from_millis(20)));
    }
}
