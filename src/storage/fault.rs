//! A test switch for disk faults, read from a flag file on every operation.
//! Enabled only by the node's hidden `--inject-disk-faults <flag file>`
//! option, so process tests can fault one node of a live cluster and heal it:
//! - no file: storage works;
//! - `slow <ms>`: every sync takes that much longer (a slow disk);
//! - anything else: every write and sync fails as a full disk does (ENOSPC).

use std::path::PathBuf;

use super::{RecoveredState, Storage, StorageError};
use crate::raft::{Entry, HardState, LogIndex, Snapshot};

/// The storage operations a fault can hit.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Operation {
    WriteHardState,
    AppendEntries,
    WriteSnapshot,
    AdoptSnapshot,
    ResetLog,
    Sync,
    DiscardUnsynced,
    ProbeSpace,
}

impl Operation {
    /// What the operation does, for the error text: "cannot <this>".
    fn describe(self) -> &'static str {
        match self {
            Operation::WriteHardState => "write the hard state",
            Operation::AppendEntries => "append entries",
            Operation::WriteSnapshot => "write the snapshot",
            Operation::AdoptSnapshot => "put the snapshot in place",
            Operation::ResetLog => "reset the log",
            Operation::Sync => "sync the log",
            Operation::DiscardUnsynced => "truncate the log",
            Operation::ProbeSpace => "probe for free space",
        }
    }
}

/// Wraps a [`Storage`] and fails its operations while a flag file says so
/// (the module docs give the flag's contents), with
/// [`StorageError::InjectedFull`], so tests can fault a live node and heal it.
pub struct FaultInjectingStorage {
    inner: Box<dyn Storage>,
    flag: PathBuf,
}

impl FaultInjectingStorage {
    /// Wraps `inner`; `flag` is read on every operation, so creating, changing
    /// or removing it takes effect at once.
    pub fn new(inner: Box<dyn Storage>, flag: PathBuf) -> FaultInjectingStorage {
        FaultInjectingStorage { inner, flag }
    }

    fn check(&self, operation: Operation) -> Result<(), StorageError> {
        let Ok(flag) = std::fs::read_to_string(&self.flag) else {
            return Ok(());
        };
        if let Some(delay_ms) = flag.trim().strip_prefix("slow ").and_then(|ms| ms.parse::<u64>().ok()) {
            if operation == Operation::Sync {
                std::thread::sleep(std::time::Duration::from_millis(delay_ms));
            }
            return Ok(());
        }
        Err(StorageError::InjectedFull { operation: operation.describe(), flag: self.flag.clone() })
    }
}

impl Storage for FaultInjectingStorage {
    fn load(&mut self) -> Result<RecoveredState, StorageError> {
        self.inner.load()
    }

    fn save_hard_state(&mut self, hard_state: HardState) -> Result<(), StorageError> {
        self.check(Operation::WriteHardState)?;
        self.inner.save_hard_state(hard_state)
    }

    fn append_entries(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        self.check(Operation::AppendEntries)?;
        self.inner.append_entries(entries)
    }

    fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        self.check(Operation::WriteSnapshot)?;
        self.inner.save_snapshot(snapshot)
    }

    fn adopt_snapshot(&mut self, snapshot: &Snapshot, temporary: &std::path::Path) -> Result<(), StorageError> {
        self.check(Operation::AdoptSnapshot)?;
        self.inner.adopt_snapshot(snapshot, temporary)
    }

    fn compact(&mut self, through_index: LogIndex) -> Result<(), StorageError> {
        self.inner.compact(through_index)
    }

    fn reset_log(&mut self, index: LogIndex) -> Result<(), StorageError> {
        self.check(Operation::ResetLog)?;
        self.inner.reset_log(index)
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        self.check(Operation::Sync)?;
        self.inner.sync()
    }

    fn discard_unsynced(&mut self) -> Result<(), StorageError> {
        self.check(Operation::DiscardUnsynced)?;
        self.inner.discard_unsynced()
    }

    fn probe_space(&mut self) -> Result<(), StorageError> {
        self.check(Operation::ProbeSpace)?;
        self.inner.probe_space()
    }

    fn disk_bytes(&self) -> u64 {
        self.inner.disk_bytes()
    }
}
