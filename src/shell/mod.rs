//! The node's shell, sans I/O: everything between the consensus core and
//! the operating system that is logic rather than plumbing. It takes inputs
//! (peer messages, client requests, disk and snapshot reports, shutdown)
//! and the current time, and emits outputs (messages, replies, disk
//! batches, snapshot jobs). No sockets, threads, clock or entropy inside:
//! time comes in with every call and randomness from a seed, so the node's
//! event loop thread and the deterministic simulator run the same code.
//!
//! A driver calls, per turn: `on_input` for each input taken, then
//! `end_turn`, then publishes `status_report()` and executes the outputs
//! in order, then sleeps until an input arrives or `next_deadline()`.
//! The ordering rules it relies on are stated once in the crate docs.

mod disk_pipeline;
mod dropped_messages;
mod held_sends;
mod input;
mod output;
mod pending;
mod reads;
mod snapshot_policy;
mod status;
#[cfg(test)]
mod tests;
mod timer;
mod timers;
mod transfers;

use std::time::Duration;

use log::{error, info, warn};

use crate::rate_limited::RateLimited;

pub use self::input::{ClientCommand, Envelope, Input, SnapshotJob, SnapshotWritten, TransferRequest};
pub use self::output::{Garbage, Output};
pub use self::timers::TimerSettings;
use disk_pipeline::{DiskPipeline, Route};
use dropped_messages::DroppedMessages;
use pending::{PendingRequest, PendingRequests};
use reads::{WaitingRead, WaitingReads};
use snapshot_policy::SnapshotPolicy;
use timers::Timers;
use transfers::Transfers;

use crate::protocol::{ErrorCode, ReplyBody};
use crate::queue::{QueueReply, QueueStateMachine};
use crate::raft::{
    CoreConfig, Effect, Event, LogIndex, Message, NodeId, RaftCore, Repair, Role, Snapshot, TransferError,
};
use crate::storage::{DiskOperation, DiskReport, RecoveredState};

/// Writes waiting for commit below which their age never makes a leader
/// answer `busy` (see `overloaded`): a queue this short is a slow disk, not
/// too many clients.
const STANDING_QUEUE_WRITES: usize = 1024;

/// Entries applied per turn at most; see `apply_committed`.
const MAX_APPLIED_PER_TURN: LogIndex = 1024;

/// The shell's clock: time since the driver started it. Monotonic.
pub type Time = Duration;

/// What the shell needs to know; the node's options, resolved.
#[derive(Debug, Clone)]
pub struct ShellSettings {
    /// The consensus core's configuration.
    pub core: CoreConfig,
    /// Election, heartbeat and lease timeouts.
    pub timers: TimerSettings,
    /// A write not committed by then, or a read not confirmed, is answered `timeout`.
    pub request_deadline: Duration,
    /// Writes that may wait for commit at once; beyond it, `busy`.
    pub max_pending_requests: usize,
    /// Log bytes applied since the last snapshot that trigger a new one.
    pub snapshot_threshold_bytes: u64,
    /// Every node's client endpoint, for redirects.
    pub client_endpoints: Vec<String>,
    /// How long an exiting node keeps answering what still arrives.
    pub exit_linger: Duration,
}

/// Where the node is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lifecycle {
    Running,
    /// SIGTERM on a leader: handing leadership over, exiting by `deadline`.
    HandingOver {
        deadline: Time,
    },
    /// Every request held was answered; what still arrives is refused until `until`.
    Exiting {
        until: Time,
    },
}

/// The shell: owns the core, the state machine and everything they drive.
pub struct Shell {
    core: RaftCore,
    settings: ShellSettings,
    queue: QueueStateMachine,
    last_applied: LogIndex,
    /// Highest index known committed that is still to be applied.
    apply_target: LogIndex,
    applied_this_turn: LogIndex,
    timers: Timers,
    disk: DiskPipeline,
    pending: PendingRequests,
    /// This turn's writes; proposed as one batch at the end of the turn.
    proposals: Vec<ClientCommand>,
    /// This turn's reads; they join one ReadIndex round.
    reads_to_start: Vec<ClientCommand>,
    waiting_reads: WaitingReads,
    transfers: Transfers,
    snapshots: SnapshotPolicy,
    lifecycle: Lifecycle,
    shutdown_requested: bool,
    effects: Vec<Effect>,
    outputs: Vec<Output>,
    dropped: DroppedMessages,
    /// Lines saying whom a node learning its term waits for.
    repair_waits: RateLimited<Time>,
    /// The core's snapshot image, shared, so that when the core replaces
    /// it the last reference (hundreds of MB) is dropped off the turn.
    held_image: Option<std::sync::Arc<Vec<u8>>>,
}

