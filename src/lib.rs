//! raftmq: a replicated message queue. Raft consensus over ZeroMQ.
//!
//! # Layers
//!
//! - [`raft`]: the consensus core. Pure: events in, effects out; no
//!   sockets, clock or randomness.
//! - [`queue`]: the state machine. It applies a committed command and
//!   returns the reply; it knows nothing of Raft.
//! - [`shell`]: everything between the core and the operating system that
//!   is logic: pending requests, the disk pipeline, snapshots, reads,
//!   transfers, timers, shutdown. Sans I/O: inputs and time in, outputs
//!   out. The node's event loop and the deterministic simulator
//!   (`tests/simulation`) run this same code.
//! - [`node`]: the process: threads, ZeroMQ sockets, signals, and a thin
//!   event loop that feeds the shell and executes its outputs.
//! - [`storage`]: the write-ahead log behind a trait (durable on disk, or in
//!   memory), and the LogManager thread that writes it.
//!
//! # The contract between the core, the shell and the disk
//!
//! These rules are what Raft's safety needs; they are stated here once.
//! Every other comment refers to them by number.
//!
//! 1. **One event at a time.** The shell steps the core with one event (a
//!    peer message, a timer, a disk report) or one call (`propose`,
//!    `read_index`, `transfer_leadership`) and then executes every effect
//!    the core emitted, in emission order, before the core takes the next.
//!    An `Apply` therefore runs while the entries it names are still in
//!    the core's log, which a later event may replace.
//! 2. **Writes in order, batched per turn.** Writes (`PersistHardState`,
//!    `PersistEntries`, `CompactLog`, the write of an `InstallSnapshot`)
//!    join the turn's disk batch in emission order. At the end of the turn
//!    the batch goes to the disk thread, numbered; the disk writes batches
//!    in order and makes a group of them durable with one sync (group
//!    commit), then reports the last durable batch.
//! 3. **Promises wait for the disk.** A message that speaks for this node's
//!    durable state (`Message::needs_durability`: a vote or a vote request,
//!    a follower's acknowledgement, a snapshot's reply) leaves only once
//!    every write emitted before it is durable: the shell holds it until
//!    the disk reports the batch it follows. A leader's AppendEntries and
//!    snapshot chunks leave at once (Raft dissertation §10.2.1).
//! 4. **A leader counts itself only through `LogPersisted`.** The shell
//!    reports `Event::LogPersisted` for entries only after the disk made
//!    them durable; the core counts this node toward a commit only then.
//!    While a follower's acknowledgement waits (rule 3), the shell may send
//!    a copy capped at the durable index, once per heartbeat interval: it
//!    is true as it stands and keeps the leader's quorum check fed.
//! 5. **Apply before local durability is fine.** `Apply` names committed
//!    entries (a majority holds them durably), so the shell applies them
//!    at once, in index order, at most a bounded number per turn (the rest
//!    at once in the next). A client's reply leaves once its entry is
//!    applied; the node's status is published before the turn's replies.
//! 6. **Snapshots.** A leader's snapshot (`InstallSnapshot`) replaces the
//!    state machine at once and is written in the turn's batch; the
//!    follower's `done` reply waits for it (rule 3). The node's own
//!    snapshot is encoded and synced off the event loop, put in place by
//!    the disk thread in order with the log, and only once it is durable
//!    does the core hear `SnapshotSaved` and compact.
//! 7. **Storage failure is a crash.** A failed write or sync voids every
//!    batch not yet reported durable. The shell drops the messages held
//!    for them, answers every waiting request, stops its timers and
//!    ignores peers until the disk reports it works again; then it rebuilds
//!    the core from what storage durably holds, as after a restart.
//! 8. **Time comes from outside.** The core asks for timer resets; the
//!    shell arms them on its own clock with seeded random timeouts. A timer
//!    found overdue by more than the stall tolerance is re-armed, not
//!    fired: the node itself was not running, and unread heartbeats may be
//!    waiting.
//! 9. **Every request gets exactly one reply.** A waiting request is keyed
//!    by the (index, term) of its entry: it is answered when that index is
//!    applied (its result, or `not_leader` if another entry took the
//!    index), when leadership is lost (`leader_changed`), when its deadline
//!    passes (`timeout`), when storage fails, or when the node shuts down.
//!    A node that exits answers what arrives until the process ends.
//! 10. **A damaged node repairs before it votes.** Storage that refuses a
//!     directory for damage or loss sets it aside and starts the core with
//!     `HardState::repair` set, in a term above any it promised in
//!     (`storage::set_aside_for_repair`; docs/storage.md, "Repair from the
//!     cluster"). The core then never votes or campaigns, and writes the
//!     intact state only once `LogPersisted` (rule 4), or a snapshot written
//!     earlier in the same ordered batches (rules 2 and 6), covers an entry
//!     its leader committed in its own term: the durable log vouches for the
//!     promises before the hard state says it may make new ones.

// Binaries, tests, fuzz targets and the simulator use the library through
// its public items, so each states what it does and what it may return.
#![warn(missing_docs)]

pub(crate) mod binary;
pub mod config;
pub(crate) mod deferred_drop;
pub mod node;
pub mod protocol;
pub mod queue;
pub mod raft;
mod rate_limited;
pub mod shell;
pub mod storage;
