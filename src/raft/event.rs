//! What happens to the core: a peer's message, a timer firing, or the shell
//! reporting that log entries reached stable storage. Proposals go through
//! `RaftCore::propose` because they return the index they were given.

use super::message::Message;
use super::types::{LogIndex, NodeId, Snapshot, Term};

/// One input to [`RaftCore::step`](super::RaftCore::step).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A peer's message, decoded. The core checks it before it believes it.
    Message {
        /// The sender, as the shell knows it. The core cannot check this
        /// field: only an authenticated transport makes it true.
        from: NodeId,
        /// The message.
        message: Message,
    },
    /// The randomized election timeout passed since the timer was last
    /// reset: a follower or candidate campaigns; a leader checks its quorum
    /// and abandons an unfinished transfer.
    ElectionTimeout,
    /// The heartbeat interval passed: a leader sends AppendEntries to every
    /// follower.
    HeartbeatTimeout,
    /// The shortest election timeout passed without the election timer being
    /// reset: a follower no longer counts on its leader, so it may grant
    /// pre-votes and votes at once instead of waiting for its own timeout.
    LeaseTimeout,
    /// Every entry up to `index` (whose term is `term`) is durable on this node.
    LogPersisted {
        /// Last durable index.
        index: LogIndex,
        /// Term of the entry at `index` when it was written.
        term: Term,
    },
    /// The shell wrote this snapshot of its applied state durably: the log
    /// before it may be compacted, and followers behind it receive it.
    SnapshotSaved {
        /// The snapshot written; it covers only applied entries.
        snapshot: Snapshot,
    },
}