impl Shell {
    /// A shell over what storage recovered. `queue` is the state machine
    /// restored from `recovered`'s snapshot; `disk_bytes` what storage
    /// occupies; `seed` feeds the election timeouts. The core checks a
    /// leader's snapshot with the queue's image check before taking it
    /// (`CoreConfig::snapshot_check`): the shell pairs the core with the
    /// queue, so it sets that, whatever `settings` said.
    pub fn new(
        mut settings: ShellSettings,
        recovered: RecoveredState,
        queue: QueueStateMachine,
        disk_bytes: u64,
        seed: u64,
        now: Time,
    ) -> Shell {
        settings.core.snapshot_check = QueueStateMachine::check_snapshot_image;
        // Its own stream from the seed: the timers draw from the seed itself.
        settings.core.repair_nonce = seed.rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15;
        if recovered.hard_state.repair != Repair::Intact {
            warn!(
                "node {}: repairing lost or damaged state from the cluster ({}): it will not vote or campaign \
                 until it has caught up",
                settings.core.id,
                recovered.hard_state.repair.as_str()
            );
        }
        let last_applied = recovered.snapshot.as_ref().map_or(0, |snapshot| snapshot.last_index);
        let core =
            RaftCore::restore(settings.core.clone(), recovered.hard_state, recovered.snapshot, recovered.entries);
        let held_image = core.snapshot_image().cloned();
        let capped_ack_interval = settings.timers.heartbeat_interval;
        let mut shell = Shell {
            core,
            timers: Timers::new(settings.timers.clone(), seed),
            snapshots: SnapshotPolicy::new(settings.snapshot_threshold_bytes),
            settings,
            queue,
            last_applied,
            apply_target: last_applied,
            applied_this_turn: 0,
            disk: DiskPipeline::new(disk_bytes, capped_ack_interval),
            pending: PendingRequests::default(),
            proposals: Vec::new(),
            reads_to_start: Vec::new(),
            waiting_reads: WaitingReads::default(),
            transfers: Transfers::default(),
            lifecycle: Lifecycle::Running,
            shutdown_requested: false,
            effects: Vec::new(),
            outputs: Vec::new(),
            dropped: DroppedMessages::default(),
            repair_waits: RateLimited::default(),
            held_image,
        };
        shell.execute_effects(now);
        shell
    }

    /// The consensus core (read-only).
    pub fn core(&self) -> &RaftCore {
        &self.core
    }

    /// The state machine (read-only).
    pub fn queue(&self) -> &QueueStateMachine {
        &self.queue
    }

    /// Highest log index the state machine has applied.
    pub fn last_applied(&self) -> LogIndex {
        self.last_applied
    }

    /// Client writes waiting for their entry to commit.
    pub fn pending_requests(&self) -> usize {
        self.pending.len()
    }

    /// Timers re-armed because this node had stalled (see `timers`).
    pub fn stalls(&self) -> u64 {
        self.timers.stalls
    }

    /// Peer messages the core refused as untrustworthy since start.
    pub fn dropped_messages(&self) -> u64 {
        self.dropped.total
    }

    /// Once exiting, when the driver may end the process.
    pub fn exit_time(&self) -> Option<Time> {
        match self.lifecycle {
            Lifecycle::Exiting { until } => Some(until),
            _ => None,
        }
    }

    /// Start an election now, as if the election timer had fired (etcd's
    /// `Campaign`). The simulator's scripted scenarios use it to force the
    /// elections a paper figure describes; effects follow at `end_turn`.
    pub fn campaign(&mut self) {
        if self.disk.failure().is_none() && self.exit_time().is_none() {
            self.core.step(Event::ElectionTimeout);
        }
    }

