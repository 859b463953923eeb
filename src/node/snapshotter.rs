//! The snapshot thread: encodes a copy of the state machine and writes it,
//! synced, to a temporary file, so neither the event loop (heartbeats) nor
//! the LogManager (log fsyncs) waits while a large snapshot is made. The
//! LogManager then puts the file in place, in order with the log's writes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{unbounded, Sender};
use log::{error, info};

use super::releaser::Releaser;
use crate::raft::Snapshot;
use crate::shell::{Garbage, Input, SnapshotJob, SnapshotWritten};
use crate::storage::write_snapshot_temporary;

pub struct Snapshotter {
    jobs: Sender<SnapshotJob>,
}

impl Snapshotter {
    /// `releaser` frees each job's state copy: see `write`.
    pub fn spawn(directory: PathBuf, inputs: Sender<Input>, releaser: Releaser) -> Result<Snapshotter, String> {
        let (jobs, receiver) = unbounded::<SnapshotJob>();
        std::thread::Builder::new()
            .name("snapshotter".into())
            .spawn(move || {
                super::thread_priority::lower_current_thread(super::thread_priority::SNAPSHOT_WRITER_NICENESS);
                for job in receiver {
                    let outcome = write(&directory, job, &releaser);
                    if inputs.send(Input::SnapshotWritten(outcome)).is_err() {
                        return;
                    }
                }
            })
            .map_err(|error| format!("cannot start the snapshot thread: {error}"))?;
        Ok(Snapshotter { jobs })
    }

    pub fn submit(&self, job: SnapshotJob) {
        // Fails only if the thread is gone, which cannot happen before exit.
        let _ = self.jobs.send(job);
    }
}

/// Encode and write `job`. Its state copy is freed by the releaser, at the
/// control plane's priority: freeing it returns the nodes the live state
/// has replaced since, which takes the allocator's locks (see
/// `releaser.rs`), and this thread runs below that priority.
fn write(directory: &std::path::Path, job: SnapshotJob, releaser: &Releaser) -> SnapshotWritten {
    let started = Instant::now();
    let data = Arc::new(job.queue.encode_snapshot());
    releaser.drop_later(Garbage::StateCopy(Box::new(job.queue)));
    let snapshot = Snapshot { last_index: job.last_index, last_term: job.last_term, data };
    match write_snapshot_temporary(directory, &snapshot) {
        Ok(path) => {
            info!(
                "snapshot through index {} written ({} bytes, {} ms)",
                snapshot.last_index,
                snapshot.data.len(),
                started.elapsed().as_millis()
            );
            Ok((snapshot, path))
        }
        Err(failure) => {
            error!("cannot write a snapshot: {failure}; the log keeps growing until one succeeds");
            Err(failure.detail())
        }
    }
}
