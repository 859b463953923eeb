//! The releaser thread: frees memory the event loop no longer needs
//! (entries dropped by log compaction, which can number in the millions),
//! so the event loop, and with it heartbeats, never waits for the
//! allocator. It runs at the lowest priority of the node's threads.

use crossbeam_channel::{unbounded, Sender};

use crate::raft::Entry;

pub struct Releaser {
    garbage: Sender<Vec<Entry>>,
}

impl Releaser {
    pub fn spawn() -> Result<Releaser, String> {
        let (garbage, received) = unbounded::<Vec<Entry>>();
        std::thread::Builder::new()
            .name("releaser".into())
            .spawn(move || {
                super::thread_priority::lower_current_thread(super::thread_priority::SNAPSHOT_WRITER_NICENESS);
                // Each value is dropped as soon as it is received.
                for entries in received {
                    drop(entries);
                }
            })
            .map_err(|error| format!("cannot start the releaser thread: {error}"))?;
        Ok(Releaser { garbage })
    }

    /// Free `entries` on the releaser thread (or here, if it is gone).
    pub fn release(&self, entries: Vec<Entry>) {
        let _ = self.garbage.send(entries);
    }
}
