//! Where a node keeps its term, vote and log. The consensus core never calls
//! storage; the shell's `LogManager` does, executing the core's effects.

mod log_manager;
mod memory;
mod wal;

pub use log_manager::LogManager;
pub use memory::MemoryStorage;
pub use wal::{WalOptions, WalStorage};

use std::fmt;

use crate::raft::{Entry, HardState};

/// What a node finds in storage when it starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveredState {
    pub hard_state: HardState,
    pub entries: Vec<Entry>,
}

#[derive(Debug)]
pub struct StorageError {
    pub detail: String,
}

impl fmt::Display for StorageError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "storage error: {}", self.detail)
    }
}

impl std::error::Error for StorageError {}

/// Durable state behind one interface, so a write-ahead log on disk and an
/// in-memory store are interchangeable. Term and vote are kept apart from
/// entries: they change rarely and must never wait behind a long log write.
/// Writes may be buffered; only `sync` promises durability (group commit).
pub trait Storage: Send {
    fn load(&mut self) -> Result<RecoveredState, StorageError>;
    fn save_hard_state(&mut self, hard_state: HardState) -> Result<(), StorageError>;
    /// Store `entries`, first removing any stored entry at or after
    /// `entries[0].index`. Entries are contiguous and non-empty.
    fn append_entries(&mut self, entries: &[Entry]) -> Result<(), StorageError>;
    /// Make every earlier write durable.
    fn sync(&mut self) -> Result<(), StorageError>;
}
