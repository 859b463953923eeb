//! Raft's safety properties (Figure 3) and the state machine's, checked
//! incrementally as the simulator observes each node after each turn, so a
//! violation is caught at the step that causes it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use raftmq::queue::{Command, SessionCommand};
use raftmq::raft::{Entry, LogIndex, NodeId, RaftLog, Term};

#[derive(Default)]
pub struct Checker {
    leaders_by_term: HashMap<Term, NodeId>,
    /// (index, term) -> hash of the whole log prefix ending there.
    prefix_by_entry: HashMap<(LogIndex, Term), u64>,
    /// Every entry applied anywhere: committed.
    committed: BTreeMap<LogIndex, (Term, Vec<u8>)>,
    /// The state machine's digest after applying through an index, as
    /// first observed on any node.
    digest_at: HashMap<LogIndex, (NodeId, u64)>,
    /// Sessions (client id, seq) of committed entries.
    committed_sessions: HashSet<(String, u64)>,
    /// Index of each committed `put_topic`.
    topics_created: BTreeMap<LogIndex, String>,
    /// Entries whose whole prefix Log Matching was checked against, so a
    /// sweep can show the check ran.
    pub log_matching_checked: u64,
}

/// A node's chained log hashes: `hashes[i]` covers the prefix through
/// index `offset + i + 1`. A base it cannot know (after a snapshot whose
/// prefix the checker never saw) leaves it empty until the next one.
#[derive(Debug, Default, Clone)]
pub struct PrefixHashes {
    offset: LogIndex,
    base: Option<u64>,
    hashes: Vec<u64>,
}

impl PrefixHashes {
    /// An empty log: the empty prefix's hash is known (0, where
    /// `Checker::committed_prefix_hash` starts), so Log Matching is checked
    /// from the first entry. (Until 2026-12-01 a node started with an
    /// unknown base and was checked only after a snapshot install.)
    pub fn empty() -> PrefixHashes {
        PrefixHashes { offset: 0, base: Some(0), hashes: Vec::new() }
    }

    /// The log now starts after a snapshot through `index`, whose prefix hash is `base`.
    pub fn reset(&mut self, index: LogIndex, base: Option<u64>) {
        self.offset = index;
        self.base = base;
        self.hashes.clear();
    }
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
    pub fn on_persist(&mut self, node: NodeId, prefix: &mut PrefixHashes, entries: &[Entry]) -> Result<(), String> {
        let first = entries.first().expect("persist carries entries").index;
        if first <= prefix.offset {
            prefix.reset(first - 1, None);
        }
        prefix.hashes.truncate((first - 1 - prefix.offset) as usize);
        let base = match prefix.hashes.last() {
            Some(hash) => Some(*hash),
            None if first - 1 == prefix.offset => prefix.base,
            None => None,
        };
        let Some(mut previous) = base else {
            // A gap or an unknown base: the prefix is not known here.
            prefix.reset(entries.last().expect("non-empty").index, None);
            return Ok(());
        };
        self.log_matching_checked += entries.len() as u64;
        for entry in entries {
            let hash = chain_hash(previous, entry);
            prefix.hashes.push(hash);
            previous = hash;
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
                if let Ok(SessionCommand { session, command }) = SessionCommand::decode(&entry.data) {
                    if let Some(session) = session {
                        self.committed_sessions.insert((session.client_id, session.seq));
                    }
                    if let Command::PutTopic { topic } = command {
                        self.topics_created.insert(entry.index, topic);
                    }
                }
                self.committed.insert(entry.index, (entry.term, entry.data.clone()));
                Ok(())
            }
        }
    }

    /// Replicas that applied through the same index hold the same state
    /// (snapshots made and installed included).
    pub fn on_state(&mut self, node: NodeId, index: LogIndex, digest: u64) -> Result<(), String> {
        match self.digest_at.get(&index) {
            Some(&(other, known)) if known != digest => Err(format!(
                "node {node}'s state after index {index} differs from node {other}'s ({digest:x} vs {known:x})"
            )),
            Some(_) => Ok(()),
            None => {
                self.digest_at.insert(index, (node, digest));
                Ok(())
            }
        }
    }

    /// The chained hash of the committed prefix through `index`, if every
    /// entry of it was seen.
    pub fn committed_prefix_hash(&self, index: LogIndex) -> Option<u64> {
        let mut hash = 0;
        for at in 1..=index {
            let (term, data) = self.committed.get(&at)?;
            hash = chain_hash(hash, &Entry { term: *term, index: at, data: data.clone() });
        }
        Some(hash)
    }

    pub fn committed_count(&self) -> usize {
        self.committed.len()
    }

    pub fn is_committed(&self, index: LogIndex, term: Term) -> bool {
        self.committed.get(&index).is_some_and(|(committed_term, _)| *committed_term == term)
    }

    /// Highest index known committed.
    pub fn highest_committed(&self) -> LogIndex {
        self.committed.keys().next_back().copied().unwrap_or(0)
    }

    /// Whether an entry of this session is committed.
    pub fn session_committed(&self, client_id: &str, seq: u64) -> bool {
        self.committed_sessions.contains(&(client_id.to_string(), seq))
    }

    /// Topics whose creation committed at or before `index`.
    pub fn topics_through(&self, index: LogIndex) -> BTreeSet<String> {
        self.topics_created.range(..=index).map(|(_, topic)| topic.clone()).collect()
    }
}
