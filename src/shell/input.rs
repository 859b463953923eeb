//! What reaches the shell: requests decoded by the listener threads, peer
//! messages, and the reports of the disk and snapshot threads.

use std::path::PathBuf;

use serde_json::Value;

use crate::queue::{Command, QueueStateMachine, Session, SessionCommand};
use crate::raft::{LogIndex, Message, NodeId, Snapshot, Term};
use crate::storage::DiskReport;

/// Where a reply goes: the ROUTER routing frames, up to the empty delimiter.
pub type Envelope = Vec<Vec<u8>>;

/// One input to the shell.
pub enum Input {
    /// A decoded Raft message from another member.
    Peer {
        /// The sender, checked against the configuration by the listener.
        from: NodeId,
        /// The message.
        message: Message,
    },
    /// A queue request (a read or a write).
    Client(ClientCommand),
    /// `{"op":"transfer_leader"}`.
    Transfer(TransferRequest),
    /// What the disk made durable, or that storage failed or recovered.
    Disk(DiskReport),
    /// The snapshot writer finished a snapshot (or failed to).
    SnapshotWritten(SnapshotWritten),
    /// SIGTERM or SIGINT: hand leadership over if leading, then exit.
    Shutdown,
}

impl Input {
    /// Control-plane inputs keep the cluster alive (votes, heartbeats and
    /// their answers, durability reports); they never wait behind clients.
    pub fn is_control(&self) -> bool {
        !matches!(self, Input::Client(_) | Input::Transfer(_))
    }

    /// The input's kind, for the slow-turn warning.
    pub fn kind(&self) -> &'static str {
        match self {
            Input::Peer { .. } => "peer message",
            Input::Client(_) => "client request",
            Input::Transfer(_) => "transfer request",
            Input::Disk(DiskReport::Durable { saved_snapshot: Some(_), .. }) => "snapshot in place",
            Input::Disk(DiskReport::Durable { .. }) => "durability report",
            Input::Disk(_) => "storage failure or recovery",
            Input::SnapshotWritten(_) => "snapshot written",
            Input::Shutdown => "shutdown",
        }
    }
}

/// `{"op":"transfer_leader","to":<index>}` and where its reply goes.
pub struct TransferRequest {
    /// Where the reply goes.
    pub envelope: Envelope,
    /// The request's `id`, echoed in the reply.
    pub id: Option<Value>,
    /// The node that should lead.
    pub to: NodeId,
}

/// A decoded queue request and where its reply goes.
pub struct ClientCommand {
    /// Where the reply goes.
    pub envelope: Envelope,
    /// The request's `id`, echoed in the reply.
    pub id: Option<Value>,
    /// Exactly-once session (client id and sequence number), if any.
    pub session: Option<Session>,
    /// The queue operation.
    pub command: Command,
}

impl ClientCommand {
    /// The log entry for this request.
    pub fn encode_entry(&self) -> Vec<u8> {
        SessionCommand::encode_parts(self.session.as_ref(), &self.command)
    }
}

/// Work for the snapshot writer: encode this copy of the state machine and
/// write it, synced, to a temporary file.
pub struct SnapshotJob {
    /// A copy of the state machine as of `last_index` (messages are shared).
    pub queue: QueueStateMachine,
    /// The last entry the copy reflects.
    pub last_index: LogIndex,
    /// That entry's term.
    pub last_term: Term,
}

/// What the snapshot writer reports: the snapshot and its temporary file.
pub type SnapshotWritten = Result<(Snapshot, PathBuf), String>;
