//! The event loop: the one thread that owns the consensus core, the
//! LogManager, the queue state machine, the timers and the pending client
//! requests. Each turn it takes every input that is waiting (so one turn's
//! persist covers a whole batch), then executes the core's effects: persist
//! and sync first, then send and apply in the order emitted (etcd's Ready).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use log::{error, info};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::input::{ClientCommand, Input};
use super::peer_senders::PeerSenders;
use super::pending::{Envelope, PendingRequest, PendingRequests};
use super::timer::Timer;
use super::NodeSettings;
use crate::protocol::{ErrorCode, ReplyBody, StatusReport};
use crate::queue::{Command, QueueStateMachine};
use crate::raft::{Effect, Event, LogIndex, NodeId, RaftCore, Role};
use crate::storage::{LogManager, StorageError};

/// Inputs taken per turn at most, so timers and replies keep flowing.
const MAX_INPUTS_PER_TURN: usize = 8192;
/// Longest sleep, so a loop with nothing armed still notices shutdown.
const MAX_WAIT: Duration = Duration::from_millis(100);
/// On shutdown, time for the client listener to put the last replies on
/// the wire before the process exits.
const SHUTDOWN_FLUSH: Duration = Duration::from_millis(200);

/// The event loop's connections to the rest of the process.
pub struct Wiring {
    pub peers: PeerSenders,
    /// PUSH socket to the client listener, which owns the client sockets.
    pub replies: zmq::Socket,
    pub inputs: Receiver<Input>,
    pub status: Arc<Mutex<StatusReport>>,
    /// Client endpoint of every node, for redirects.
    pub client_endpoints: Vec<String>,
}

pub struct EventLoop {
    core: RaftCore,
    log_manager: LogManager,
    queue: QueueStateMachine,
    pending: PendingRequests,
    wiring: Wiring,
    settings: NodeSettings,
    election_timer: Timer,
    heartbeat_timer: Timer,
    last_applied: LogIndex,
    rng: SmallRng,
    proposals: Vec<ClientCommand>,
    effects: Vec<Effect>,
}

impl EventLoop {
    pub fn new(core: RaftCore, log_manager: LogManager, wiring: Wiring, settings: NodeSettings) -> EventLoop {
        EventLoop {
            core,
            log_manager,
            queue: QueueStateMachine::new(),
            pending: PendingRequests::default(),
            wiring,
            settings,
            election_timer: Timer::default(),
            heartbeat_timer: Timer::default(),
            last_applied: 0,
            rng: SmallRng::from_entropy(),
            proposals: Vec::new(),
            effects: Vec::new(),
        }
    }

    /// Serve until a shutdown input arrives; a storage failure ends the node.
    pub fn run(mut self) -> Result<(), StorageError> {
        self.execute_effects()?;
        self.publish_status();
        loop {
            let wait = self.time_to_next_deadline(Instant::now());
            let first = match self.wiring.inputs.recv_timeout(wait) {
                Ok(input) => Some(input),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            };
            let waiting = first.into_iter().chain(self.wiring.inputs.try_iter().take(MAX_INPUTS_PER_TURN));
            let mut shutdown = false;
            for input in waiting {
                match input {
                    Input::Peer { from, message } => self.core.step(Event::Message { from, message }),
                    Input::Client(command) => self.proposals.push(command),
                    Input::Shutdown => shutdown = true,
                }
            }
            if shutdown {
                self.shut_down();
                return Ok(());
            }
            self.propose_waiting();
            self.fire_timers(Instant::now());
            self.execute_effects()?;
            self.expire_pending(Instant::now());
            self.publish_status();
        }
    }

