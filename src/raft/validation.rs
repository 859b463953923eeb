//! What the core checks before it believes a message. A peer's message is
//! decoded from bytes anyone who reaches the peer port can send, and even a
//! member's can be stale or confused: nothing in it may panic the node or
//! make it break its own invariants. These checks run before the message
//! can raise our term, so a dropped message changes nothing. They read the
//! term, the configuration and the log; the handlers check what depends on
//! the role (a second leader in a term, a TimeoutNow, a leader's
//! acknowledgements) and drop the message the same way, also before any
//! change.
//!
//! What no check here can catch: a message that an honest member could have
//! sent, sent by someone else. Only the shell can know who sent a frame
//! (authenticated peers, issue 11 part 1); the core trusts its `from`.

use super::core::RaftCore;
use super::message::{AppendEntries, InstallSnapshot, Message, RequestVote};
use super::types::{LogIndex, NodeId, Term};

/// Highest term a node accepts or enters. At one election every
/// millisecond a real cluster would need 146 million years to get here;
/// the 2^62 left above it keep `term + 1` far from overflow.
pub(super) const MAX_TERM: Term = 1 << 62;

/// Highest log index a message may name. At a million entries a second a
/// real log would need 146,000 years to get here; the room above keeps
/// `index + 1` and `index + entry count` from overflow.
pub(super) const MAX_INDEX: LogIndex = 1 << 62;

impl RaftCore {
    /// Ok if nothing in `message` from `from` contradicts what any honest
    /// member could send; otherwise why it is dropped.
    pub(super) fn check_message(&self, from: NodeId, message: &Message) -> Result<(), &'static str> {
        if from >= self.config.node_count {
            return Err("sender is not a member of the cluster");
        }
        if from == self.config.id {
            return Err("message claims to come from this node");
        }
        self.check_term(message.term())?;
        match message {
            Message::RequestVote(request) | Message::PreVote(request) => check_vote_request(from, request),
            Message::AppendEntries(request) => {
                check_append_entries(from, request)?;
                // A stale leader's entries may well conflict with what was
                // committed since; the handler rejects it for its term.
                if request.term < self.hard_state.current_term {
                    return Ok(());
                }
                self.check_entries_fit(request)
            }
            Message::InstallSnapshot(request) => self.check_install_snapshot(from, request),
            Message::TimeoutNow(request) if request.leader != from => {
                Err("TimeoutNow names a leader other than its sender")
            }
            Message::TimeoutNow(request) if request.term == 0 => Err("no node leads term 0"),
            Message::RequestVoteResponse(_)
            | Message::AppendEntriesResponse(_)
            | Message::InstallSnapshotResponse(_)
            | Message::PreVoteResponse(_)
            | Message::TimeoutNow(_)
            | Message::TermQuery(_)
            | Message::TermAnswer(_) => Ok(()),
        }
    }

    /// Raft §5.1 lets any message raise our term; a forged one must not
    /// spend the term space. Terms below ours are stale, not untrusted: the
    /// handlers answer them with our term.
    fn check_term(&self, term: Term) -> Result<(), &'static str> {
        if term > MAX_TERM {
            return Err("term above the ceiling of 2^62");
        }
        if term > self.hard_state.current_term.saturating_add(self.config.max_term_jump) {
            return Err("term too far above this node's (CoreConfig::max_term_jump)");
        }
        Ok(())
    }

    fn check_install_snapshot(&self, from: NodeId, request: &InstallSnapshot) -> Result<(), &'static str> {
        if request.leader != from {
            return Err("InstallSnapshot names a leader other than its sender");
        }
        if request.term == 0 {
            return Err("no node leads term 0");
        }
        if request.last_term > request.term {
            return Err("snapshot ends in a term after the leader's");
        }
        if request.last_index > MAX_INDEX {
            return Err("snapshot last index above the ceiling of 2^62");
        }
        if request.total_bytes > self.config.max_snapshot_bytes {
            return Err("snapshot larger than CoreConfig::max_snapshot_bytes");
        }
        let chunk_end = request.offset.checked_add(request.data.len() as u64);
        if chunk_end.is_none_or(|end| end > request.total_bytes) {
            return Err("snapshot chunk reaches past the snapshot's announced size");
        }
        let current = request.term >= self.hard_state.current_term;
        if current && request.last_index > self.commit_index && !self.continues_committed_log(request) {
            return Err("snapshot ends in a term older than entries committed here");
        }
        Ok(())
    }

    /// Entries that match the log at prev_log_index can still contradict
    /// what this follower knows for sure. Raft §5.4.3 (Leader Completeness):
    /// no leader replaces a committed entry. §5.3 (Log Matching): two entries
    /// with the same index and term are the same entry, so one that differs
    /// from ours is forged or corrupt; which of the two is cannot be told
    /// here, so the message is dropped and the entry held stays.
    fn check_entries_fit(&self, request: &AppendEntries) -> Result<(), &'static str> {
        for entry in &request.entries {
            let Some(held) = self.log.entry(entry.index) else {
                continue; // beyond our log, or compacted (and so committed and matching)
            };
            if held.term != entry.term && entry.index <= self.commit_index {
                return Err("AppendEntries would overwrite a committed entry");
            }
            if held.term == entry.term && held.data != entry.data {
                return Err("an entry differs from the one held at the same index and term");
            }
        }
        Ok(())
    }

    /// Raft §5.4 (log terms never decrease along a leader's log): a leader's
    /// snapshot past our commit index ends in a term at least that of our
    /// last committed entry, which the leader's log holds too.
    fn continues_committed_log(&self, request: &InstallSnapshot) -> bool {
        let committed_term = self.log.term_at(self.commit_index).expect("the commit index is within the log");
        request.last_term >= committed_term
    }
}

/// Raft §5.2: a candidate asks for its own election.
fn check_vote_request(from: NodeId, request: &RequestVote) -> Result<(), &'static str> {
    if request.candidate != from {
        return Err("vote request names a candidate other than its sender");
    }
    if request.term == 0 {
        return Err("no election is held for term 0");
    }
    if request.last_log_term > request.term {
        return Err("candidate's log ends in a term after its election's");
    }
    Ok(())
}

/// Raft §5.3: a leader sends a contiguous run of its own log, after
/// prev_log_index; its log's terms never decrease and never exceed its term.
fn check_append_entries(from: NodeId, request: &AppendEntries) -> Result<(), &'static str> {
    if request.leader != from {
        return Err("AppendEntries names a leader other than its sender");
    }
    if request.term == 0 {
        return Err("no node leads term 0");
    }
    if request.prev_log_index > MAX_INDEX {
        return Err("AppendEntries prev_log_index above the ceiling of 2^62");
    }
    if request.prev_log_term > request.term {
        return Err("AppendEntries prev_log_term after the leader's term");
    }
    let mut expected_index = request.prev_log_index;
    let mut previous_term = request.prev_log_term;
    for entry in &request.entries {
        expected_index += 1; // at most 2^62 + the entry count: no overflow
        if entry.index != expected_index {
            return Err("AppendEntries entries are not contiguous after prev_log_index");
        }
        if entry.term == 0 || entry.term < previous_term {
            return Err("AppendEntries entry terms decrease (or are 0)");
        }
        if entry.term > request.term {
            return Err("AppendEntries entry term after the leader's term");
        }
        previous_term = entry.term;
    }
    Ok(())
}
