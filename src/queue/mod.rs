//! The replicated state machine: topics of FIFO messages. It knows nothing of
//! Raft; it applies committed commands in order and returns their replies.

mod command;
mod limits;
mod session;
mod snapshot;
mod state_machine;

pub use command::{Command, DecodeError, Session, SessionCommand};
pub use limits::{MAX_CLIENT_ID_BYTES, MAX_QUEUED_MESSAGE_BYTES, MAX_TOPICS, MAX_TOPIC_NAME_BYTES};
pub use session::{SessionCheck, SessionLimits, SessionRecord, SessionTable};
pub use state_machine::{MessageQueue, QueueReply, QueueStateMachine};
