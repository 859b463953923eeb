//! The LogManager owns a node's durable log on a thread of its own, so the
//! event loop, and with it heartbeats and the election timer, never waits
//! behind a write or an fsync.
//!
//! Group commit: the event loop submits one batch of operations per turn;
//! the LogManager takes every batch that is waiting, writes them all, syncs
//! once, and reports what became durable. Batches that arrive while an
//! fsync runs share the next one.
//!
//! A failed write or sync is never retried as if nothing happened: the
//! LogManager reports the failure, cuts the log back to what the last good
//! sync covered, and reopens the storage from disk once it can. Batches of
//! the failed epoch are dropped; the event loop rebuilds its consensus state
//! from what the reopened storage holds, as after a crash.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError, Sender};
use log::{error, info, warn};

use super::{RecoveredState, Storage, StorageError};
use crate::raft::{Entry, HardState, LogIndex, Snapshot, Term};

/// How often a failed LogManager tries to get its storage back.
const RECOVERY_INTERVAL: Duration = Duration::from_millis(500);

/// One write the shell asks of the disk. A batch of them runs in order, and
/// is durable once a report says so (rules 2 and 6 in the crate docs).
#[derive(Debug)]
pub enum DiskOperation {
    /// Save the term and vote.
    HardState(HardState),
    /// Append entries, replacing any stored entry at or after the first one's
    /// index.
    Entries(Vec<Entry>),
    /// A snapshot of this node's own state machine, written and synced to a
    /// temporary file by the snapshot thread; put in place, reported durable.
    AdoptSnapshot {
        /// The snapshot, as the core knows it.
        snapshot: Snapshot,
        /// The file the snapshot thread wrote and synced the image to.
        temporary: std::path::PathBuf,
    },
    /// A snapshot from the leader: saved, then the log after it is kept
    /// (`log_kept`) or the whole log is dropped.
    InstallSnapshot {
        /// The leader's snapshot, as received.
        snapshot: Snapshot,
        /// Whether the stored log continues the snapshot and is kept.
        log_kept: bool,
    },
    /// Drop stored entries through this index; a durable snapshot covers them.
    Compact(LogIndex),
}

struct DiskBatch {
    epoch: u64,
    sequence: u64,
    operations: Vec<DiskOperation>,
}

/// What the LogManager tells the event loop, in the order it happened.
#[derive(Debug)]
pub enum DiskReport {
    /// Every batch up to `sequence` is durable.
    Durable {
        /// The epoch the batches belong to.
        epoch: u64,
        /// The last batch now durable, in the shell's numbering.
        sequence: u64,
        /// The log's last entry after these batches, if they changed it.
        last_entry: Option<(LogIndex, Term)>,
        /// This node's own snapshot, if one was put in place.
        saved_snapshot: Option<Snapshot>,
        /// Bytes the storage occupies on disk after these batches.
        disk_bytes: u64,
        /// Syncs done so far: writes per sync shows what group commit saves.
        syncs: u64,
    },
    /// Writes of this epoch failed; nothing after the last report is durable.
    Failed {
        /// The storage error, without its "storage error: " prefix.
        detail: String,
    },
    /// Storage works again; `state` is what it durably holds. Batches must
    /// now carry `epoch`.
    Recovered {
        /// The new epoch; batches of earlier epochs are dropped.
        epoch: u64,
        /// Everything the reopened storage durably holds.
        state: RecoveredState,
        /// Bytes the storage occupies on disk.
        disk_bytes: u64,
    },
}

/// What a run of operations changed, for the durability report.
#[derive(Debug, Default)]
pub struct Written {
    /// The log's last entry after these operations, if they changed it.
    pub last_entry: Option<(LogIndex, Term)>,
    /// This node's own snapshot, put in place.
    pub saved_snapshot: Option<Snapshot>,
}

/// Execute operations in order on `storage` (not synced). The LogManager's
/// thread and the simulator's disk both write through this.
pub fn write_operations(
    storage: &mut dyn Storage,
    operations: impl IntoIterator<Item = DiskOperation>,
) -> Result<Written, StorageError> {
    let mut written = Written::default();
    for operation in operations {
        match operation {
            DiskOperation::HardState(hard_state) => storage.save_hard_state(hard_state)?,
            DiskOperation::Entries(entries) => {
                storage.append_entries(&entries)?;
                written.last_entry = entries.last().map(|entry| (entry.index, entry.term));
            }
            DiskOperation::AdoptSnapshot { snapshot, temporary } => {
                storage.adopt_snapshot(&snapshot, &temporary)?;
                written.saved_snapshot = Some(snapshot);
            }
            DiskOperation::InstallSnapshot { snapshot, log_kept } => {
                storage.save_snapshot(&snapshot)?;
                if log_kept {
                    storage.compact(snapshot.last_index)?;
                } else {
                    storage.reset_log(snapshot.last_index)?;
                    written.last_entry = Some((snapshot.last_index, snapshot.last_term));
                }
            }
            DiskOperation::Compact(through_index) => storage.compact(through_index)?,
        }
    }
    Ok(written)
}

