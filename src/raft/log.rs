//! The core's in-memory view of the replicated log. The shell keeps the
//! durable copy in sync by executing `Effect::PersistEntries`.

use super::types::{Entry, LogIndex, Term};

/// The entries after the latest snapshot, in memory. Indices are
/// contiguous and terms never decrease; every method that changes the log
/// asserts it, since only the core, after checking, changes it.
#[derive(Debug, Default, Clone)]
pub struct RaftLog {
    /// Index of the entry just before `entries[0]`: 0, or the last index
    /// that compaction dropped (covered by a snapshot).
    offset: LogIndex,
    offset_term: Term,
    entries: Vec<Entry>,
}

impl RaftLog {
    /// A log of `entries`, the first at index 1.
    pub fn from_entries(entries: Vec<Entry>) -> RaftLog {
        RaftLog::after(0, 0, entries)
    }

    /// A log whose entries follow (offset, offset_term), as after a snapshot.
    pub fn after(offset: LogIndex, offset_term: Term, entries: Vec<Entry>) -> RaftLog {
        for (position, entry) in entries.iter().enumerate() {
            assert_eq!(entry.index, offset + position as LogIndex + 1, "restored log has a gap");
        }
        assert!(entries.first().is_none_or(|first| first.term >= offset_term), "log terms must not decrease");
        RaftLog { offset, offset_term, entries }
    }

    /// Index of the first entry still held (one past the compacted prefix).
    pub fn first_index(&self) -> LogIndex {
        self.offset + 1
    }

    /// Drop every entry up to and including `index`, which must be held.
    /// Returns them, unfreed: freeing a million entries takes tens of
    /// milliseconds, which the caller may spend elsewhere.
    pub fn compact_through(&mut self, index: LogIndex) -> Vec<Entry> {
        assert!(index >= self.offset && index <= self.last_index(), "compaction point outside the log");
        let term = self.term_at(index).expect("index is within the log");
        let kept = self.entries.split_off((index - self.offset) as usize);
        self.offset = index;
        self.offset_term = term;
        std::mem::replace(&mut self.entries, kept)
    }

    /// Replace the whole log by the empty log after a snapshot's last entry.
    /// Returns the entries dropped, unfreed (see `compact_through`).
    pub fn reset_after(&mut self, index: LogIndex, term: Term) -> Vec<Entry> {
        self.offset = index;
        self.offset_term = term;
        std::mem::take(&mut self.entries)
    }

    /// Index of the last entry (the snapshot's last index if none follow it).
    pub fn last_index(&self) -> LogIndex {
        self.offset + self.entries.len() as LogIndex
    }

    /// Term of the last entry (the snapshot's last term if none follow it).
    pub fn last_term(&self) -> Term {
        self.entries.last().map_or(self.offset_term, |entry| entry.term)
    }

    /// The term of the entry at `index`, or None if the log does not reach it.
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == self.offset {
            return Some(self.offset_term);
        }
        self.entry(index).map(|entry| entry.term)
    }

    /// The entry at `index`, if held (not compacted, not beyond the end).
    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        if index <= self.offset {
            return None;
        }
        self.entries.get((index - self.offset - 1) as usize)
    }

    /// Up to `max_count` entries starting at `first_index`, stopping once
    /// `max_bytes` of payload is reached (but always at least one entry if any).
    pub fn slice(&self, first_index: LogIndex, max_count: usize, max_bytes: usize) -> Vec<Entry> {
        assert!(first_index > self.offset, "entries before the log's start were requested");
        let start = (first_index - self.offset - 1) as usize;
        let mut taken = Vec::new();
        let mut bytes = 0usize;
        for entry in self.entries.iter().skip(start).take(max_count) {
            if !taken.is_empty() && bytes + entry.data.len() > max_bytes {
                break;
            }
            bytes += entry.data.len();
            taken.push(entry.clone());
        }
        taken
    }

    /// Add `entry` at the end: it must be the next index, in a term no
    /// older than the last.
    pub fn append(&mut self, entry: Entry) {
        assert_eq!(entry.index, self.last_index() + 1, "log append must be contiguous");
        assert!(entry.term >= self.last_term(), "log terms must not decrease");
        self.entries.push(entry);
    }

    /// Drop the entry at `index` and everything after it.
    pub fn truncate_from(&mut self, index: LogIndex) {
        assert!(index > self.offset, "cannot truncate below the log's start");
        self.entries.truncate((index - self.offset - 1) as usize);
    }

    /// The first index holding `term`, scanning back from `from_index`.
    pub fn first_index_of_term(&self, term: Term, from_index: LogIndex) -> LogIndex {
        let mut index = from_index;
        while index > self.offset + 1 && self.term_at(index - 1) == Some(term) {
            index -= 1;
        }
        index
    }

    /// The last index holding `term`, if the log holds that term at all.
    pub fn last_index_of_term(&self, term: Term) -> Option<LogIndex> {
        self.entries.iter().rev().find(|entry| entry.term == term).map(|entry| entry.index)
    }

    /// Raft §5.4.1: is a log ending at (last_index, last_term) at least as up
    /// to date as this one?
    pub fn is_up_to_date(&self, last_index: LogIndex, last_term: Term) -> bool {
        last_term > self.last_term() || (last_term == self.last_term() && last_index >= self.last_index())
    }
}
