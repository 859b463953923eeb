//! Storage that lives as long as its owner. The simulator keeps one per node
//! across simulated crashes, so it models a disk; a node process using it
//! (`--data-dir none`) forgets everything when it exits.

use super::{chain_after_snapshot, RecoveredState, Storage, StorageError};
use crate::raft::{Entry, HardState, LogIndex, Snapshot};

/// [`Storage`] in memory: every write is "durable" at once, and everything
/// is lost with the value.
#[derive(Debug, Default, Clone)]
pub struct MemoryStorage {
    hard_state: HardState,
    snapshot: Option<Snapshot>,
    /// Index of the entry before `entries[0]`.
    offset: LogIndex,
    entries: Vec<Entry>,
}

impl MemoryStorage {
    /// Empty storage, as a new data directory.
    pub fn new() -> MemoryStorage {
        MemoryStorage::default()
    }

    /// The term, vote and repair state last saved.
    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }
}

impl Storage for MemoryStorage {
    fn load(&mut self) -> Result<RecoveredState, StorageError> {
        let (entries, must_reset) = chain_after_snapshot(self.snapshot.as_ref(), self.entries.clone());
        if must_reset {
            let index = self.snapshot.as_ref().map_or(0, |snapshot| snapshot.last_index);
            self.reset_log(index)?;
        }
        Ok(RecoveredState { hard_state: self.hard_state, snapshot: self.snapshot.clone(), entries })
    }

    fn save_hard_state(&mut self, hard_state: HardState) -> Result<(), StorageError> {
        assert!(hard_state.current_term >= self.hard_state.current_term, "stored term must not go back");
        self.hard_state = hard_state;
        Ok(())
    }

    fn append_entries(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        let last_index = self.offset + self.entries.len() as LogIndex;
        if first.index <= self.offset || first.index > last_index + 1 {
            return Err(StorageError::AppendOutsideLog {
                index: first.index,
                first_index: self.offset + 1,
                last_index,
            });
        }
        self.entries.truncate((first.index - self.offset - 1) as usize);
        self.entries.extend_from_slice(entries);
        Ok(())
    }

    fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        self.snapshot = Some(snapshot.clone());
        Ok(())
    }

    fn adopt_snapshot(&mut self, snapshot: &Snapshot, temporary: &std::path::Path) -> Result<(), StorageError> {
        let _ = std::fs::remove_file(temporary);
        if self.snapshot.as_ref().is_none_or(|stored| stored.last_index < snapshot.last_index) {
            self.snapshot = Some(snapshot.clone());
        }
        Ok(())
    }

    fn compact(&mut self, through_index: LogIndex) -> Result<(), StorageError> {
        let drop = through_index.saturating_sub(self.offset).min(self.entries.len() as LogIndex);
        self.entries.drain(..drop as usize);
        self.offset += drop;
        Ok(())
    }

    fn reset_log(&mut self, index: LogIndex) -> Result<(), StorageError> {
        self.entries.clear();
        self.offset = index;
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        Ok(())
    }

    fn discard_unsynced(&mut self) -> Result<(), StorageError> {
        Ok(())
    }

    fn probe_space(&mut self) -> Result<(), StorageError> {
        Ok(())
    }

    fn disk_bytes(&self) -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn entry(index: u64, term: u64) -> Entry {
        Entry { term, index, data: vec![index as u8] }
    }

    #[test]
    fn append_replaces_the_suffix() {
        let mut storage = MemoryStorage::new();
        storage.append_entries(&[entry(1, 1), entry(2, 1), entry(3, 1)]).unwrap();
        storage.append_entries(&[entry(2, 2)]).unwrap();
        let state = storage.load().unwrap();
        assert_eq!(state.entries, vec![entry(1, 1), entry(2, 2)]);
    }

    #[test]
    fn append_with_a_gap_is_an_error_not_a_panic() {
        let mut storage = MemoryStorage::new();
        let error = storage.append_entries(&[entry(3, 1)]).unwrap_err();
        assert!(error.detail().contains("outside"), "{error}");
    }

    #[test]
    fn hard_state_is_kept_apart_from_entries() {
        let mut storage = MemoryStorage::new();
        storage.save_hard_state(HardState { current_term: 4, voted_for: Some(2), ..Default::default() }).unwrap();
        storage.append_entries(&[entry(1, 4)]).unwrap();
        let state = storage.load().unwrap();
        assert_eq!(state.hard_state, HardState { current_term: 4, voted_for: Some(2), ..Default::default() });
        assert_eq!(state.entries.len(), 1);
    }

    // Raft §7: after a snapshot and compaction, load returns the snapshot and
    // only the entries after it.
    #[test]
    fn load_after_compaction_returns_the_snapshot_and_what_follows() {
        let mut storage = MemoryStorage::new();
        storage.append_entries(&(1..=6).map(|index| entry(index, 1)).collect::<Vec<_>>()).unwrap();
        let snapshot = Snapshot { last_index: 4, last_term: 1, data: Arc::new(vec![9]) };
        storage.save_snapshot(&snapshot).unwrap();
        storage.compact(3).unwrap();
        let state = storage.load().unwrap();
        assert_eq!(state.snapshot, Some(snapshot));
        assert_eq!(state.entries, vec![entry(5, 1), entry(6, 1)]);
    }
}
