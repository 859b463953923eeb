//! The LogManager owns a node's durable log. It executes the core's persist
//! effects, batching writes so that one `sync` covers everything written
//! since the last one, and says what became durable.

use super::{RecoveredState, Storage, StorageError};
use crate::raft::{Entry, HardState, LogIndex, Term};

pub struct LogManager {
    storage: Box<dyn Storage>,
    /// Last entry written but not yet synced: what a sync will make durable.
    unsynced_last: Option<(LogIndex, Term)>,
    hard_state_unsynced: bool,
}

impl LogManager {
    pub fn new(storage: Box<dyn Storage>) -> LogManager {
        LogManager { storage, unsynced_last: None, hard_state_unsynced: false }
    }

    pub fn load(&mut self) -> Result<RecoveredState, StorageError> {
        self.storage.load()
    }

    pub fn save_hard_state(&mut self, hard_state: HardState) -> Result<(), StorageError> {
        self.storage.save_hard_state(hard_state)?;
        self.hard_state_unsynced = true;
        Ok(())
    }

    pub fn append_entries(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        let Some(last) = entries.last() else {
            return Ok(());
        };
        self.storage.append_entries(entries)?;
        self.unsynced_last = Some((last.index, last.term));
        Ok(())
    }

    fn has_unsynced_writes(&self) -> bool {
        self.unsynced_last.is_some() || self.hard_state_unsynced
    }

    /// Sync everything written so far. Returns the last entry now durable, if
    /// entries were written since the previous sync.
    pub fn sync(&mut self) -> Result<Option<(LogIndex, Term)>, StorageError> {
        if !self.has_unsynced_writes() {
            return Ok(None);
        }
        self.storage.sync()?;
        self.hard_state_unsynced = false;
        Ok(self.unsynced_last.take())
    }
}
