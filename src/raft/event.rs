//! What happens to the core: a peer's message, a timer firing, or the shell
//! reporting that log entries reached stable storage. Proposals go through
//! `RaftCore::propose` because they return the index they were given.

use super::message::Message;
use super::types::{LogIndex, NodeId, Snapshot, Term};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Message {
        from: NodeId,
        message: Message,
    },
    ElectionTimeout,
    HeartbeatTimeout,
    /// The shortest election timeout passed without the election timer being
    /// reset: a follower no longer counts on its leader, so it may grant
    /// pre-votes and votes at once instead of waiting for its own timeout.
    LeaseTimeout,
    /// Every entry up to `index` (whose term is `term`) is durable on this node.
    LogPersisted {
        index: LogIndex,
        term: Term,
    },
    /// The shell wrote this snapshot of its applied state durably: the log
    /// before it may be compacted, and followers behind it receive it.
    SnapshotSaved {
        snapshot: Snapshot,
    },
}
