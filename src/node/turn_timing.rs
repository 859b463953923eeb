//! Where a slow turn of the event loop spent its time, for the warning that
//! names it: a turn holds back every heartbeat and vote behind it, and the
//! warning should say which input, or the end of the turn, or sending the
//! outputs, took the time (or that none did: the thread was not running).

use std::time::{Duration, Instant};

/// CPU time this thread has used: a turn far longer in wall time than in
/// CPU time waited for a core (the machine was busy), not for its work.
fn thread_cpu_time() -> Duration {
    let mut spec = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let result = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut spec) };
    if result != 0 {
        return Duration::ZERO;
    }
    Duration::new(u64::try_from(spec.tv_sec).unwrap_or(0), u32::try_from(spec.tv_nsec).unwrap_or(0))
}

/// Times of one turn's parts.
pub struct TurnTiming {
    started: Instant,
    started_cpu: Duration,
    /// Control inputs and client requests taken.
    pub taken: (usize, usize),
    slowest_input: Option<(&'static str, Duration)>,
    end_turn: Duration,
    flush: Duration,
}

impl TurnTiming {
    pub fn start() -> TurnTiming {
        TurnTiming {
            started: Instant::now(),
            started_cpu: thread_cpu_time(),
            taken: (0, 0),
            slowest_input: None,
            end_turn: Duration::ZERO,
            flush: Duration::ZERO,
        }
    }

    /// Time `work`, an input of kind `kind`.
    pub fn input<T>(&mut self, kind: &'static str, work: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let result = work();
        let took = started.elapsed();
        if self.slowest_input.is_none_or(|(_, slowest)| took > slowest) {
            self.slowest_input = Some((kind, took));
        }
        result
    }

    pub fn end_turn<T>(&mut self, work: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let result = work();
        self.end_turn = started.elapsed();
        result
    }

    pub fn flush<T>(&mut self, work: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let result = work();
        self.flush = started.elapsed();
        result
    }

    /// The whole turn so far.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// "slowest input: <kind> <n> ms, end of turn <n> ms, sending outputs
    /// <n> ms, on a core <n> ms" (the last: CPU time, see `thread_cpu_time`).
    pub fn breakdown(&self) -> String {
        let slowest = match self.slowest_input {
            Some((kind, took)) => format!("slowest input: {kind} {} ms", took.as_millis()),
            None => "no input".to_string(),
        };
        let cpu = thread_cpu_time().saturating_sub(self.started_cpu);
        format!(
            "{slowest}, end of turn {} ms, sending outputs {} ms, on a core {} ms",
            self.end_turn.as_millis(),
            self.flush.as_millis(),
            cpu.as_millis()
        )
    }
}
