//! Entries dropped by log compaction, freed by the event loop a bounded
//! number per turn.
//!
//! Compaction drops a snapshot's worth of entries at once: millions in a
//! flood. Freed in one turn they would hold up the heartbeats for hundreds
//! of ms. Freed on another thread, they were freed in one burst that
//! competed with the event loop for the two cores and for the allocator's
//! arena locks, right when every node had just put a snapshot in place.
//! Freed here a bounded number per turn, the work is spread over the turns
//! and no other thread holds a lock the event loop waits for because of it.

use std::collections::VecDeque;

use crate::raft::Entry;

/// Entries freed per turn at most: about a millisecond of work.
pub const ENTRIES_FREED_PER_TURN: usize = 16_384;

/// Batches of entries waiting to be freed, oldest first.
#[derive(Default)]
pub struct EntryGarbage {
    batches: VecDeque<Vec<Entry>>,
}

impl EntryGarbage {
    pub fn push(&mut self, entries: Vec<Entry>) {
        self.batches.push_back(entries);
    }

    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Free up to `budget` entries, oldest batch first. A batch emptied
    /// here goes to `release` with its buffer (tens of MB for millions of
    /// entries, whose unmapping is better done off the turn). Returns the
    /// number of entries freed.
    pub fn free_some(&mut self, budget: usize, mut release: impl FnMut(Vec<Entry>)) -> usize {
        let mut freed = 0;
        while freed < budget {
            let Some(batch) = self.batches.front_mut() else { break };
            let keep = batch.len().saturating_sub(budget - freed);
            freed += batch.len() - keep;
            batch.truncate(keep);
            if batch.is_empty() {
                release(self.batches.pop_front().expect("the batch just emptied"));
            }
        }
        freed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(count: u64) -> Vec<Entry> {
        (1..=count).map(|index| Entry { term: 1, index, data: vec![0; 8] }).collect()
    }

    #[test]
    fn frees_at_most_the_budget_oldest_first_and_hands_out_emptied_buffers() {
        let mut garbage = EntryGarbage::default();
        garbage.push(entries(10));
        garbage.push(entries(5));
        garbage.push(entries(20));
        let mut emptied = Vec::new();
        assert_eq!(garbage.free_some(12, |batch| emptied.push(batch.capacity())), 12);
        assert_eq!(emptied, vec![10], "the first batch is emptied and its buffer handed out");
        assert_eq!(garbage.free_some(100, |batch| emptied.push(batch.capacity())), 23);
        assert_eq!(emptied, vec![10, 5, 20]);
        assert!(garbage.is_empty());
        assert_eq!(garbage.free_some(100, |_| panic!("nothing is left")), 0);
    }
}
