//! What the listener threads forward to the event loop.

use serde_json::Value;

use super::pending::Envelope;
use crate::queue::{Command, Session, SessionCommand};
use crate::raft::{Message, NodeId};
use crate::storage::DiskReport;

pub enum Input {
    Peer {
        from: NodeId,
        message: Message,
    },
    Client(ClientCommand),
    Transfer(TransferRequest),
    /// What the LogManager made durable, or that storage failed or recovered.
    Disk(DiskReport),
    /// The snapshot thread finished a snapshot (or failed to).
    SnapshotWritten(super::snapshotter::SnapshotWritten),
    Shutdown,
}

/// `{"op":"transfer_leader","to":<index>}` and where its reply goes.
pub struct TransferRequest {
    pub envelope: Envelope,
    pub id: Option<Value>,
    pub to: NodeId,
}

/// A decoded queue request and where its reply goes.
pub struct ClientCommand {
    pub envelope: Envelope,
    pub id: Option<Value>,
    pub session: Option<Session>,
    pub command: Command,
}

impl ClientCommand {
    /// The log entry for this request.
    pub fn encode_entry(&self) -> Vec<u8> {
        SessionCommand::encode_parts(self.session.as_ref(), &self.command)
    }
}