    /// Answer every request this node holds, so none is left without a
    /// reply: those never proposed certainly did not take effect; those
    /// waiting for commit may still commit under the next leader.
    fn shut_down(&mut self) {
        let mut unproposed = std::mem::take(&mut self.proposals);
        for input in self.wiring.inputs.try_iter() {
            if let Input::Client(command) = input {
                unproposed.push(command);
            }
        }
        let body = self.redirect(ErrorCode::NotLeader, None, "the node is shutting down; the request was not applied");
        for proposal in unproposed {
            self.reply(&proposal.envelope, body.clone(), proposal.id.as_ref());
        }
        self.fail_all_pending("the node is shutting down; the request may or may not take effect");
        std::thread::sleep(SHUTDOWN_FLUSH);
    }

    fn time_to_next_deadline(&mut self, now: Instant) -> Duration {
        [self.election_timer.deadline(), self.heartbeat_timer.deadline(), self.pending.next_deadline()]
            .into_iter()
            .flatten()
            .min()
            .map_or(MAX_WAIT, |deadline| deadline.saturating_duration_since(now).min(MAX_WAIT))
    }

    fn fire_timers(&mut self, now: Instant) {
        if self.election_timer.fire_if_due(now) {
            self.core.step(Event::ElectionTimeout);
        }
        if self.heartbeat_timer.fire_if_due(now) {
            self.core.step(Event::HeartbeatTimeout);
        }
    }

    /// Hand this turn's client commands to the core as one batch.
    fn propose_waiting(&mut self) {
        if self.proposals.is_empty() {
            return;
        }
        let mut proposals = std::mem::take(&mut self.proposals);
        if self.core.role() == Role::Leader && self.pending.len() + proposals.len() > self.settings.max_pending_requests
        {
            let detail = format!(
                "{} requests already wait for commit (limit {}); retry later",
                self.pending.len(),
                self.settings.max_pending_requests
            );
            for proposal in proposals {
                self.reply(&proposal.envelope, ReplyBody::error(ErrorCode::Busy, detail.clone()), proposal.id.as_ref());
            }
            return;
        }
        let commands: Vec<Vec<u8>> = proposals.iter().map(|proposal| proposal.command.encode()).collect();
        match self.core.propose(commands) {
            Ok((first_index, term)) => {
                let deadline = Instant::now() + self.settings.request_deadline();
                for (offset, proposal) in proposals.drain(..).enumerate() {
                    let waiting = PendingRequest { term, envelope: proposal.envelope, id: proposal.id, deadline };
                    self.pending.insert(first_index + offset as LogIndex, waiting);
                }
            }
            Err(not_leader) => {
                let body = self.redirect(ErrorCode::NotLeader, not_leader.leader, "this node is not the leader");
                for proposal in proposals {
                    self.reply(&proposal.envelope, body.clone(), proposal.id.as_ref());
                }
            }
        }
    }

    /// Persist and sync everything first, then run the rest in order; repeat
    /// while the core has more to say (durability reports produce commits).
    fn execute_effects(&mut self) -> Result<(), StorageError> {
        loop {
            self.core.drain_effects(&mut self.effects);
            if self.effects.is_empty() {
                return Ok(());
            }
            let mut effects = std::mem::take(&mut self.effects);
            for effect in &effects {
                match effect {
                    Effect::PersistHardState(hard_state) => self.log_manager.save_hard_state(*hard_state)?,
                    Effect::PersistEntries(entries) => self.log_manager.append_entries(entries)?,
                    _ => {}
                }
            }
            if let Some((index, term)) = self.log_manager.sync()? {
                self.core.step(Event::LogPersisted { index, term });
            }
            for effect in effects.drain(..) {
                self.execute_after_persist(effect);
            }
            // Keep the buffer's capacity for the next round: no allocation per turn.
            assert!(self.effects.is_empty(), "effects are drained from the core only at the top of the loop");
            self.effects = effects;
        }
    }

