//! The replicated state machine: topics of FIFO messages. It knows nothing of
//! Raft; it applies committed commands in order and returns their replies.

mod command;
mod session;
mod snapshot;
mod state_machine;

pub use command::{Command, DecodeError, Session, SessionCommand};
pub use session::{SessionCheck, SessionLimits, SessionRecord, SessionTable};
pub use state_machine::{MessageQueue, QueueReply, QueueStateMachine};
