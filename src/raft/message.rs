//! The messages nodes exchange (Raft Figure 2's two RPCs and their replies).

use super::types::{Entry, LogIndex, NodeId, Term};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    RequestVote(RequestVote),
    RequestVoteResponse(RequestVoteResponse),
    AppendEntries(AppendEntries),
    AppendEntriesResponse(AppendEntriesResponse),
    InstallSnapshot(InstallSnapshot),
    InstallSnapshotResponse(InstallSnapshotResponse),
    /// Would you vote for me in `term` (Raft dissertation §9.6)? Asked
    /// before a real election; changes no one's term or vote.
    PreVote(RequestVote),
    PreVoteResponse(RequestVoteResponse),
    /// From a leader handing over leadership: start an election now
    /// (Raft dissertation §3.10).
    TimeoutNow(TimeoutNow),
}

impl Message {
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestVote {
    pub term: Term,
    pub candidate: NodeId,
    pub last_log_index: LogIndex,
    pub last_log_term: Term,
    /// The election was started by the leader's TimeoutNow, so voters must
    /// not refuse it for having heard from that leader recently.
    pub leadership_transfer: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestVoteResponse {
    pub term: Term,
    pub vote_granted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendEntries {
    pub term: Term,
    pub leader: NodeId,
    pub prev_log_index: LogIndex,
    pub prev_log_term: Term,
    pub entries: Vec<Entry>,
    pub leader_commit: LogIndex,
    /// The leader's latest ReadIndex round; a reply echoes it, confirming
    /// the sender still led when the round began (Raft dissertation §6.4).
    pub read_round: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendEntriesResponse {
    pub term: Term,
    pub success: bool,
    /// On success: the last index the follower now knows matches the leader
    /// (prev_log_index + entries carried). On rejection: the prev_log_index
    /// that was rejected, so the leader can discard stale rejections.
    pub index: LogIndex,
    /// Fast backtracking hint on rejection (course report; etcd's
    /// findConflictByTerm): the first index the follower holds for
    /// `conflict_term`, or its last index + 1 when its log is too short.
    pub conflict_index: LogIndex,
    pub conflict_term: Option<Term>,
    /// The `read_round` of the AppendEntries this answers.
    pub read_round: u64,
}

/// One chunk of the leader's snapshot (Raft §7, Figure 13). Chunks are sent
/// one at a time; an empty chunk at the follower's received offset is a
/// keepalive that also asks how far the follower got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallSnapshot {
    pub term: Term,
    pub leader: NodeId,
    pub last_index: LogIndex,
    pub last_term: Term,
    /// Byte offset of `data` within the snapshot.
    pub offset: u64,
    pub total_bytes: u64,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallSnapshotResponse {
    pub term: Term,
    /// The snapshot this answers for.
    pub last_index: LogIndex,
    /// Bytes of it the follower holds; the leader continues from here.
    pub received_bytes: u64,
    /// The follower holds the snapshot durably (or already had its entries).
    pub done: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeoutNow {
    pub term: Term,
    pub leader: NodeId,
}