    fn execute_after_persist(&mut self, effect: Effect) {
        match effect {
            Effect::PersistHardState(_) | Effect::PersistEntries(_) => {}
            Effect::Send { to, message } => self.wiring.peers.send(to, &message),
            Effect::Apply { first_index, last_index } => self.apply(first_index, last_index),
            Effect::ResetElectionTimer => {
                let timeout_ms =
                    self.rng.gen_range(self.settings.election_timeout_min_ms..=self.settings.election_timeout_max_ms);
                self.election_timer.reset(Instant::now(), Duration::from_millis(timeout_ms));
            }
            Effect::ResetHeartbeatTimer => {
                let interval = Duration::from_millis(self.settings.heartbeat_interval_ms);
                self.heartbeat_timer.reset(Instant::now(), interval);
            }
            Effect::RoleChanged { role, term, leader } => self.on_role_changed(role, term, leader),
        }
    }

    fn on_role_changed(&mut self, role: Role, term: u64, leader: Option<NodeId>) {
        let leader_text = leader.map_or("unknown".to_string(), |id| id.to_string());
        info!("node {}: {} in term {term} (leader: {leader_text})", self.core.id(), role.as_str());
        if role != Role::Leader {
            self.fail_all_pending("leadership was lost before the request committed; it may or may not take effect");
        }
    }

    /// Apply committed entries in order and answer whoever waits on them.
    fn apply(&mut self, first_index: LogIndex, last_index: LogIndex) {
        assert_eq!(first_index, self.last_applied + 1, "entries are applied in order, once");
        for index in first_index..=last_index {
            let entry = self.core.log().entry(index).expect("committed entries are in the log");
            let body = if entry.is_noop() {
                None
            } else {
                Some(match Command::decode(&entry.data) {
                    Ok(command) => ReplyBody::Queue(self.queue.apply(&command)),
                    Err(failure) => {
                        error!("entry {index} holds an {failure}; skipped");
                        ReplyBody::error(ErrorCode::BadRequest, failure.to_string())
                    }
                })
            };
            let entry_term = entry.term;
            self.last_applied = index;
            let Some(waiting) = self.pending.take(index) else {
                continue;
            };
            let body = match body {
                Some(body) if waiting.term == entry_term => body,
                // Determinate: a different entry committed at this index, so
                // this request's entry never will.
                _ => self.redirect(
                    ErrorCode::NotLeader,
                    self.core.leader(),
                    "the request's log entry was replaced by a newer leader's; it was not applied",
                ),
            };
            self.reply(&waiting.envelope, body, waiting.id.as_ref());
        }
    }

    fn expire_pending(&mut self, now: Instant) {
        for waiting in self.pending.take_expired(now) {
            let detail = format!(
                "the request did not commit within {} ms; it may or may not take effect",
                self.settings.request_deadline_ms
            );
            self.reply(&waiting.envelope, ReplyBody::error(ErrorCode::Timeout, detail), waiting.id.as_ref());
        }
    }

    fn fail_all_pending(&mut self, detail: &str) {
        let body = self.redirect(ErrorCode::LeaderChanged, self.core.leader(), detail);
        for waiting in self.pending.take_all() {
            self.reply(&waiting.envelope, body.clone(), waiting.id.as_ref());
        }
    }

    fn redirect(&self, code: ErrorCode, leader: Option<NodeId>, detail: &str) -> ReplyBody {
        let address = leader.and_then(|id| self.wiring.client_endpoints.get(id).cloned());
        ReplyBody::redirect(code, address, detail)
    }

    fn reply(&self, envelope: &Envelope, body: ReplyBody, id: Option<&serde_json::Value>) {
        let encoded = body.encode(id);
        let frames = envelope.iter().map(Vec::as_slice).chain(std::iter::once(encoded.as_slice()));
        if let Err(failure) = self.wiring.replies.send_multipart(frames, 0) {
            error!("cannot hand a reply to the client listener: {failure}");
        }
    }

    fn publish_status(&self) {
        let report = StatusReport {
            role: self.core.role().as_str(),
            term: self.core.term(),
            leader: self.core.leader(),
            commit_index: self.core.commit_index(),
            last_applied: self.last_applied,
            log_size: self.core.log().last_index(),
        };
        *self.wiring.status.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = report;
    }
}
