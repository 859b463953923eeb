//! The event loop: the one thread that owns the consensus core, the queue
//! state machine, the timers and the pending client requests, and hands
//! writes to the LogManager's thread. Each turn it takes every input that is
//! waiting (so one turn's writes form one batch), then executes the core's
//! effects in order: writes go into the turn's disk batch, sends that must
//! follow those writes wait for the LogManager to report them durable, and
//! everything else runs at once. It never waits for the disk itself, so
//! heartbeats and the election timer keep their pace on a slow disk.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use log::{error, info};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::held_sends::HeldSends;
use super::input::{ClientCommand, Input, TransferRequest};
use super::peer_senders::PeerSenders;
use super::pending::{Envelope, PendingRequest, PendingRequests};
use super::reads::{WaitingRead, WaitingReads};
use super::snapshotter::{SnapshotJob, SnapshotWritten, Snapshotter};
use super::timer::Timer;
use super::NodeSettings;
use crate::protocol::{ErrorCode, ReplyBody, StatusReport};
use crate::queue::{QueueReply, QueueStateMachine};
use crate::raft::{CoreConfig, Effect, Event, LogIndex, Message, NodeId, RaftCore, Role, Snapshot, TransferError};
use crate::storage::{DiskOperation, DiskReport, LogManagerHandle, RecoveredState, RECORD_OVERHEAD_BYTES};

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
    pub snapshotter: Snapshotter,
    /// Client endpoint of every node, for redirects.
    pub client_endpoints: Vec<String>,
}

pub struct EventLoop {
    core: RaftCore,
    core_config: CoreConfig,
    log_manager: LogManagerHandle,
    queue: QueueStateMachine,
    pending: PendingRequests,
    wiring: Wiring,
    settings: NodeSettings,
    election_timer: Timer,
    heartbeat_timer: Timer,
    /// Armed with the shortest election timeout whenever the election timer
    /// is: when it fires, a follower stops counting on a silent leader.
    lease_timer: Timer,
    last_applied: LogIndex,
    rng: SmallRng,
    proposals: Vec<ClientCommand>,
    /// This turn's reads; they join one ReadIndex round.
    reads_to_start: Vec<ClientCommand>,
    waiting_reads: WaitingReads,
    /// transfer_leader requests waiting to see leadership move.
    transfers: Vec<(TransferRequest, Instant)>,
    /// Set when SIGTERM arrived on a leader: it hands leadership over and
    /// exits once another node leads or this passes.
    shutdown_deadline: Option<Instant>,
    effects: Vec<Effect>,
    /// This turn's writes, submitted as one batch at the end of the turn.
    disk_batch: Vec<DiskOperation>,
    /// Highest batch the LogManager reported durable.
    durable_batch: u64,
    held: HeldSends,
    /// When this follower last sent a capped acknowledgement ahead of its disk.
    capped_ack_sent_at: Option<Instant>,
    /// Why storage failed, while it does: the node then takes no part.
    storage_error: Option<String>,
    disk_bytes: u64,
    disk_syncs: u64,
    /// Log bytes applied since the last snapshot, against the threshold.
    bytes_since_snapshot: u64,
    snapshot_in_progress: bool,
}

impl EventLoop {
    /// `queue` is the state machine restored from `recovered`'s snapshot.
    pub fn new(
        core_config: CoreConfig,
        recovered: RecoveredState,
        queue: QueueStateMachine,
        log_manager: LogManagerHandle,
        wiring: Wiring,
        settings: NodeSettings,
    ) -> EventLoop {
        let last_applied = recovered.snapshot.as_ref().map_or(0, |snapshot| snapshot.last_index);
        let core = RaftCore::restore(core_config.clone(), recovered.hard_state, recovered.snapshot, recovered.entries);
        EventLoop {
            core,
            core_config,
            log_manager,
            queue,
            pending: PendingRequests::default(),
            wiring,
            settings,
            election_timer: Timer::default(),
            heartbeat_timer: Timer::default(),
            lease_timer: Timer::default(),
            last_applied,
            rng: SmallRng::from_entropy(),
            proposals: Vec::new(),
            reads_to_start: Vec::new(),
            waiting_reads: WaitingReads::default(),
            transfers: Vec::new(),
            shutdown_deadline: None,
            effects: Vec::new(),
            disk_batch: Vec::new(),
            durable_batch: 0,
            held: HeldSends::default(),
            capped_ack_sent_at: None,
            storage_error: None,
            disk_bytes: 0,
            disk_syncs: 0,
            bytes_since_snapshot: 0,
            snapshot_in_progress: false,
        }
    }