    /// Move this turn's outputs into `into`, in emission order.
    pub fn take_outputs(&mut self, into: &mut Vec<Output>) {
        into.append(&mut self.outputs);
    }

    /// Take one input. Peer messages and disk reports reach the core at
    /// once; client requests wait for `end_turn`, so a turn's writes form
    /// one batch and its reads one ReadIndex round.
    pub fn on_input(&mut self, input: Input, now: Time) {
        if self.exit_time().is_some() {
            return self.refuse_while_exiting(input);
        }
        match input {
            Input::Peer { from, message } => {
                if self.disk.failure().is_none() {
                    self.core.step(Event::Message { from, message });
                    self.run_effects(now);
                }
            }
            Input::Client(command) if command.command.is_read_only() => self.reads_to_start.push(command),
            Input::Client(command) => self.proposals.push(command),
            Input::Transfer(request) => self.on_transfer_request(request, now),
            Input::Disk(report) => {
                self.on_disk_report(report);
                self.run_effects(now);
            }
            Input::SnapshotWritten(outcome) => self.on_snapshot_written(outcome),
            Input::Shutdown => self.shutdown_requested = true,
        }
    }

    /// Finish the turn: propose the turn's writes, start its reads, run the
    /// core's effects, fire due timers, expire what waited too long.
    pub fn end_turn(&mut self, now: Time) {
        if self.exit_time().is_some() {
            return;
        }
        if std::mem::take(&mut self.shutdown_requested) && !self.begin_shutdown(now) {
            return self.shut_down(now);
        }
        self.applied_this_turn = 0;
        self.apply_committed();
        self.propose_waiting(now);
        self.start_reads(now);
        // Effects first: a heartbeat read this turn re-arms the election
        // timer before timers are checked.
        self.execute_effects(now);
        if self.disk.failure().is_none() {
            let mut events = Vec::new();
            self.timers.fire_due(now, &mut events);
            for event in events {
                self.core.step(event);
            }
            self.execute_effects(now);
            self.report_repair_wait(now);
        }
        self.expire_waiting(now);
        self.serve_reads();
        if self.handover_finished(now) {
            self.shut_down(now);
        }
    }

