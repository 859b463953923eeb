//! Raft's safety properties (Figure 3), checked incrementally as effects are
//! executed, so a violation is caught at the step that causes it.

use std::collections::{BTreeMap, HashMap};

use raftmq::raft::{Entry, LogIndex, NodeId, RaftLog, Term};

#[derive(Default)]
pub struct Checker {
    leaders_by_term: HashMap<Term, NodeId>,
    /// (index, term) -> hash of the whole log prefix ending there.
    prefix_by_entry: HashMap<(LogIndex, Term), u64>,
    /// Every entry applied anywhere: committed.
    committed: BTreeMap<LogIndex, (Term, Vec<u8>)>,
}

/// FNV-1a step, chained over the prefix: equal hashes for equal prefixes.
pub fn chain_hash(previous: u64, entry: &Entry) -> u64 {
    let mut hash = previous ^ 0xcbf2_9ce4_8422_2325;
    for byte in entry.term.to_le_bytes().iter().chain(entry.data.iter()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

impl Checker {
    /// Election Safety: at most one leader per term.
    pub fn on_leader(&mut self, node: NodeId, term: Term, log: &RaftLog) -> Result<(), String> {
        if let Some(&other) = self.leaders_by_term.get(&term) {
            if other != node {
                return Err(format!("two leaders in term {term}: {other} and {node}"));
            }
        }
        self.leaders_by_term.insert(term, node);
        // Leader Completeness: a new leader holds every committed entry.
        let compacted_through = log.first_index() - 1;
        for (&index, (committed_term, _)) in self.committed.range(compacted_through + 1..) {
            if log.term_at(index) != Some(*committed_term) {
                return Err(format!(
                    "leader {node} of term {term} lacks committed entry {index} (term {committed_term}); has {:?}",
                    log.term_at(index)
                ));
            }
        }
        Ok(())
    }

    /// Log Matching: entries with equal index and term have equal prefixes.
    /// `prefix_hashes[i]` is the node's chained hash through index i + 1.
    pub fn on_persist(&mut self, node: NodeId, prefix_hashes: &mut Vec<u64>, entries: &[Entry]) -> Result<(), String> {
        let first = entries.first().expect("persist carries entries").index;
        prefix_hashes.truncate((first - 1) as usize);
        for entry in entries {
            let previous = prefix_hashes.last().copied().unwrap_or(0);
            let hash = chain_hash(previous, entry);
            prefix_hashes.push(hash);
            let known = *self.prefix_by_entry.entry((entry.index, entry.term)).or_insert(hash);
            if known != hash {
                return Err(format!(
                    "log matching broken on node {node}: entry {} of term {} ends a different prefix",
                    entry.index, entry.term
                ));
            }
        }
        Ok(())
    }

    /// State Machine Safety: no two nodes apply different entries at an index.
    pub fn on_apply(&mut self, node: NodeId, entry: &Entry) -> Result<(), String> {
        match self.committed.get(&entry.index) {
            Some((term, data)) if *term != entry.term || *data != entry.data => Err(format!(
                "node {node} applied entry {} of term {} but term {term} was applied there before",
                entry.index, entry.term
            )),
            Some(_) => Ok(()),
            None => {
                self.committed.insert(entry.index, (entry.term, entry.data.clone()));
                Ok(())
            }
        }
    }

    /// A snapshot (made or installed) must be the committed prefix through
    /// its last index: its data is that prefix's chained hash.
    pub fn on_snapshot(&self, node: NodeId, last_index: LogIndex, last_term: Term, hash: u64) -> Result<(), String> {
        let mut expected = 0;
        for index in 1..=last_index {
            let Some((term, data)) = self.committed.get(&index) else {
                return Err(format!("node {node} has a snapshot through {last_index} but {index} never committed"));
            };
            if index == last_index && *term != last_term {
                return Err(format!("node {node}'s snapshot ends in term {last_term}, the committed entry has {term}"));
            }
            expected = chain_hash(expected, &Entry { term: *term, index, data: data.clone() });
        }
        if expected != hash {
            return Err(format!("node {node}'s snapshot through {last_index} differs from the committed prefix"));
        }
        Ok(())
    }

    pub fn committed_count(&self) -> usize {
        self.committed.len()
    }

    pub fn is_committed(&self, index: LogIndex, term: Term) -> bool {
        self.committed.get(&index).is_some_and(|(committed_term, _)| *committed_term == term)
    }
}
