//! What the shell asks its driver to do. The driver executes outputs in the
//! order they were emitted; none of them needs an answer at once (the disk
//! and the snapshot writer report back later as inputs).

use std::path::PathBuf;

use serde_json::Value;

use super::input::{Envelope, SnapshotJob};
use crate::protocol::ReplyBody;
use crate::raft::{Entry, Message, NodeId};
use crate::storage::DiskOperation;

/// One thing for the driver to do.
#[derive(Debug)]
pub enum Output {
    /// Send a message to a peer. Loss is fine: Raft retries.
    Send {
        /// The recipient.
        to: NodeId,
        /// The message.
        message: Message,
    },
    /// Answer a client.
    Reply {
        /// Where the reply goes.
        envelope: Envelope,
        /// The request's `id`, echoed.
        id: Option<Value>,
        /// The reply.
        body: ReplyBody,
    },
    /// Write these operations in order, then sync, then report
    /// `DiskReport::Durable` for `sequence` (or a failure) as an input.
    /// Batches are numbered 1, 2, 3... within an epoch's life.
    WriteBatch {
        /// The storage epoch the batch belongs to; the disk drops batches of
        /// an epoch a failure ended.
        epoch: u64,
        /// Batch number; reports name the last durable one.
        sequence: u64,
        /// What to write.
        operations: Vec<DiskOperation>,
    },
    /// Encode and write a snapshot off the event loop; report
    /// `Input::SnapshotWritten`.
    WriteSnapshot(SnapshotJob),
    /// Free this, preferably off the event loop; dropping it anywhere is
    /// correct.
    Release(Garbage),
    /// Delete a temporary file that is no longer wanted.
    RemoveFile(PathBuf),
    /// The shell cannot go on safely (see `detail`): log it and end the
    /// process; a restart recovers from what storage holds.
    Fatal {
        /// Why.
        detail: String,
    },
    /// The shell has stopped: let the disk finish what it holds, then exit.
    /// Inputs that still arrive are answered by `Shell::refuse_while_exiting`.
    Exit,
}

impl std::fmt::Debug for SnapshotJob {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "SnapshotJob {{ last_index: {}, last_term: {} }}", self.last_index, self.last_term)
    }
}

/// Memory the shell no longer needs, large enough that freeing it would
/// hold up a turn: millions of entries, or an image of hundreds of MB,
/// whose pages go back to the kernel.
pub enum Garbage {
    /// Entries dropped by log compaction (`Effect::ReleaseEntries`), or a
    /// batch's emptied buffer.
    Entries(Vec<Entry>),
    /// A snapshot image the core has replaced.
    Image(std::sync::Arc<Vec<u8>>),
    /// The copy of the state machine a snapshot was encoded from.
    StateCopy(Box<crate::queue::QueueStateMachine>),
}

impl std::fmt::Debug for Garbage {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Garbage::Entries(entries) => write!(formatter, "Garbage::Entries({} entries)", entries.len()),
            Garbage::Image(image) => write!(formatter, "Garbage::Image({} bytes)", image.len()),
            Garbage::StateCopy(_) => write!(formatter, "Garbage::StateCopy"),
        }
    }
}
