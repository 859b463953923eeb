//! The consensus core. Pure: it takes events and returns effects, and never
//! touches a socket, a clock or a random number generator.
//!
//! The shell feeds [`RaftCore`] [`Event`]s and client calls, and carries out
//! the [`Effect`]s it returns under the rules in [`Effect`]'s module
//! (writes in order; a message that speaks for durable state only after the
//! writes before it are durable; apply as soon as committed).
//!
//! The core does not trust what peers send: a message that no honest member
//! could have sent is dropped with `Effect::MessageDropped`, before it can
//! change anything. It does trust the sender id the shell gives it.

mod core;
mod effect;
mod election;
mod event;
mod log;
mod message;
mod pre_vote;
mod progress;
mod quorum;
mod read_index;
mod repair;
mod replication;
mod role;
mod snapshot;
mod transfer;
mod validation;

#[cfg(test)]
mod forged_tests;
#[cfg(test)]
mod hostile_sequences;
#[cfg(test)]
mod repair_tests;
#[cfg(test)]
mod tests;

pub use self::core::{CoreConfig, NotLeader, RaftCore};
pub use effect::Effect;
pub use event::Event;
pub use log::RaftLog;
pub use message::{
    AppendEntries, AppendEntriesResponse, InstallSnapshot, InstallSnapshotResponse, Message, RequestVote,
    RequestVoteResponse, TermAnswer, TermQuery, TimeoutNow,
};
pub use transfer::TransferError;
pub use types::{Entry, HardState, LogIndex, NodeId, Repair, Role, Snapshot, Term};

mod types;
