//! What the core asks its shell to do.
//!
//! The shell takes effects with `RaftCore::drain_effects` and carries them
//! out under the contract stated once in the crate documentation (rules
//! 1 to 9 in `src/lib.rs`): one event at a time, writes in order, messages
//! that speak for durable state held until the disk has it, apply before
//! local durability, and this node counted toward a commit only through
//! `Event::LogPersisted`.

use super::message::Message;
use super::types::{Entry, HardState, LogIndex, NodeId, Repair, Role, Snapshot, Term};

/// One thing the shell must do for the core; see the module documentation
/// for when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Make term and vote durable (before any later `Send` that needs
    /// durability leaves).
    PersistHardState(HardState),
    /// Make these entries durable, replacing any stored entries at or after
    /// `entries[0].index`. The shell reports completion with `Event::LogPersisted`.
    PersistEntries(Vec<Entry>),
    /// Send `message` to node `to` (never this node), at once or after the
    /// writes before it are durable (`Message::needs_durability`).
    Send {
        /// The receiving node.
        to: NodeId,
        /// What to send.
        message: Message,
    },
    /// Entries `first_index..=last_index` are committed: apply them in order.
    /// Each `Apply` starts right after the previous one (or the snapshot).
    Apply {
        /// First entry to apply.
        first_index: LogIndex,
        /// Last entry to apply; the new commit index.
        last_index: LogIndex,
    },
    /// Entries the in-memory log no longer holds (compacted, or replaced by
    /// a snapshot). Nothing to persist: the shell hands them out
    /// (`Output::Release`) rather than free them in the turn, since freeing
    /// a million entries takes tens of milliseconds, which a follower's
    /// heartbeats would otherwise wait for; the node frees them a bounded
    /// number per turn.
    ReleaseEntries(Vec<Entry>),
    /// Drop stored entries up to and including `through_index`; a durable
    /// snapshot covers them.
    CompactLog {
        /// Last index to drop.
        through_index: LogIndex,
    },
    /// A snapshot from the leader replaces the state machine. Make it durable,
    /// then drop the stored log: all of it, or, when `log_kept`, only the
    /// entries it covers (Raft Figure 13, steps 6 and 7). Entries up to
    /// `snapshot.last_index` count as applied.
    ///
    /// The core cannot read the image: the shell must check it is a
    /// readable state machine before it replaces anything, and refuse it
    /// (without exiting) if not.
    InstallSnapshot {
        /// The snapshot received, whole.
        snapshot: Snapshot,
        /// The log after the snapshot is kept (it continues the snapshot).
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
        /// The latest round confirmed; every earlier one is confirmed too.
        round: u64,
        /// The index those reads must see applied.
        read_index: LogIndex,
    },
    /// Role, term or known leader changed; the shell logs it and fails any
    /// client requests waiting on a leadership this node no longer holds.
    RoleChanged {
        /// The role now.
        role: Role,
        /// The term now.
        term: Term,
        /// The leader this node counts on now (itself if it leads).
        leader: Option<NodeId>,
    },
    /// A message from `from` was refused because it cannot be trusted: it
    /// contradicts what any honest member could send (a forged or corrupt
    /// frame, or a confused peer). It changed nothing in the core. The
    /// shell logs it, rate-limited: the core has no clock.
    MessageDropped {
        /// The sender the shell named for the message.
        from: NodeId,
        /// Why it was refused, for the log.
        reason: &'static str,
    },
    /// This node's repair of lost or damaged state moved on
    /// (src/raft/repair.rs); the shell logs it and shows it in status.
    RepairChanged {
        /// The repair state now (`Repair::Intact` once it is done).
        repair: Repair,
        /// The term now.
        term: Term,
    },
}
