//! What the core asks its shell to do. The shell executes effects in the order
//! they were emitted: persist, then send, then apply (etcd's Ready contract).

use super::message::Message;
use super::types::{Entry, HardState, LogIndex, NodeId, Role, Snapshot, Term};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Make term and vote durable before any later effect runs.
    PersistHardState(HardState),
    /// Make these entries durable, replacing any stored entries at or after
    /// `entries[0].index`. The shell reports completion with `Event::LogPersisted`.
    PersistEntries(Vec<Entry>),
    Send {
        to: NodeId,
        message: Message,
    },
    /// Entries `first_index..=last_index` are committed: apply them in order.
    Apply {
        first_index: LogIndex,
        last_index: LogIndex,
    },
    /// Drop stored entries up to and including `through_index`; a durable
    /// snapshot covers them.
    CompactLog {
        through_index: LogIndex,
    },
    /// A snapshot from the leader replaces the state machine. Make it durable,
    /// then drop the stored log: all of it, or, when `log_kept`, only the
    /// entries it covers (Raft Figure 13, steps 6 and 7). Entries up to
    /// `snapshot.last_index` count as applied.
    InstallSnapshot {
        snapshot: Snapshot,
        log_kept: bool,
    },
    /// Re-arm the election timer with a fresh randomized timeout, and the
    /// lease timer with the shortest one (`Event::LeaseTimeout`).
    ResetElectionTimer,
    /// Re-arm the leader's heartbeat timer.
    ResetHeartbeatTimer,
    /// A majority confirmed this node led when ReadIndex round `round`
    /// began: reads registered in that round (or before) may be answered
    /// once the state machine has applied `read_index` (Raft dissertation §6.4).
    ReadsConfirmed {
        round: u64,
        read_index: LogIndex,
    },
    /// Role, term or known leader changed; the shell logs it and fails any
    /// client requests waiting on a leadership this node no longer holds.
    RoleChanged {
        role: Role,
        term: Term,
        leader: Option<NodeId>,
    },
}
