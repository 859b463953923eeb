//! The event loop thread: the thin driver of the shell. Each turn it waits
//! for an input or the shell's next deadline, takes every waiting
//! control-plane input (peer messages, disk and snapshot reports, signals)
//! and then a bounded number of client requests, so a client flood never
//! delays a heartbeat, a vote or a durability report. It ends the turn,
//! publishes the status, and executes the outputs: sends on the peer
//! sockets, replies through the client listener, batches to the
//! LogManager, jobs to the snapshot thread. It never waits for the disk.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Select, Sender};
use log::{error, warn};

use super::client_listener::{OutgoingReply, ReplyBatch};
use super::entry_garbage::{EntryGarbage, ENTRIES_FREED_PER_TURN};
use super::peer_senders::PeerSenders;
use super::releaser::Releaser;
use super::snapshotter::Snapshotter;
use super::turn_timing::TurnTiming;
use crate::protocol::StatusReport;
use crate::shell::{Garbage, Input, Output, Shell, Time};
use crate::storage::LogManagerHandle;

/// Control inputs taken per turn at most (they are cheap, and a backlog of
/// them is what keeps a leader in office).
const MAX_CONTROL_INPUTS_PER_TURN: usize = 65_536;
/// Client requests taken per turn at most, so a turn stays short and the
/// timers and the control plane keep their pace under any client load.
pub const MAX_CLIENT_INPUTS_PER_TURN: usize = 512;
/// A turn longer than this is logged: it delays heartbeats.
const SLOW_TURN: Duration = Duration::from_millis(50);
/// Longest sleep, so a loop with nothing armed still notices shutdown.
const MAX_WAIT: Duration = Duration::from_millis(100);

/// The event loop's connections to the rest of the process.
pub struct Wiring {
    pub peers: PeerSenders,
    /// PUSH socket to the client listener, which owns the client sockets:
    /// an empty frame rings it after a batch of replies is handed over.
    pub replies_doorbell: zmq::Socket,
    /// The turn's replies, for the client listener to encode and send.
    pub reply_batches: Sender<ReplyBatch>,
    /// Peer messages, disk and snapshot reports, shutdown.
    pub control: Receiver<Input>,
    /// Client requests, bounded: the listener answers `busy` when full.
    pub clients: Receiver<Input>,
    pub status: Arc<Mutex<StatusReport>>,
    pub snapshotter: Snapshotter,
    pub log_manager: LogManagerHandle,
    pub releaser: Releaser,
}

pub struct EventLoop {
    shell: Shell,
    wiring: Wiring,
    started: Instant,
    outputs: Vec<Output>,
    /// The replies of the outputs being executed.
    replies: ReplyBatch,
    /// Compacted entries, freed a bounded number per turn.
    entry_garbage: EntryGarbage,
}

impl EventLoop {
    /// `started` is the instant the shell's clock counts from.
    pub fn new(shell: Shell, wiring: Wiring, started: Instant) -> EventLoop {
        EventLoop {
            shell,
            wiring,
            started,
            outputs: Vec::new(),
            replies: Vec::new(),
            entry_garbage: EntryGarbage::default(),
        }
    }

    fn now(&self) -> Time {
        self.started.elapsed()
    }

    /// Serve until the shell has exited.
    pub fn run(mut self) {
        self.flush();
        let control = self.wiring.control.clone();
        let clients = self.wiring.clients.clone();
        loop {
            let now = self.now();
            let mut wait = self.shell.next_deadline().map_or(MAX_WAIT, |deadline| deadline.saturating_sub(now));
            if !self.entry_garbage.is_empty() {
                // Free the rest between inputs rather than sleep on it.
                wait = Duration::ZERO;
            }
            let mut select = Select::new();
            select.recv(&control);
            select.recv(&clients);
            let _ = select.ready_timeout(wait.min(MAX_WAIT));
            let mut timing = TurnTiming::start();
            for input in control.try_iter().take(MAX_CONTROL_INPUTS_PER_TURN) {
                timing.taken.0 += 1;
                let now = self.now();
                timing.input(input.kind(), || self.shell.on_input(input, now));
            }
            for input in clients.try_iter().take(MAX_CLIENT_INPUTS_PER_TURN) {
                timing.taken.1 += 1;
                let now = self.now();
                timing.input(input.kind(), || self.shell.on_input(input, now));
            }
            let now = self.now();
            timing.end_turn(|| self.shell.end_turn(now));
            let outputs = timing.flush(|| self.flush());
            let took = timing.elapsed();
            if took > SLOW_TURN {
                warn!(
                    "a turn took {} ms ({} control inputs, {} client requests, {outputs} outputs; {}); \
                     heartbeats wait that long",
                    took.as_millis(),
                    timing.taken.0,
                    timing.taken.1,
                    timing.breakdown()
                );
            }
            if self.shell.exit_time().is_some_and(|until| self.now() >= until) {
                return;
            }
        }
    }

    /// Publish the status, then execute the turn's outputs in order: the
    /// status first, so no reply reports a commit the status does not show.
    fn flush(&mut self) -> usize {
        let report = self.shell.status_report();
        *self.wiring.status.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = report;
        self.shell.take_outputs(&mut self.outputs);
        let mut outputs = std::mem::take(&mut self.outputs);
        let count = outputs.len();
        for output in outputs.drain(..) {
            self.execute(output);
        }
        self.outputs = outputs;
        self.hand_over_replies();
        let releaser = &self.wiring.releaser;
        self.entry_garbage.free_some(ENTRIES_FREED_PER_TURN, |emptied| releaser.drop_later(Garbage::Entries(emptied)));
        count
    }

    /// Give the turn's replies to the client listener in one batch and
    /// ring it once: one wake-up a turn instead of one per reply.
    fn hand_over_replies(&mut self) {
        if self.replies.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.replies);
        if self.wiring.reply_batches.send(batch).is_err() {
            error!("cannot hand replies to the client listener: it has stopped");
            return;
        }
        if let Err(failure) = self.wiring.replies_doorbell.send(zmq::Message::new(), 0) {
            error!("cannot ring the client listener for its replies: {failure}");
        }
    }

    fn execute(&mut self, output: Output) {
        match output {
            Output::Send { to, message } => self.wiring.peers.send(to, &message),
            Output::Reply { envelope, id, body } => self.replies.push(OutgoingReply { envelope, id, body }),
            Output::WriteBatch { epoch, sequence, operations } => {
                self.wiring.log_manager.submit(epoch, sequence, operations)
            }
            Output::WriteSnapshot(job) => self.wiring.snapshotter.submit(job),
            Output::Release(Garbage::Entries(entries)) => self.entry_garbage.push(entries),
            Output::Release(garbage) => self.wiring.releaser.drop_later(garbage),
            Output::RemoveFile(path) => {
                let _ = std::fs::remove_file(path);
            }
            Output::Fatal { detail } => {
                error!("stopping: {detail}");
                std::process::exit(70);
            }
            // Let the LogManager finish its last group; the loop keeps
            // answering arrivals until the shell's exit time.
            Output::Exit => self.wiring.log_manager.close(),
        }
    }
}
