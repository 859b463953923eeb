//! Where a node keeps its term, vote, snapshot and log. The consensus core
//! never calls storage; the shell's `LogManager` does, on its own thread,
//! executing the core's persist effects.

mod error;
mod fault;
mod hard_state_file;
mod identity_file;
mod log_manager;
mod lost_state;
mod memory;
mod repair;
mod snapshot_file;
mod wal;
/// Public for the simulator's disk, which frames and reads its torn writes
/// with the real encoding and recovery rule; not an API.
#[doc(hidden)]
pub mod wal_format;
#[doc(hidden)]
pub mod wal_recovery;

pub use error::{StorageError, DATA_EXIT_CODE};
pub(crate) use fault::FaultInjectingStorage;
pub use hard_state_file::HARD_STATE_FILE;
pub use log_manager::{write_operations, DiskOperation, DiskReport, Written};
pub(crate) use log_manager::{LogManager, LogManagerHandle, Reopen};
pub use lost_state::check_terms;
pub use memory::MemoryStorage;
pub use repair::{is_repairable, repair_hard_state, set_aside_for_repair, SetAside};
pub use snapshot_file::write_snapshot_temporary;
pub use wal::{WalOptions, WalStorage, RECORD_OVERHEAD_BYTES};

use crate::raft::{Entry, HardState, LogIndex, Snapshot};

/// What a node finds in storage when it starts: the latest snapshot and the
/// entries that follow it (`entries[0].index == snapshot's last index + 1`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveredState {
    /// The term and vote last saved (zero and none for new storage).
    pub hard_state: HardState,
    /// The latest durable snapshot, if any.
    pub snapshot: Option<Snapshot>,
    /// The entries after the snapshot, contiguous and in index order.
    pub entries: Vec<Entry>,
}

/// Durable state behind one interface, so a write-ahead log on disk and an
/// in-memory store are interchangeable. Term and vote are kept apart from
/// entries: they change rarely and must never wait behind a long log write.
/// Writes may be buffered; only `sync` promises durability (group commit).
pub trait Storage: Send {
    /// Reads everything durable, for a node that starts (or restarts after a
    /// storage failure). Returns a [`StorageError`] for damaged or missing data
    /// that the node must not start on, and for I/O failures.
    fn load(&mut self) -> Result<RecoveredState, StorageError>;
    /// Records the term and vote. Promised durable, like every write, once
    /// the next `sync` returns; the shell holds a vote until then (rule 3
    /// in the crate docs).
    fn save_hard_state(&mut self, hard_state: HardState) -> Result<(), StorageError>;
    /// Store `entries`, first removing any stored entry at or after
    /// `entries[0].index`. Entries are contiguous and non-empty.
    fn append_entries(&mut self, entries: &[Entry]) -> Result<(), StorageError>;
    /// Replace the stored snapshot atomically; durable when this returns.
    fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), StorageError>;
    /// Make `snapshot`, already written and synced to `temporary` (see
    /// `write_snapshot_temporary`), the stored snapshot, unless a newer one
    /// is stored; then the file is removed. Durable when this returns.
    fn adopt_snapshot(&mut self, snapshot: &Snapshot, temporary: &std::path::Path) -> Result<(), StorageError>;
    /// Entries up to `through_index` may be dropped (a durable snapshot
    /// covers them). Storage may keep some, e.g. to drop whole files only.
    fn compact(&mut self, through_index: LogIndex) -> Result<(), StorageError>;
    /// Drop every entry; the next append is at `index + 1`, right after the
    /// snapshot just saved.
    fn reset_log(&mut self, index: LogIndex) -> Result<(), StorageError>;
    /// Make every earlier write durable.
    fn sync(&mut self) -> Result<(), StorageError>;
    /// After a failed write or sync: forget whatever was not synced, so that
    /// nothing a failed sync may have lost is later read back as durable.
    fn discard_unsynced(&mut self) -> Result<(), StorageError>;
    /// After a failure: can the disk take writes again? (A full disk that
    /// freed a few bytes should not bring the node back only to fail again.)
    fn probe_space(&mut self) -> Result<(), StorageError>;
    /// Bytes this storage occupies on disk.
    fn disk_bytes(&self) -> u64;
}

/// Raft Figure 13 on recovery: keep only entries that continue the
/// snapshot. Entries it covers are dropped; a log that does not chain from
/// the snapshot's last entry (left by an install that a crash interrupted)
/// is dropped whole, which is safe because by Log Matching none of its
/// entries after the snapshot can be committed. Returns the entries kept and
/// whether the stored log must be reset.
pub fn chain_after_snapshot(snapshot: Option<&Snapshot>, entries: Vec<Entry>) -> (Vec<Entry>, bool) {
    let Some(snapshot) = snapshot else {
        return (entries, false);
    };
    let last_index = snapshot.last_index;
    let first_index = entries.first().map_or(last_index + 1, |entry| entry.index);
    let stored_last_index = entries.last().map_or(first_index - 1, |entry| entry.index);
    let term_at_snapshot = entries.iter().find(|entry| entry.index == last_index).map(|entry| entry.term);
    let chains = first_index <= last_index + 1
        && stored_last_index >= last_index
        && (first_index == last_index + 1 || term_at_snapshot == Some(snapshot.last_term));
    if !chains {
        return (Vec::new(), !entries.is_empty() || first_index != last_index + 1);
    }
    let kept = entries.into_iter().filter(|entry| entry.index > last_index).collect();
    (kept, false)
}