    /// Serve until a shutdown input arrives.
    pub fn run(mut self) {
        self.execute_effects();
        self.publish_status();
        // A handle of our own, so handling an input may borrow `self` mutably.
        let inputs = self.wiring.inputs.clone();
        loop {
            let wait = self.time_to_next_deadline(Instant::now());
            let first = match inputs.recv_timeout(wait) {
                Ok(input) => Some(input),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let waiting = first.into_iter().chain(inputs.try_iter().take(MAX_INPUTS_PER_TURN));
            let mut shutdown = false;
            for input in waiting {
                match input {
                    Input::Peer { from, message } => {
                        if self.storage_error.is_none() {
                            self.core.step(Event::Message { from, message });
                        }
                    }
                    Input::Client(command) if command.command.is_read_only() => self.reads_to_start.push(command),
                    Input::Client(command) => self.proposals.push(command),
                    Input::Transfer(request) => self.on_transfer_request(request),
                    Input::Disk(report) => self.on_disk_report(report),
                    Input::SnapshotWritten(outcome) => self.on_snapshot_written(outcome),
                    Input::Shutdown => shutdown = true,
                }
            }
            if shutdown && !self.begin_shutdown() {
                self.shut_down();
                return;
            }
            self.propose_waiting();
            self.start_reads();
            // Effects first: a heartbeat read this turn re-arms the election
            // timer before timers are checked, so a turn that ran long does not
            // start an election against a leader that was just heard from.
            self.execute_effects();
            if self.fire_timers(Instant::now()) {
                self.execute_effects();
            }
            self.expire_pending(Instant::now());
            self.serve_reads();
            self.publish_status();
            if self.handover_finished(Instant::now()) {
                self.shut_down();
                return;
            }
        }
    }

    /// While shutting down after SIGTERM: true once another node leads
    /// (this node then has sent its vote for it), once the transfer was
    /// abandoned, or once the deadline passed.
    fn handover_finished(&self, now: Instant) -> bool {
        let Some(deadline) = self.shutdown_deadline else {
            return false;
        };
        let leading = self.core.role() == Role::Leader;
        let handed_over = !leading && self.core.leader().is_some();
        let abandoned = leading && self.core.transfer_target().is_none();
        handed_over || abandoned || now >= deadline
    }

    /// On SIGTERM, a leader hands leadership to its most caught-up
    /// follower before exiting, so the cluster sees no election gap (Raft
    /// dissertation §3.10). True if a transfer began and the exit waits for it.
    fn begin_shutdown(&mut self) -> bool {
        if self.storage_error.is_some() || self.shutdown_deadline.is_some() {
            return self.shutdown_deadline.is_some();
        }
        let Some(target) = self.core.best_transfer_target() else {
            return false;
        };
        if self.core.transfer_leadership(target).is_err() {
            return false;
        }
        info!("node {}: shutting down; handing leadership to node {target} first", self.core.id());
        let wait = Duration::from_millis(self.settings.election_timeout_max_ms);
        self.shutdown_deadline = Some(Instant::now() + wait);
        true
    }

    /// Answer every request this node holds, so none is left without a
    /// reply: those never proposed certainly did not take effect; those
    /// waiting for commit may still commit under the next leader. Then let
    /// the LogManager finish its last group.
    fn shut_down(&mut self) {
        self.fail_all_pending("the node is shutting down; the request may or may not take effect");
        self.fail_reads("the node is shutting down; the read was not served");
        self.finish_transfers(true);
        let unproposed = std::mem::take(&mut self.proposals);
        let unread = std::mem::take(&mut self.reads_to_start);
        for command in unproposed.into_iter().chain(unread) {
            self.refuse_while_exiting(&command.envelope, command.id.as_ref());
        }
        self.log_manager.close();
        // Until the process exits, whatever still arrives is answered too,
        // so no client waits out its timeout on a node that is leaving.
        let exit_at = Instant::now() + SHUTDOWN_FLUSH;
        while let Ok(input) = self.wiring.inputs.recv_deadline(exit_at) {
            match input {
                Input::Client(command) => self.refuse_while_exiting(&command.envelope, command.id.as_ref()),
                Input::Transfer(request) => self.refuse_while_exiting(&request.envelope, request.id.as_ref()),
                _ => {}
            }
        }
    }

    fn refuse_while_exiting(&self, envelope: &Envelope, id: Option<&serde_json::Value>) {
        self.reply(envelope, super::shutting_down_reply(), id);
    }

    fn time_to_next_deadline(&mut self, now: Instant) -> Duration {
        let transfer = self.transfers.iter().map(|(_, deadline)| *deadline).min();
        [
            self.election_timer.deadline(),
            self.heartbeat_timer.deadline(),
            self.lease_timer.deadline(),
            self.pending.next_deadline(),
            self.waiting_reads.next_deadline(),
            transfer,
            self.shutdown_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
        .map_or(MAX_WAIT, |deadline| deadline.saturating_duration_since(now).min(MAX_WAIT))
    }

    /// Step the core with every timer that is due; true if any was.
    fn fire_timers(&mut self, now: Instant) -> bool {
        if self.storage_error.is_some() {
            return false;
        }
        let election = self.election_timer.fire_if_due(now);
        if election {
            self.core.step(Event::ElectionTimeout);
        }
        let heartbeat = self.heartbeat_timer.fire_if_due(now);
        if heartbeat {
            self.core.step(Event::HeartbeatTimeout);
        }
        let lease = self.lease_timer.fire_if_due(now);
        if lease {
            self.core.step(Event::LeaseTimeout);
        }
        election || heartbeat || lease
    }

    /// Start one ReadIndex round for every read that arrived this turn.
    fn start_reads(&mut self) {
        if self.reads_to_start.is_empty() {
            return;
        }
        let reads = std::mem::take(&mut self.reads_to_start);
        let refusal = if let Some(storage_error) = &self.storage_error {
            let detail = format!("this node's storage failed ({storage_error}); ask another node");
            ReplyBody::error(ErrorCode::StorageFailed, detail)
        } else {
            match self.core.read_index() {
                Ok(round) => {
                    let deadline = Instant::now() + self.settings.request_deadline();
                    for command in reads {
                        self.waiting_reads.add(WaitingRead { round, command, deadline });
                    }
                    return;
                }
                Err(not_leader) => {
                    self.redirect(ErrorCode::NotLeader, not_leader.leader, "this node is not the leader")
                }
            }
        };
        for read in reads {
            self.reply(&read.envelope, refusal.clone(), read.id.as_ref());
        }
    }

    /// Answer every confirmed read whose index the state machine reached.
    fn serve_reads(&mut self) {
        for read in self.waiting_reads.take_servable(self.last_applied) {
            let body = match self.queue.query(&read.command) {
                Some(reply) => ReplyBody::Queue(reply),
                None => ReplyBody::error(ErrorCode::BadRequest, "not a read-only request"),
            };
            self.reply(&read.envelope, body, read.id.as_ref());
        }
    }

    fn fail_reads(&mut self, detail: &str) {
        let body = self.redirect(ErrorCode::NotLeader, self.core.leader(), detail);
        for read in self.waiting_reads.take_all() {
            self.reply(&read.envelope, body.clone(), read.id.as_ref());
        }
    }

    fn on_transfer_request(&mut self, request: TransferRequest) {
        if self.core.role() == Role::Leader && request.to == self.core.id() {
            return self.reply(&request.envelope, ReplyBody::Queue(QueueReply::Done), request.id.as_ref());
        }
        let refusal = match self.core.transfer_leadership(request.to) {
            Ok(()) => {
                let wait = Duration::from_millis(self.settings.election_timeout_max_ms * 2);
                self.transfers.push((request, Instant::now() + wait));
                return;
            }
            Err(TransferError::NotLeader(not_leader)) => {
                self.redirect(ErrorCode::NotLeader, not_leader.leader, "only the leader can hand leadership over")
            }
            Err(TransferError::InvalidTarget) => {
                let detail = format!("node {} is not another member of this cluster", request.to);
                ReplyBody::error(ErrorCode::BadRequest, detail)
            }
        };
        self.reply(&request.envelope, refusal, request.id.as_ref());
    }

    /// Answer transfer requests: success once the target leads; an error
    /// once another node leads, this node takes leadership back, or the
    /// deadline passes. While the target's election runs (no leader known),
    /// they wait, unless the node is `closing`.
    fn finish_transfers(&mut self, closing: bool) {
        let now = Instant::now();
        // A leader's core names itself as leader.
        let leader = self.core.leader();
        let transferring = self.core.transfer_target().is_some();
        for (request, deadline) in std::mem::take(&mut self.transfers) {
            let body = match leader {
                Some(leader) if leader == request.to => ReplyBody::Queue(QueueReply::Done),
                _ if now >= deadline || closing => {
                    let detail = format!("leadership did not move to node {} in time", request.to);
                    ReplyBody::error(ErrorCode::Timeout, detail)
                }
                Some(other) if !transferring => {
                    let detail = format!("leadership went to node {other}, not node {}", request.to);
                    ReplyBody::error(ErrorCode::Timeout, detail)
                }
                // No leader known (the target's election is under way), or
                // this leader is still handing over: keep waiting.
                _ => {
                    self.transfers.push((request, deadline));
                    continue;
                }
            };
            self.reply(&request.envelope, body, request.id.as_ref());
        }
    }

    /// Hand this turn's client commands to the core as one batch.
    fn propose_waiting(&mut self) {
        if self.proposals.is_empty() {
            return;
        }
        let mut proposals = std::mem::take(&mut self.proposals);
        if let Some(storage_error) = &self.storage_error {
            let detail = format!("this node's storage failed ({storage_error}); it takes no writes until it recovers");
            for proposal in proposals {
                self.reply(
                    &proposal.envelope,
                    ReplyBody::error(ErrorCode::StorageFailed, detail.clone()),
                    proposal.id.as_ref(),
                );
            }
            return;
        }
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
        let commands: Vec<Vec<u8>> = proposals.iter().map(ClientCommand::encode_entry).collect();
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

    /// Run the core's effects in emission order. Writes join this turn's
    /// disk batch; a send that must follow them waits for that batch to be
    /// durable; the rest runs now. Repeats while the core has more to say.
    fn execute_effects(&mut self) {
        loop {
            self.core.drain_effects(&mut self.effects);
            if self.effects.is_empty() {
                break;
            }
            let mut effects = std::mem::take(&mut self.effects);
            for effect in effects.drain(..) {
                self.execute(effect);
            }
            self.maybe_snapshot();
            // Keep the buffer's capacity for the next round: no allocation per turn.
            assert!(self.effects.is_empty(), "effects are drained from the core only at the top of the loop");
            self.effects = effects;
        }
        if !self.disk_batch.is_empty() {
            let batch = std::mem::take(&mut self.disk_batch);
            self.log_manager.submit(batch);
        }
    }

    fn execute(&mut self, effect: Effect) {
        match effect {
            Effect::PersistHardState(hard_state) => self.disk_batch.push(DiskOperation::HardState(hard_state)),
            Effect::PersistEntries(entries) => self.disk_batch.push(DiskOperation::Entries(entries)),
            Effect::CompactLog { through_index } => self.disk_batch.push(DiskOperation::Compact(through_index)),
            Effect::InstallSnapshot { snapshot, log_kept } => self.install_snapshot(snapshot, log_kept),
            Effect::Send { to, message } => self.send_or_hold(to, message),
            Effect::Apply { first_index, last_index } => self.apply(first_index, last_index),
            Effect::ResetElectionTimer => {
                let timeout_ms =
                    self.rng.gen_range(self.settings.election_timeout_min_ms..=self.settings.election_timeout_max_ms);
                let now = Instant::now();
                self.election_timer.reset(now, Duration::from_millis(timeout_ms));
                self.lease_timer.reset(now, Duration::from_millis(self.settings.election_timeout_min_ms));
            }
            Effect::ReadsConfirmed { round, read_index } => {
                self.waiting_reads.confirm(round, read_index);
                self.serve_reads();
            }
            Effect::ResetHeartbeatTimer => {
                let interval = Duration::from_millis(self.settings.heartbeat_interval_ms);
                self.heartbeat_timer.reset(Instant::now(), interval);
            }
            Effect::RoleChanged { role, term, leader } => self.on_role_changed(role, term, leader),
            // Stopgap until the shell rate-limits a warning: debug, so forged
            // frames cannot flood the log.
            Effect::MessageDropped { from, reason } => log::debug!("dropped a message from node {from}: {reason}"),
        }
    }

    /// Send now, or after the writes emitted before this message are durable.
    fn send_or_hold(&mut self, to: NodeId, message: Message) {
        let submitted = self.log_manager.submitted_sequence();
        let writes_outstanding = !self.disk_batch.is_empty() || self.durable_batch < submitted;
        if writes_outstanding && message.needs_durability() {
            self.acknowledge_durable_prefix(to, &message);
            let after_batch = submitted + u64::from(!self.disk_batch.is_empty());
            self.held.hold(after_batch, to, message);
        } else {
            self.wiring.peers.send(to, &message);
        }
    }

    /// While a follower's acknowledgement waits for its disk, tell the
    /// leader now what is already durable: a success capped at the persisted
    /// index is true as it stands, and it keeps the leader's quorum check
    /// fed, so a follower's slow fsync cannot make a healthy leader step down.
    /// Once per heartbeat interval is enough for that; more would only double
    /// the leader's replies to handle under load.
    fn acknowledge_durable_prefix(&mut self, to: NodeId, message: &Message) {
        let Message::AppendEntriesResponse(response) = message else {
            return;
        };
        let now = Instant::now();
        let interval = Duration::from_millis(self.settings.heartbeat_interval_ms);
        let recently = self.capped_ack_sent_at.is_some_and(|sent| now.duration_since(sent) < interval);
        if !response.success || recently {
            return;
        }
        self.capped_ack_sent_at = Some(now);
        let mut capped = response.clone();
        capped.index = capped.index.min(self.core.persisted_index());
        self.wiring.peers.send(to, &Message::AppendEntriesResponse(capped));
    }

    fn on_disk_report(&mut self, report: DiskReport) {
        match report {
            DiskReport::Durable { epoch, sequence, last_entry, saved_snapshot, disk_bytes, syncs } => {
                if epoch != self.log_manager.epoch() || self.storage_error.is_some() {
                    return; // about writes a failure has since voided
                }
                self.durable_batch = sequence;
                self.disk_bytes = disk_bytes;
                self.disk_syncs = syncs;
                for (to, message) in self.held.release(sequence) {
                    self.wiring.peers.send(to, &message);
                }
                if let Some((index, term)) = last_entry {
                    self.core.step(Event::LogPersisted { index, term });
                }
                if let Some(snapshot) = saved_snapshot {
                    self.snapshot_in_progress = false;
                    info!("snapshot through index {} in place; compacting the log", snapshot.last_index);
                    self.core.step(Event::SnapshotSaved { snapshot });
                }
            }
            DiskReport::Failed { detail } => self.on_storage_failed(detail),
            DiskReport::Recovered { epoch, state, disk_bytes } => self.on_storage_recovered(epoch, state, disk_bytes),
        }
    }

    /// Writes since the last durable report may be lost: stop taking part,
    /// as a crashed node would, so nothing unpersisted is acknowledged.
    fn on_storage_failed(&mut self, detail: String) {
        error!(
            "node {}: storage failed: {detail}; refusing writes and leaving the cluster until it recovers",
            self.core.id()
        );
        self.storage_error = Some(detail.clone());
        self.held.clear();
        self.disk_batch.clear();
        self.election_timer.cancel();
        self.heartbeat_timer.cancel();
        self.lease_timer.cancel();
        let message = format!("this node's storage failed ({detail}); the request may or may not take effect");
        self.fail_all_pending(&message);
        self.fail_reads("this node's storage failed; the read was not served");
    }

    /// Rejoin from what storage durably holds, exactly as after a restart.
    /// The state machine stays: it holds only committed entries.
    fn on_storage_recovered(&mut self, epoch: u64, state: RecoveredState, disk_bytes: u64) {
        info!("node {}: storage recovered; rejoining from its durable state", self.core.id());
        self.log_manager.enter_epoch(epoch);
        self.durable_batch = self.log_manager.submitted_sequence();
        self.disk_bytes = disk_bytes;
        self.storage_error = None;
        self.snapshot_in_progress = false;
        let snapshot_index = state.snapshot.as_ref().map_or(0, |snapshot| snapshot.last_index);
        assert!(snapshot_index <= self.last_applied, "storage holds a snapshot this node never applied");
        self.core = RaftCore::restore(self.core_config.clone(), state.hard_state, state.snapshot, state.entries);
        self.execute_effects();
    }

    /// A snapshot from the leader replaces the state machine at once (its
    /// entries are committed); the disk copy follows in this turn's batch.
    fn install_snapshot(&mut self, snapshot: Snapshot, log_kept: bool) {
        match QueueStateMachine::decode_snapshot(&snapshot.data) {
            Ok(queue) => self.queue = queue,
            Err(problem) => {
                // The image carries its own checksum and the leader's state
                // machine wrote it: this is a bug or a damaged leader. Serving
                // on would mean serving a state this node never had, so stop
                // before anything is written; a restart recovers from disk.
                error!(
                    "the leader's snapshot through index {} is unreadable ({problem}); stopping",
                    snapshot.last_index
                );
                std::process::exit(70);
            }
        }
        info!("installed the leader's snapshot through index {}", snapshot.last_index);
        self.last_applied = snapshot.last_index;
        self.bytes_since_snapshot = 0;
        assert_eq!(self.pending.len(), 0, "only a follower installs a snapshot, and followers hold no requests");
        self.disk_batch.push(DiskOperation::InstallSnapshot { snapshot, log_kept });
    }

    fn on_snapshot_written(&mut self, outcome: SnapshotWritten) {
        match outcome {
            Ok((snapshot, temporary)) if self.storage_error.is_none() => {
                self.disk_batch.push(DiskOperation::AdoptSnapshot { snapshot, temporary });
            }
            Ok((_, temporary)) => {
                let _ = std::fs::remove_file(temporary); // storage failed meanwhile; try again later
                self.snapshot_in_progress = false;
            }
            Err(_) => {
                // Retry after another half threshold of log, not at once.
                self.snapshot_in_progress = false;
                self.bytes_since_snapshot = self.settings.snapshot_threshold_bytes / 2;
            }
        }
    }

    /// When the log has grown past the threshold since the last snapshot,
    /// snapshot the state machine at the last applied entry.
    fn maybe_snapshot(&mut self) {
        if self.snapshot_in_progress || self.bytes_since_snapshot < self.settings.snapshot_threshold_bytes {
            return;
        }
        // After a storage recovery the core re-commits what was applied before;
        // a snapshot must wait until the core has caught up to it.
        if self.core.commit_index() < self.last_applied {
            return;
        }
        // After a storage recovery the log may not reach the applied index yet.
        let Some(last_term) = self.core.log().term_at(self.last_applied) else {
            return;
        };
        // A copy that shares every message: cheap, so the loop keeps its pace.
        let job = SnapshotJob { queue: self.queue.clone(), last_index: self.last_applied, last_term };
        self.wiring.snapshotter.submit(job);
        self.snapshot_in_progress = true;
        self.bytes_since_snapshot = 0;
    }

    fn on_role_changed(&mut self, role: Role, term: u64, leader: Option<NodeId>) {
        let leader_text = leader.map_or("unknown".to_string(), |id| id.to_string());
        info!("node {}: {} in term {term} (leader: {leader_text})", self.core.id(), role.as_str());
        if role != Role::Leader {
            self.fail_all_pending("leadership was lost before the request committed; it may or may not take effect");
            self.fail_reads("leadership was lost before the read was confirmed; it was not served");
        }
        if !self.transfers.is_empty() {
            self.finish_transfers(false);
        }
    }

    /// Apply committed entries in order and answer whoever waits on them.
    fn apply(&mut self, first_index: LogIndex, last_index: LogIndex) {
        // After a storage recovery the core re-commits entries applied before.
        let first_index = first_index.max(self.last_applied + 1);
        assert_eq!(first_index, self.last_applied + 1, "entries are applied in order, once");
        for index in first_index..=last_index {
            let entry = self.core.log().entry(index).expect("committed entries are in the log");
            self.bytes_since_snapshot += entry.data.len() as u64 + RECORD_OVERHEAD_BYTES;
            let body = if entry.is_noop() {
                None
            } else {
                Some(match self.queue.apply_entry(index, &entry.data) {
                    Ok(reply) => ReplyBody::Queue(reply),
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
        for read in self.waiting_reads.take_expired(now) {
            let detail = format!(
                "a majority did not confirm this node's leadership within {} ms; the read was not served",
                self.settings.request_deadline_ms
            );
            self.reply(&read.envelope, ReplyBody::error(ErrorCode::Timeout, detail), read.id.as_ref());
        }
        if self.transfers.iter().any(|(_, deadline)| *deadline <= now) {
            self.finish_transfers(false);
        }
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
        let failed = self.storage_error.is_some();
        let report = StatusReport {
            role: match self.core.role() {
                _ if failed => Role::Follower.as_str(),
                // The course protocol knows three roles. A pre-candidate has
                // changed neither term nor vote: in Raft's terms a follower.
                Role::PreCandidate => Role::Follower.as_str(),
                role => role.as_str(),
            },
            term: self.core.term(),
            leader: if failed { None } else { self.core.leader() },
            commit_index: self.core.commit_index(),
            last_applied: self.last_applied,
            log_size: self.core.log().last_index(),
            first_index: self.core.log().first_index(),
            snapshot_index: self.core.snapshot_index(),
            disk_bytes: self.disk_bytes,
            disk_syncs: self.disk_syncs,
            storage_error: self.storage_error.clone(),
            state_digest: self.queue.digest(),
        };
        *self.wiring.status.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = report;
    }
}
