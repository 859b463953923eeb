//! The messages nodes exchange (Raft Figure 2's two RPCs and their replies,
//! InstallSnapshot of §7, and the PreVote and TimeoutNow of the Raft
//! dissertation). Every field may be forged: the core checks what it reads
//! (validation.rs) before it believes it.

use super::types::{Entry, LogIndex, NodeId, Term};

/// One message between two nodes of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A candidate asks for a vote (Raft §5.2).
    RequestVote(RequestVote),
    /// The answer to a RequestVote.
    RequestVoteResponse(RequestVoteResponse),
    /// The leader replicates entries, or asserts leadership with none (Raft §5.3).
    AppendEntries(AppendEntries),
    /// A follower's answer to an AppendEntries.
    AppendEntriesResponse(AppendEntriesResponse),
    /// One chunk of the leader's snapshot (Raft §7).
    InstallSnapshot(InstallSnapshot),
    /// A follower's answer to an InstallSnapshot chunk.
    InstallSnapshotResponse(InstallSnapshotResponse),
    /// Would you vote for me in `term` (Raft dissertation §9.6)? Asked
    /// before a real election; changes no one's term or vote.
    PreVote(RequestVote),
    /// The answer to a PreVote: a grant names the term asked about, a
    /// refusal the refuser's term.
    PreVoteResponse(RequestVoteResponse),
    /// From a leader handing over leadership: start an election now
    /// (Raft dissertation §3.10).
    TimeoutNow(TimeoutNow),
    /// From a node repairing lost term and vote (src/raft/repair.rs): what
    /// is your term? Changes nothing at the receiver.
    TermQuery(TermQuery),
    /// The answer to a TermQuery.
    TermAnswer(TermAnswer),
}

impl Message {
    /// The sender's term when it sent the message (for a PreVote, the term
    /// the candidate would campaign in).
    pub fn term(&self) -> Term {
        match self {
            Message::RequestVote(m) => m.term,
            Message::RequestVoteResponse(m) => m.term,
            Message::AppendEntries(m) => m.term,
            Message::AppendEntriesResponse(m) => m.term,
            Message::InstallSnapshot(m) => m.term,
            Message::InstallSnapshotResponse(m) => m.term,
            Message::PreVote(m) => m.term,
            Message::PreVoteResponse(m) => m.term,
            Message::TimeoutNow(m) => m.term,
            Message::TermQuery(m) => m.term,
            Message::TermAnswer(m) => m.term,
        }
    }

    /// True for a message that speaks for this node's durable state (a vote
    /// request or grant, a follower's acknowledgement, a snapshot's `done`):
    /// it may leave only once the writes emitted before it are durable. A
    /// leader's AppendEntries and snapshot chunks go at once (Raft
    /// dissertation §10.2.1): the leader counts itself only through
    /// `LogPersisted`.
    pub fn needs_durability(&self) -> bool {
        !matches!(self, Message::AppendEntries(_) | Message::InstallSnapshot(_))
    }
}

/// A vote request (Raft §5.2), or a pre-vote request (dissertation §9.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestVote {
    /// The election's term.
    pub term: Term,
    /// The node asking: always the sender.
    pub candidate: NodeId,
    /// Index of the candidate's last log entry (Raft §5.4.1).
    pub last_log_index: LogIndex,
    /// Term of the candidate's last log entry (Raft §5.4.1).
    pub last_log_term: Term,
    /// The election was started by the leader's TimeoutNow, so voters must
    /// not refuse it for having heard from that leader recently.
    pub leadership_transfer: bool,
}

/// The answer to a vote or pre-vote request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestVoteResponse {
    /// The voter's term (for a granted pre-vote, the term asked about).
    pub term: Term,
    /// The vote (or pre-vote) is granted.
    pub vote_granted: bool,
}

/// The leader's AppendEntries (Raft §5.3, Figure 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendEntries {
    /// The leader's term.
    pub term: Term,
    /// The leader: always the sender.
    pub leader: NodeId,
    /// Index of the entry just before `entries`.
    pub prev_log_index: LogIndex,
    /// Term of the entry at `prev_log_index`.
    pub prev_log_term: Term,
    /// Entries from `prev_log_index + 1` on, contiguous; empty for a heartbeat.
    pub entries: Vec<Entry>,
    /// The leader's commit index.
    pub leader_commit: LogIndex,
    /// The leader's latest ReadIndex round; a reply echoes it, confirming
    /// the sender still led when the round began (Raft dissertation §6.4).
    pub read_round: u64,
}

/// A follower's answer to an AppendEntries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendEntriesResponse {
    /// The follower's term.
    pub term: Term,
    /// The follower's log matched at `prev_log_index` and now holds the entries.
    pub success: bool,
    /// On success: the last index the follower now knows matches the leader
    /// (prev_log_index + entries carried). On rejection: the prev_log_index
    /// that was rejected, so the leader can discard stale rejections.
    pub index: LogIndex,
    /// Fast backtracking hint on rejection (course report; etcd's
    /// findConflictByTerm): the first index the follower holds for
    /// `conflict_term`, or its last index + 1 when its log is too short.
    pub conflict_index: LogIndex,
    /// The term the follower holds at the rejected prev_log_index, if any.
    pub conflict_term: Option<Term>,
    /// The `read_round` of the AppendEntries this answers.
    pub read_round: u64,
}

/// One chunk of the leader's snapshot (Raft §7, Figure 13). Chunks are sent
/// one at a time; an empty chunk at the follower's received offset is a
/// keepalive that also asks how far the follower got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallSnapshot {
    /// The leader's term.
    pub term: Term,
    /// The leader: always the sender.
    pub leader: NodeId,
    /// Last log index the snapshot covers.
    pub last_index: LogIndex,
    /// Term of the entry at `last_index`.
    pub last_term: Term,
    /// Byte offset of `data` within the snapshot.
    pub offset: u64,
    /// Size of the whole snapshot, in bytes.
    pub total_bytes: u64,
    /// The chunk's bytes.
    pub data: Vec<u8>,
}

/// A follower's answer to an InstallSnapshot chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallSnapshotResponse {
    /// The follower's term.
    pub term: Term,
    /// The snapshot this answers for.
    pub last_index: LogIndex,
    /// Bytes of it the follower holds; the leader continues from here.
    pub received_bytes: u64,
    /// The follower holds the snapshot durably (or already had its entries).
    pub done: bool,
}

/// The leader tells the target of a leadership transfer to campaign now
/// (Raft dissertation §3.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeoutNow {
    /// The leader's term.
    pub term: Term,
    /// The leader: always the sender.
    pub leader: NodeId,
}

/// A repairing node asks for the receiver's term (src/raft/repair.rs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermQuery {
    /// The asker's term (it raises no one's term: the asker lost its own).
    pub term: Term,
    /// Names this round of questions: only answers that carry it count,
    /// so an answer delayed from before the asker restarted is not taken.
    pub nonce: u64,
}

/// The answer to a TermQuery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermAnswer {
    /// The answerer's current term.
    pub term: Term,
    /// The question's nonce, echoed.
    pub nonce: u64,
    /// The answerer is repairing too: its term may be lost, so the asker
    /// does not count it.
    pub repairing: bool,
}