/// Opens the storage again after a failure.
pub type Reopen = Box<dyn FnMut() -> Result<Box<dyn Storage>, StorageError> + Send>;

/// The event loop's side: submit batches the shell numbered, and wait for
/// the thread on exit.
pub struct LogManagerHandle {
    batches: Option<Sender<DiskBatch>>,
    thread: Option<JoinHandle<()>>,
}

impl LogManagerHandle {
    /// Queue operations to run in order, as batch `sequence` of `epoch`
    /// (the shell's numbering; a batch of an epoch a failure ended is dropped).
    pub fn submit(&mut self, epoch: u64, sequence: u64, operations: Vec<DiskOperation>) {
        assert!(!operations.is_empty(), "an empty batch would only cost a sync");
        if let Some(batches) = &self.batches {
            // Fails only if the thread is gone, which its report has said.
            let _ = batches.send(DiskBatch { epoch, sequence, operations });
        }
    }

    /// Let the thread finish what it has and stop.
    pub fn close(&mut self) {
        self.batches = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The disk thread: it owns the node's [`Storage`], writes the batches the
/// event loop submits, group-commits them, and reports through a callback.
pub struct LogManager {
    storage: Option<Box<dyn Storage>>,
    reopen: Reopen,
    batches: Receiver<DiskBatch>,
    report: Box<dyn Fn(DiskReport) + Send>,
    epoch: u64,
    syncs: u64,
}

impl LogManager {
    /// Start the LogManager's thread over `storage` (already loaded).
    pub fn spawn(
        storage: Box<dyn Storage>,
        reopen: Reopen,
        report: Box<dyn Fn(DiskReport) + Send>,
    ) -> Result<LogManagerHandle, String> {
        let (sender, batches) = unbounded();
        let manager = LogManager { storage: Some(storage), reopen, batches, report, epoch: 0, syncs: 0 };
        let thread = std::thread::Builder::new()
            .name("log-manager".into())
            .spawn(move || manager.run())
            .map_err(|error| format!("cannot start the log manager thread: {error}"))?;
        Ok(LogManagerHandle { batches: Some(sender), thread: Some(thread) })
    }

    fn run(mut self) {
        while let Ok(first) = self.batches.recv() {
            let mut group: Vec<DiskBatch> = std::iter::once(first).chain(self.batches.try_iter()).collect();
            group.retain(|batch| batch.epoch == self.epoch);
            if group.is_empty() {
                continue;
            }
            match self.write_group(group) {
                Ok(report) => (self.report)(report),
                Err(failure) => {
                    if !self.fail_and_recover(failure) {
                        return;
                    }
                }
            }
        }
    }

    /// Write every batch of the group, then sync once.
    fn write_group(&mut self, group: Vec<DiskBatch>) -> Result<DiskReport, StorageError> {
        let storage = self.storage.as_mut().expect("a working LogManager has storage");
        let sequence = group.last().expect("non-empty group").sequence;
        let written = write_operations(storage.as_mut(), group.into_iter().flat_map(|batch| batch.operations))?;
        storage.sync()?;
        self.syncs += 1;
        let disk_bytes = storage.disk_bytes();
        Ok(DiskReport::Durable {
            epoch: self.epoch,
            sequence,
            last_entry: written.last_entry,
            saved_snapshot: written.saved_snapshot,
            disk_bytes,
            syncs: self.syncs,
        })
    }

    /// Report the failure, then retry until the storage is back. Returns
    /// false if the event loop went away meanwhile.
    fn fail_and_recover(&mut self, failure: StorageError) -> bool {
        error!("{failure}; this node refuses writes until its storage works again");
        self.epoch += 1;
        (self.report)(DiskReport::Failed { detail: failure.detail() });
        let started = Instant::now();
        let mut last_problem = failure.detail();
        loop {
            match self.batches.recv_timeout(RECOVERY_INTERVAL) {
                Ok(_) => continue, // a batch of the failed epoch: dropped
                Err(RecvTimeoutError::Disconnected) => return false,
                Err(RecvTimeoutError::Timeout) => {}
            }
            match self.try_recover() {
                Ok((state, disk_bytes)) => {
                    info!("storage works again after {:.1} s", started.elapsed().as_secs_f64());
                    (self.report)(DiskReport::Recovered { epoch: self.epoch, state, disk_bytes });
                    return true;
                }
                Err(problem) if problem.detail() != last_problem => {
                    warn!("storage still failing: {problem}");
                    last_problem = problem.detail();
                }
                Err(_) => {}
            }
        }
    }

    fn try_recover(&mut self) -> Result<(RecoveredState, u64), StorageError> {
        if let Some(storage) = self.storage.as_mut() {
            storage.discard_unsynced()?;
        }
        self.storage = None; // closes its files and releases the directory lock
        let mut storage = (self.reopen)()?;
        storage.probe_space()?;
        let state = storage.load()?;
        let disk_bytes = storage.disk_bytes();
        self.storage = Some(storage);
        Ok((state, disk_bytes))
    }
}
