//! The replicated state machine: topics of FIFO messages. It knows nothing of
//! Raft; it applies committed commands in order and returns their replies.

mod command;
mod snapshot;
mod state_machine;

pub use command::{Command, DecodeError};
pub use state_machine::{QueueReply, QueueStateMachine};
