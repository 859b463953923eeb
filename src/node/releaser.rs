//! The releaser thread: frees memory the event loop no longer needs and
//! whose freeing would hold up a turn: replaced snapshot images of hundreds
//! of MB, the buffers of compacted entry batches (the entries themselves
//! are freed by the event loop, a bounded number per turn: see
//! `entry_garbage.rs`), and the state copies snapshots were made from.
//! Giving such blocks back to the kernel takes tens of ms and changes the
//! memory map (see `address_space.rs`), which the event loop must not wait
//! for.
//!
//! It runs at the control plane's priority, not below it: freeing takes
//! the allocator's arena locks, which the event loop takes too. A thread
//! preempted while holding one makes the event loop wait until it runs
//! again, and at a lower priority that was measured at 114 ms in a 60 s
//! flood (`docs/benchmarks.md`), more than a heartbeat interval.

use crossbeam_channel::{unbounded, Sender};

use crate::shell::Garbage;

#[derive(Clone)]
pub struct Releaser {
    garbage: Sender<Garbage>,
}

impl Releaser {
    pub fn spawn() -> Result<Releaser, String> {
        let (garbage, received) = unbounded::<Garbage>();
        std::thread::Builder::new()
            .name("releaser".into())
            .spawn(move || {
                // Each value is dropped as soon as it is received.
                for value in received {
                    drop(value);
                }
            })
            .map_err(|error| format!("cannot start the releaser thread: {error}"))?;
        Ok(Releaser { garbage })
    }

    /// Free `value` on the releaser thread (or here, if it is gone).
    pub fn release(&self, value: Garbage) {
        let _ = self.garbage.send(value);
    }
}
