//! The consensus core. Pure: it takes events and returns effects, and never
//! touches a socket, a clock or a random number generator.

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
mod tests;

pub use self::core::{CoreConfig, NotLeader, RaftCore};
pub use effect::Effect;
pub use event::Event;
pub use log::RaftLog;
pub use message::{
    AppendEntries, AppendEntriesResponse, InstallSnapshot, InstallSnapshotResponse, Message, RequestVote,
    RequestVoteResponse, TimeoutNow,
};
pub use transfer::TransferError;
pub use types::{Entry, HardState, LogIndex, NodeId, Role, Snapshot, Term};

mod types;