    /// The earliest time at which `end_turn` has something to do unasked.
    pub fn next_deadline(&mut self) -> Option<Time> {
        if let Some(until) = self.exit_time() {
            return Some(until);
        }
        if self.apply_target > self.last_applied {
            return Some(Time::ZERO); // committed entries wait: at once
        }
        let handover = match self.lifecycle {
            Lifecycle::HandingOver { deadline } => Some(deadline),
            _ => None,
        };
        [
            self.timers.next_deadline(),
            self.pending.next_deadline(),
            self.waiting_reads.next_deadline(),
            self.transfers.next_deadline(),
            handover,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Answer a request that arrives while the node exits: it was not
    /// applied, and no leader is named (the client should ask the others).
    fn refuse_while_exiting(&mut self, input: Input) {
        let (envelope, id) = match input {
            Input::Client(command) => (command.envelope, command.id),
            Input::Transfer(request) => (request.envelope, request.id),
            _ => return,
        };
        self.reply(envelope, id, shutting_down_reply());
    }

    /// On SIGTERM a leader hands leadership to its most caught-up follower
    /// before exiting, so the cluster sees no election gap (Raft
    /// dissertation §3.10). True if a transfer began and the exit waits.
    fn begin_shutdown(&mut self, now: Time) -> bool {
        if let Lifecycle::HandingOver { .. } = self.lifecycle {
            return true;
        }
        if self.disk.failure().is_some() {
            return false;
        }
        let Some(target) = self.core.best_transfer_target() else {
            return false;
        };
        if self.core.transfer_leadership(target).is_err() {
            return false;
        }
        info!("node {}: shutting down; handing leadership to node {target} first", self.core.id());
        self.lifecycle = Lifecycle::HandingOver { deadline: now + self.settings.timers.election_timeout_max };
        true
    }

    /// While handing over: true once another node leads (this node then has
    /// sent its vote for it), once the transfer was abandoned, or once the
    /// deadline passed.
    fn handover_finished(&self, now: Time) -> bool {
        let Lifecycle::HandingOver { deadline } = self.lifecycle else {
            return false;
        };
        let leading = self.core.role() == Role::Leader;
        let handed_over = !leading && self.core.leader().is_some();
        let abandoned = leading && self.core.transfer_target().is_none();
        handed_over || abandoned || now >= deadline
    }

    /// Answer every request this node holds, so none is left without a
    /// reply: those never proposed certainly did not take effect; those
    /// waiting for commit may still commit under the next leader. Then
    /// tell the driver to let the disk finish and exit.
    fn shut_down(&mut self, now: Time) {
        self.execute_effects(now);
        self.fail_all_pending("the node is shutting down; the request may or may not take effect");
        self.fail_reads("the node is shutting down; the read was not served");
        self.settle_transfers(now, true);
        let unproposed = std::mem::take(&mut self.proposals);
        let unread = std::mem::take(&mut self.reads_to_start);
        for command in unproposed.into_iter().chain(unread) {
            self.reply(command.envelope, command.id, shutting_down_reply());
        }
        self.lifecycle = Lifecycle::Exiting { until: now + self.settings.exit_linger };
        self.outputs.push(Output::Exit);
    }

    /// Start one ReadIndex round for every read that arrived this turn.
    fn start_reads(&mut self, now: Time) {
        if self.reads_to_start.is_empty() {
            return;
        }
        let reads = std::mem::take(&mut self.reads_to_start);
        let refusal = if let Some(failure) = self.disk.failure() {
            let detail = format!("this node's storage failed ({failure}); ask another node");
            ReplyBody::error(ErrorCode::StorageFailed, detail)
        } else {
            match self.core.read_index() {
                Ok(round) => {
                    let deadline = now + self.settings.request_deadline;
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
            self.reply(read.envelope, read.id, refusal.clone());
        }
    }

    /// Answer every confirmed read whose index the state machine reached.
    fn serve_reads(&mut self) {
        for read in self.waiting_reads.take_servable(self.last_applied) {
            let body = match self.queue.query(&read.command) {
                Some(reply) => ReplyBody::Queue(reply),
                None => ReplyBody::error(ErrorCode::BadRequest, "not a read-only request"),
            };
            self.reply(read.envelope, read.id, body);
        }
    }

    fn fail_reads(&mut self, detail: &str) {
        let body = self.redirect(ErrorCode::NotLeader, self.core.leader(), detail);
        for read in self.waiting_reads.take_all() {
            self.reply(read.envelope, read.id, body.clone());
        }
    }

    fn on_transfer_request(&mut self, request: TransferRequest, now: Time) {
        if self.core.role() == Role::Leader && request.to == self.core.id() {
            return self.reply(request.envelope, request.id, ReplyBody::Queue(QueueReply::Done));
        }
        let refusal = match self.core.transfer_leadership(request.to) {
            Ok(()) => {
                let deadline = now + self.settings.timers.election_timeout_max * 2;
                return self.transfers.add(request, deadline);
            }
            Err(TransferError::NotLeader(not_leader)) => {
                self.redirect(ErrorCode::NotLeader, not_leader.leader, "only the leader can hand leadership over")
            }
            Err(TransferError::InvalidTarget) => {
                let detail = format!("node {} is not another member of this cluster", request.to);
                ReplyBody::error(ErrorCode::BadRequest, detail)
            }
        };
        self.reply(request.envelope, request.id, refusal);
    }

    fn settle_transfers(&mut self, now: Time, closing: bool) {
        let transferring = self.core.transfer_target().is_some();
        for (request, body) in self.transfers.settle(self.core.leader(), transferring, now, closing) {
            self.reply(request.envelope, request.id, body);
        }
    }

    /// Hand this turn's client writes to the core as one batch.
    fn propose_waiting(&mut self, now: Time) {
        if self.proposals.is_empty() {
            return;
        }
        let proposals = std::mem::take(&mut self.proposals);
        if let Some(failure) = self.disk.failure() {
            let detail = format!("this node's storage failed ({failure}); it takes no writes until it recovers");
            return self.refuse_all(proposals, ReplyBody::error(ErrorCode::StorageFailed, detail));
        }
        if let Some(detail) = self.overloaded(proposals.len(), now) {
            return self.refuse_all(proposals, ReplyBody::error(ErrorCode::Busy, detail));
        }
        let commands: Vec<Vec<u8>> = proposals.iter().map(ClientCommand::encode_entry).collect();
        match self.core.propose(commands) {
            Ok((first_index, term)) => {
                let deadline = now + self.settings.request_deadline;
                for (offset, proposal) in proposals.into_iter().enumerate() {
                    let waiting = PendingRequest { term, envelope: proposal.envelope, id: proposal.id, deadline };
                    self.pending.insert(first_index + offset as LogIndex, waiting);
                }
            }
            Err(not_leader) => {
                let body = self.redirect(ErrorCode::NotLeader, not_leader.leader, "this node is not the leader");
                self.refuse_all(proposals, body);
            }
        }
    }

    /// Admission control on a leader: `busy` when more writes wait than
    /// the limit, or when at least `STANDING_QUEUE_WRITES` wait and the
    /// oldest has waited half its deadline already.
    /// The second is the machine's own measure of its capacity (CoDel's
    /// idea): what cannot commit within the deadline is refused at once
    /// instead of timing out after it.
    fn overloaded(&mut self, arriving: usize, now: Time) -> Option<String> {
        if self.core.role() != Role::Leader {
            return None;
        }
        let limit = self.settings.max_pending_requests;
        let waiting = self.pending.len();
        if waiting + arriving > limit {
            return Some(format!("{waiting} requests already wait for commit (limit {limit}); retry later"));
        }
        // A slow disk with a handful of writes waiting is not overload:
        // refusing them would help nobody. Age counts only behind a queue.
        if waiting < STANDING_QUEUE_WRITES {
            return None;
        }
        let half_deadline = self.settings.request_deadline / 2;
        let oldest_deadline = self.pending.next_deadline()?;
        let oldest_waited = (now + self.settings.request_deadline).saturating_sub(oldest_deadline);
        (oldest_waited > half_deadline).then(|| {
            format!(
                "the oldest of {waiting} writes has waited {} ms for commit; this leader is at capacity, retry later",
                oldest_waited.as_millis()
            )
        })
    }

    fn refuse_all(&mut self, commands: Vec<ClientCommand>, body: ReplyBody) {
        for command in commands {
            self.reply(command.envelope, command.id, body.clone());
        }
    }

    /// Run the core's effects in emission order, then hand the turn's
    /// writes to the disk as one batch. Writes join the batch; a send that
    /// must follow them waits for it to be durable; the rest runs now.
    fn execute_effects(&mut self, now: Time) {
        self.run_effects(now);
        self.release_replaced_image();
        if let Some(batch) = self.disk.take_batch() {
            let (epoch, sequence, operations) = (batch.epoch, batch.sequence, batch.operations);
            self.outputs.push(Output::WriteBatch { epoch, sequence, operations });
        }
    }

    /// Execute what the core emitted so far, before it takes another
    /// event: an Apply must run while the entries it names are still in
    /// the log, which a later event (a snapshot from a newer leader, say)
    /// may replace. Writes stay in the turn's batch.
    fn run_effects(&mut self, now: Time) {
        loop {
            self.core.drain_effects(&mut self.effects);
            if self.effects.is_empty() {
                break;
            }
            let mut effects = std::mem::take(&mut self.effects);
            for effect in effects.drain(..) {
                self.execute(effect, now);
            }
            self.maybe_snapshot();
            assert!(self.effects.is_empty(), "effects are drained from the core only at the top of the loop");
            // Keep the buffer's capacity for the next round.
            self.effects = effects;
        }
    }

    /// If the core has replaced its snapshot (saved or installed a newer
    /// one, or was rebuilt), hand the old image to be freed off the turn:
    /// giving hundreds of MB back to the kernel takes tens of ms and
    /// changes the memory map, which can wait (`node::address_space`).
    fn release_replaced_image(&mut self) {
        let current = self.core.snapshot_image();
        let unchanged = match (&self.held_image, current) {
            (Some(held), Some(current)) => std::sync::Arc::ptr_eq(held, current),
            (None, None) => true,
            _ => false,
        };
        if unchanged {
            return;
        }
        let replaced = std::mem::replace(&mut self.held_image, current.cloned());
        if let Some(image) = replaced {
            self.outputs.push(Output::Release(Garbage::Image(image)));
        }
    }

    fn execute(&mut self, effect: Effect, now: Time) {
        match effect {
            Effect::PersistHardState(hard_state) => self.disk.push(DiskOperation::HardState(hard_state)),
            Effect::PersistEntries(entries) => self.disk.push(DiskOperation::Entries(entries)),
            Effect::CompactLog { through_index } => self.disk.push(DiskOperation::Compact(through_index)),
            Effect::InstallSnapshot { snapshot, log_kept } => self.install_snapshot(snapshot, log_kept),
            Effect::Send { to, message } => self.send_or_hold(to, message, now),
            Effect::Apply { first_index, last_index } => {
                // After a storage recovery the core re-commits entries applied before.
                assert!(first_index <= self.last_applied.max(self.apply_target) + 1, "entries are applied in order");
                self.apply_target = self.apply_target.max(last_index);
                self.apply_committed();
            }
            Effect::ResetElectionTimer => self.timers.reset_election(now),
            Effect::ResetHeartbeatTimer => self.timers.reset_heartbeat(now),
            Effect::ReadsConfirmed { round, read_index } => {
                self.waiting_reads.confirm(round, read_index);
                self.serve_reads();
            }
            Effect::RoleChanged { role, term, leader } => self.on_role_changed(role, term, leader, now),
            Effect::MessageDropped { from, reason } => self.dropped.on_dropped(from, reason, now),
            Effect::ReleaseEntries(entries) => self.outputs.push(Output::Release(Garbage::Entries(entries))),
            Effect::RepairChanged { repair, term } => self.on_repair_changed(repair, term),
        }
    }

    fn send_or_hold(&mut self, to: NodeId, message: Message, now: Time) {
        match self.disk.route(to, message, self.core.persisted_index(), now) {
            Route::Now(message) => self.outputs.push(Output::Send { to, message }),
            Route::Held { capped_ack: Some(capped) } => self.outputs.push(Output::Send { to, message: capped }),
            Route::Held { capped_ack: None } => {}
        }
    }

    fn on_disk_report(&mut self, report: DiskReport) {
        match report {
            DiskReport::Durable { epoch, sequence, last_entry, saved_snapshot, disk_bytes, syncs } => {
                let mut released = Vec::new();
                if !self.disk.on_durable(epoch, sequence, disk_bytes, syncs, &mut released) {
                    return; // about writes a failure has since voided
                }
                self.outputs.extend(released.into_iter().map(|(to, message)| Output::Send { to, message }));
                if let Some((index, term)) = last_entry {
                    self.core.step(Event::LogPersisted { index, term });
                }
                if let Some(snapshot) = saved_snapshot {
                    self.snapshots.on_finished();
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
        self.disk.on_failed(detail.clone());
        self.timers.cancel_all();
        let message = format!("this node's storage failed ({detail}); the request may or may not take effect");
        self.fail_all_pending(&message);
        self.fail_reads("this node's storage failed; the read was not served");
    }

    /// Rejoin from what storage durably holds, exactly as after a restart.
    /// The state machine stays: it holds only committed entries.
    fn on_storage_recovered(&mut self, epoch: u64, state: RecoveredState, disk_bytes: u64) {
        info!("node {}: storage recovered; rejoining from its durable state", self.core.id());
        self.disk.on_recovered(epoch, disk_bytes);
        self.snapshots.on_finished();
        let snapshot_index = state.snapshot.as_ref().map_or(0, |snapshot| snapshot.last_index);
        assert!(snapshot_index <= self.last_applied, "storage holds a snapshot this node never applied");
        self.core = RaftCore::restore(self.settings.core.clone(), state.hard_state, state.snapshot, state.entries);
        // Entries committed but not yet applied may not have been durable
        // here: the rebuilt core learns the commit again and names them anew.
        self.apply_target = self.last_applied;
        // The restored core's effects (a timer reset) run right after this input.
    }

    /// A snapshot from the leader replaces the state machine at once (its
    /// entries are committed); the disk copy follows in this turn's batch.
    fn install_snapshot(&mut self, snapshot: Snapshot, log_kept: bool) {
        if snapshot.last_index <= self.last_applied {
            // After a storage recovery the rebuilt core knows less than the
            // state machine holds (rule 7), and may take a leader's snapshot
            // of a prefix already applied here. The state machine stays
            // ahead (every entry it applied is committed); storage takes the
            // snapshot, and the entries after it come again from the leader
            // and are skipped when applied.
            info!(
                "storing the leader's snapshot through index {}; the state machine is already at {}",
                snapshot.last_index, self.last_applied
            );
            self.disk.push(DiskOperation::InstallSnapshot { snapshot, log_kept });
            return;
        }
        match QueueStateMachine::decode_snapshot(&snapshot.data) {
            Ok(queue) => self.queue = queue,
            Err(problem) => {
                // The image carries its own checksum and the leader's state
                // machine wrote it: a bug or a damaged leader. Serving on
                // would mean serving a state this node never had, so stop
                // before anything is written; a restart recovers from disk.
                let detail = format!(
                    "the leader's snapshot through index {} is unreadable ({problem}); stopping",
                    snapshot.last_index
                );
                error!("{detail}");
                self.outputs.push(Output::Fatal { detail });
                return;
            }
        }
        info!("installed the leader's snapshot through index {}", snapshot.last_index);
        self.last_applied = snapshot.last_index;
        self.snapshots.on_installed();
        self.snapshots.on_written(snapshot.data.len() as u64);
        assert_eq!(self.pending.len(), 0, "only a follower installs a snapshot, and followers hold no requests");
        self.disk.push(DiskOperation::InstallSnapshot { snapshot, log_kept });
    }

    fn on_snapshot_written(&mut self, outcome: SnapshotWritten) {
        match outcome {
            Ok((snapshot, temporary)) if self.disk.failure().is_none() => {
                self.snapshots.on_written(snapshot.data.len() as u64);
                self.disk.push(DiskOperation::AdoptSnapshot { snapshot, temporary });
            }
            Ok((_, temporary)) => {
                // Storage failed meanwhile; a later snapshot takes its place.
                self.outputs.push(Output::RemoveFile(temporary));
                self.snapshots.on_finished();
            }
            Err(_) => self.snapshots.on_failed(),
        }
    }

    /// When the log has grown past the threshold since the last snapshot,
    /// snapshot the state machine at the last applied entry.
    fn maybe_snapshot(&mut self) {
        if !self.snapshots.is_due() || self.disk.failure().is_some() {
            return;
        }
        // After a storage recovery the core re-commits what was applied
        // before; a snapshot waits until the core has caught up to it.
        if self.core.commit_index() < self.last_applied {
            return;
        }
        let Some(last_term) = self.core.log().term_at(self.last_applied) else {
            return;
        };
        // A copy that shares every message: cheap, so the loop keeps its pace.
        let job = SnapshotJob { queue: self.queue.clone(), last_index: self.last_applied, last_term };
        self.outputs.push(Output::WriteSnapshot(job));
        self.snapshots.on_started();
    }

    /// A node learning its term may wait long (every other member must
    /// answer): say for whom, once a second at most.
    fn report_repair_wait(&mut self, now: Time) {
        let waiting_for = self.core.repair_waiting_for();
        if waiting_for.is_empty() || self.repair_waits.note(now).is_none() {
            return;
        }
        let nodes: Vec<String> = waiting_for.iter().map(NodeId::to_string).collect();
        warn!(
            "node {}: repair: still learning the term; waiting for the answer of node(s) {} (every other member \
             must answer: start them)",
            self.core.id(),
            nodes.join(", ")
        );
    }

    fn on_repair_changed(&mut self, repair: Repair, term: u64) {
        let id = self.core.id();
        match repair {
            Repair::Intact => info!(
                "node {id}: repair done: the log holds the leader's through index {} (committed in term {term}); \
                 this node votes again from the next term",
                self.core.commit_index()
            ),
            Repair::CatchingUp => info!(
                "node {id}: repair: every other member answered; now in term {term}, above any this node \
                 can have voted in; catching up from the leader before it votes again"
            ),
            Repair::LearningTerm => info!("node {id}: repair: learning the cluster's term"),
        }
    }

    fn on_role_changed(&mut self, role: Role, term: u64, leader: Option<NodeId>, now: Time) {
        let leader_text = leader.map_or("unknown".to_string(), |id| id.to_string());
        info!("node {}: {} in term {term} (leader: {leader_text})", self.core.id(), role.as_str());
        if role != Role::Leader {
            self.fail_all_pending("leadership was lost before the request committed; it may or may not take effect");
            self.fail_reads("leadership was lost before the read was confirmed; it was not served");
        }
        if !self.transfers.is_empty() {
            self.settle_transfers(now, false);
        }
    }

    /// Apply committed entries in order, at most `MAX_APPLIED_PER_TURN` a
    /// turn (the rest next turn, at once), and answer whoever waits on them.
    /// A turn that applied a huge commit in one go would hold back the
    /// leader's heartbeats for as long.
    fn apply_committed(&mut self) {
        let last_index = self.apply_target.min(self.last_applied + MAX_APPLIED_PER_TURN - self.applied_this_turn);
        for index in self.last_applied + 1..=last_index {
            let Some(entry) = self.core.log().entry(index) else {
                panic!(
                    "node {}: committed entry {index} is not in the log (held {}..={}, applied {}, to apply {})",
                    self.core.id(),
                    self.core.log().first_index(),
                    self.core.log().last_index(),
                    self.last_applied,
                    self.apply_target
                );
            };
            self.snapshots.on_applied(entry.data.len());
            let body = if entry.is_noop() {
                None
            } else {
                Some(match self.queue.apply_entry(index, &entry.data) {
                    Ok(reply) => ReplyBody::Queue(reply),
                    Err(failure) => {
                        warn!("entry {index} holds an {failure}; skipped");
                        ReplyBody::error(ErrorCode::BadRequest, failure.to_string())
                    }
                })
            };
            let entry_term = entry.term;
            self.last_applied = index;
            self.applied_this_turn += 1;
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
            self.reply(waiting.envelope, waiting.id, body);
        }
    }

    fn expire_waiting(&mut self, now: Time) {
        for read in self.waiting_reads.take_expired(now) {
            let detail = format!(
                "a majority did not confirm this node's leadership within {} ms; the read was not served",
                self.settings.request_deadline.as_millis()
            );
            self.reply(read.envelope, read.id, ReplyBody::error(ErrorCode::Timeout, detail));
        }
        if self.transfers.next_deadline().is_some_and(|deadline| deadline <= now) {
            self.settle_transfers(now, false);
        }
        for waiting in self.pending.take_expired(now) {
            let detail = format!(
                "the request did not commit within {} ms; it may or may not take effect",
                self.settings.request_deadline.as_millis()
            );
            self.reply(waiting.envelope, waiting.id, ReplyBody::error(ErrorCode::Timeout, detail));
        }
    }

    fn fail_all_pending(&mut self, detail: &str) {
        let body = self.redirect(ErrorCode::LeaderChanged, self.core.leader(), detail);
        for waiting in self.pending.take_all() {
            self.reply(waiting.envelope, waiting.id, body.clone());
        }
    }

    fn redirect(&self, code: ErrorCode, leader: Option<NodeId>, detail: &str) -> ReplyBody {
        let address = leader.and_then(|id| self.settings.client_endpoints.get(id).cloned());
        ReplyBody::redirect(code, address, detail)
    }

    fn reply(&mut self, envelope: Envelope, id: Option<serde_json::Value>, body: ReplyBody) {
        self.outputs.push(Output::Reply { envelope, id, body });
    }
}

/// The answer to a request that reaches a node on its way out: it was not
/// applied, and no leader is named (the client should ask the others).
pub fn shutting_down_reply() -> ReplyBody {
    ReplyBody::redirect(ErrorCode::NotLeader, None, "the node is shutting down; the request was not applied")
}
