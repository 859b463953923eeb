//! The shell's three timers on its own clock: the randomized election
//! timeout, the leader's heartbeat, and the lease (the shortest election
//! timeout, after which a follower stops counting on a silent leader).
//! The randomness comes from a seeded ChaCha stream, so a simulation
//! replays exactly and a recorded seed keeps replaying across crate
//! versions.
//!
//! A starved process must not mistake its own silence for the leader's.
//! When this node wakes long after a timer was due (the machine did not
//! run it), the inputs that arrived meanwhile may still sit unread in the
//! listeners' queues: an election or a step-down decided now would be
//! decided on no evidence. So a timer found overdue by more than the
//! stall tolerance is re-armed instead of fired. Delaying an election is
//! always safe; it costs liveness only while this node itself is starved.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::timer::Timer;
use super::Time;
use crate::raft::Event;

/// Timeouts, with the election range randomized per reset (Raft §5.2).
#[derive(Debug, Clone)]
pub struct TimerSettings {
    /// Shortest election timeout; also the lease.
    pub election_timeout_min: Duration,
    /// Longest election timeout.
    pub election_timeout_max: Duration,
    /// The leader's heartbeat interval.
    pub heartbeat_interval: Duration,
    /// How late a timer may fire before it counts as a stall of this node.
    pub stall_tolerance: Duration,
}

pub struct Timers {
    settings: TimerSettings,
    election: Timer,
    heartbeat: Timer,
    lease: Timer,
    random: ChaCha8Rng,
    /// Timers re-armed because this node itself had stalled.
    pub stalls: u64,
}

impl Timers {
    pub fn new(settings: TimerSettings, seed: u64) -> Timers {
        assert!(settings.election_timeout_min <= settings.election_timeout_max, "election timeout range is empty");
        Timers {
            settings,
            election: Timer::default(),
            heartbeat: Timer::default(),
            lease: Timer::default(),
            random: ChaCha8Rng::seed_from_u64(seed),
            stalls: 0,
        }
    }

    /// Effect::ResetElectionTimer: a fresh randomized election timeout, and
    /// the lease at the shortest one.
    pub fn reset_election(&mut self, now: Time) {
        let range = self.settings.election_timeout_min.as_micros() as u64
            ..=self.settings.election_timeout_max.as_micros() as u64;
        let timeout = Duration::from_micros(self.random.gen_range(range));
        self.election.reset(now, timeout);
        self.lease.reset(now, self.settings.election_timeout_min);
    }

    /// Effect::ResetHeartbeatTimer.
    pub fn reset_heartbeat(&mut self, now: Time) {
        self.heartbeat.reset(now, self.settings.heartbeat_interval);
    }

    /// Storage failed: the node takes no part until it recovers.
    pub fn cancel_all(&mut self) {
        self.election.cancel();
        self.heartbeat.cancel();
        self.lease.cancel();
    }

    pub fn next_deadline(&self) -> Option<Time> {
        [self.election.deadline(), self.heartbeat.deadline(), self.lease.deadline()].into_iter().flatten().min()
    }

    /// The events of every timer due at `now`, in a fixed order. An
    /// election or lease timer overdue by more than the stall tolerance is
    /// re-armed instead (see the module docs); heartbeats always go out.
    pub fn fire_due(&mut self, now: Time, events: &mut Vec<Event>) {
        let stalled = |timer: &Timer| timer.deadline().is_some_and(|due| now > due + self.settings.stall_tolerance);
        if stalled(&self.election) || stalled(&self.lease) {
            self.stalls += 1;
            self.reset_election(now);
        }
        if self.election.fire_if_due(now) {
            events.push(Event::ElectionTimeout);
        }
        if self.heartbeat.fire_if_due(now) {
            events.push(Event::HeartbeatTimeout);
        }
        if self.lease.fire_if_due(now) {
            events.push(Event::LeaseTimeout);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> TimerSettings {
        TimerSettings {
            election_timeout_min: Duration::from_millis(150),
            election_timeout_max: Duration::from_millis(300),
            heartbeat_interval: Duration::from_millis(50),
            stall_tolerance: Duration::from_millis(100),
        }
    }

    #[test]
    fn the_same_seed_draws_the_same_timeouts() {
        let deadlines = |seed| {
            let mut timers = Timers::new(settings(), seed);
            (0..5)
                .map(|_| {
                    timers.reset_election(Duration::ZERO);
                    timers.election.deadline().expect("armed")
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(deadlines(7), deadlines(7));
        assert_ne!(deadlines(7), deadlines(8));
        assert!(deadlines(7).iter().all(|d| *d >= Duration::from_millis(150) && *d <= Duration::from_millis(300)));
    }

    #[test]
    fn a_timer_found_long_overdue_is_rearmed_not_fired() {
        let mut timers = Timers::new(settings(), 1);
        timers.reset_election(Duration::ZERO);
        let mut events = Vec::new();
        // The lease (150 ms) is overdue by far more than 100 ms: this node stalled.
        timers.fire_due(Duration::from_millis(700), &mut events);
        assert!(events.is_empty(), "a stalled node decides nothing: {events:?}");
        assert_eq!(timers.stalls, 1);
        timers.fire_due(Duration::from_millis(860), &mut events);
        assert_eq!(events, vec![Event::LeaseTimeout], "on time after the re-arm, the lease fires");
    }

    #[test]
    fn heartbeats_fire_even_when_late() {
        let mut timers = Timers::new(settings(), 1);
        timers.reset_heartbeat(Duration::ZERO);
        let mut events = Vec::new();
        timers.fire_due(Duration::from_secs(5), &mut events);
        assert_eq!(events, vec![Event::HeartbeatTimeout]);
    }
}
