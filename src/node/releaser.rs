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

use crate::deferred_drop::DeferredDrop;

/// The releaser: values given to `drop_later` are freed on its thread.
pub type Releaser = DeferredDrop;

/// Start the releaser thread.
pub fn spawn() -> Result<Releaser, String> {
    DeferredDrop::start("releaser").map_err(|error| format!("cannot start the releaser thread: {error}"))
}
