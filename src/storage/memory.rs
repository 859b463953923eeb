//! Storage that lives as long as its owner. The simulator keeps one per node
//! across simulated crashes, so it models a disk; a node process using it
//! forgets everything when it exits.

use super::{RecoveredState, Storage, StorageError};
use crate::raft::{Entry, HardState};

#[derive(Debug, Default, Clone)]
pub struct MemoryStorage {
    hard_state: HardState,
    entries: Vec<Entry>,
}

impl MemoryStorage {
    pub fn new() -> MemoryStorage {
        MemoryStorage::default()
    }
}

impl Storage for MemoryStorage {
    fn load(&mut self) -> Result<RecoveredState, StorageError> {
        Ok(RecoveredState { hard_state: self.hard_state, entries: self.entries.clone() })
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
        let keep = (first.index - 1) as usize;
        if keep > self.entries.len() {
            return Err(StorageError {
                detail: format!("append at index {} leaves a gap after {}", first.index, self.entries.len()),
            });
        }
        self.entries.truncate(keep);
        self.entries.extend_from_slice(entries);
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
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
        assert!(error.detail.contains("gap"), "{}", error.detail);
    }

    #[test]
    fn hard_state_is_kept_apart_from_entries() {
        let mut storage = MemoryStorage::new();
        storage.save_hard_state(HardState { current_term: 4, voted_for: Some(2) }).unwrap();
        storage.append_entries(&[entry(1, 4)]).unwrap();
        let state = storage.load().unwrap();
        assert_eq!(state.hard_state, HardState { current_term: 4, voted_for: Some(2) });
        assert_eq!(state.entries.len(), 1);
    }
}
