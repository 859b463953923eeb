//! The production shell (`raftmq::shell::Shell`, which owns the real
//! consensus core and the real queue state machine), N copies, on a
//! simulated network, disk and clock, all driven by one seed.
//!
//! Each simulated millisecond, every node gets the inputs due to it
//! (messages, disk reports, finished snapshots, client requests) and, when
//! it has inputs or a deadline is due, runs one turn exactly as the node's
//! event loop does: `on_input` for each, `end_turn`, then its outputs are
//! executed. The disk is asynchronous, as the LogManager is: batches become
//! durable after a random sync delay, and a crash keeps what was synced
//! plus what the real WAL recovery keeps of the write in flight, torn by
//! sector (disk.rs). Storage can fail and recover; nodes can crash,
//! restart, and exit on SIGTERM.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use raftmq::queue::{Command, QueueStateMachine, SessionCommand};
use raftmq::raft::{CoreConfig, LogIndex, NodeId, RaftCore, Repair, Role, Snapshot, Term};
use raftmq::shell::{ClientCommand, Input, Output, Shell, ShellSettings, SnapshotJob, TimerSettings, TransferRequest};
use raftmq::storage::{write_operations, DiskOperation, DiskReport, MemoryStorage, RecoveredState, Storage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::clients::{node_endpoint, Clients};
use super::disk::{power_loss, WalRule};
use super::invariants::{Checker, PrefixHashes};
use super::network::{Delivery, Network, NetworkConfig};

#[derive(Debug, Clone)]
pub struct SimOptions {
    pub nodes: usize,
    pub network: NetworkConfig,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    pub heartbeat_interval_ms: u64,
    pub max_entries_per_message: usize,
    pub max_inflight_messages: usize,
    /// When false, elections start only through `Cluster::force_election`.
    pub automatic_elections: bool,
    /// A node snapshots once this many log bytes were applied since its
    /// last snapshot; 0 never.
    pub snapshot_threshold_bytes: u64,
    pub snapshot_chunk_bytes: usize,
    pub retained_entries_after_snapshot: u64,
    pub pre_vote: bool,
    pub check_quorum: bool,
    /// Longest simulated fsync; 0 makes every write durable within a millisecond.
    pub max_sync_ms: u64,
    /// Simulated clients sending requests throughout.
    pub clients: usize,
    pub request_deadline_ms: u64,
    /// The recovery rule that reads a log after a crash.
    pub wal_rule: WalRule,
}

impl SimOptions {
    pub fn new(nodes: usize) -> SimOptions {
        SimOptions {
            nodes,
            network: NetworkConfig::reliable(),
            election_timeout_min_ms: 150,
            election_timeout_max_ms: 300,
            heartbeat_interval_ms: 30,
            max_entries_per_message: 64,
            max_inflight_messages: 8,
            automatic_elections: true,
            snapshot_threshold_bytes: 0,
            snapshot_chunk_bytes: 1 << 20,
            retained_entries_after_snapshot: 0,
            pre_vote: true,
            check_quorum: true,
            max_sync_ms: 4,
            clients: 0,
            request_deadline_ms: 500,
            wal_rule: WalRule::from_environment(),
        }
    }
}

const NEVER: u64 = u64::MAX;
/// What the harness's own requests carry: their replies are not checked.
const HARNESS: &[u8] = b"harness";

struct SimNode {
    /// None while down.
    shell: Option<Shell>,
    /// Survives crashes: the simulated disk.
    storage: MemoryStorage,
    /// Batches handed to the disk and not yet synced: (epoch, sequence, operations).
    unsynced: Vec<(u64, u64, Vec<DiskOperation>)>,
    sync_deadline_ms: u64,
    /// The disk's epoch: a failure ends one.
    disk_epoch: u64,
    syncs: u64,
    /// While storage is failed: when it works again.
    recover_at_ms: Option<u64>,
    /// Snapshot jobs being written: (done at, job).
    snapshot_jobs: Vec<(u64, SnapshotJob)>,
    /// Counts lives; a request's connection dies with its node's life.
    incarnation: u64,
    inbox: Vec<Input>,
    prefix: PrefixHashes,
    observed_applied: LogIndex,
    observed_leader_term: Option<Term>,
    /// Confused messages delivered to this node's current shell.
    confused_received: u64,
}

pub struct Cluster {
    pub seed: u64,
    pub now_ms: u64,
    pub network: Network,
    options: SimOptions,
    rng: ChaCha8Rng,
    nodes: Vec<SimNode>,
    checker: Checker,
    pub clients: Clients,
    /// Snapshots nodes made of their own state, and installed from a leader.
    pub snapshots_taken: u64,
    pub snapshots_installed: u64,
    pub storage_failures: u64,
    pub shutdowns: u64,
    /// Crashes with batches not reported durable; those whose write reached
    /// the file torn, and recovery cut; the records it cut from them.
    pub crashes_in_flight: u64,
    pub torn_tails: u64,
    pub torn_records_cut: u64,
    /// Power losses that also damaged the node's synced state, so that it
    /// restarted repairing from the cluster (`crash_with_damage`).
    pub damaged: u64,
    /// Confused messages delivered (confused.rs), and those the nodes dropped.
    pub confused_delivered: u64,
    pub confused_dropped: u64,
    outputs: Vec<Output>,
    /// SIM_TRACE_FROM_MS=<ms>: print every output from that simulated time on.
    trace_from_ms: Option<u64>,
}

impl Cluster {
    pub fn new(seed: u64, options: SimOptions) -> Cluster {
        let reply_limit_ms = options.request_deadline_ms + options.election_timeout_max_ms * 3 + 100;
        let mut cluster = Cluster {
            seed,
            now_ms: 0,
            network: Network::new(options.network, options.nodes),
            rng: ChaCha8Rng::seed_from_u64(seed),
            nodes: Vec::new(),
            checker: Checker::default(),
            clients: Clients::new(options.clients, options.nodes, reply_limit_ms),
            options,
            snapshots_taken: 0,
            snapshots_installed: 0,
            storage_failures: 0,
            shutdowns: 0,
            crashes_in_flight: 0,
            torn_tails: 0,
            torn_records_cut: 0,
            damaged: 0,
            confused_delivered: 0,
            confused_dropped: 0,
            outputs: Vec::new(),
            trace_from_ms: std::env::var("SIM_TRACE_FROM_MS").ok().and_then(|from| from.parse().ok()),
        };
        for id in 0..cluster.options.nodes {
            cluster.nodes.push(SimNode {
                shell: None,
                storage: MemoryStorage::new(),
                unsynced: Vec::new(),
                sync_deadline_ms: NEVER,
                disk_epoch: 0,
                syncs: 0,
                recover_at_ms: None,
                snapshot_jobs: Vec::new(),
                incarnation: 0,
                inbox: Vec::new(),
                prefix: PrefixHashes::empty(),
                observed_applied: 0,
                observed_leader_term: None,
                confused_received: 0,
            });
            cluster.restart(id);
        }
        cluster
    }

    fn fail(&self, violation: String) -> ! {
        panic!(
            "seed {}: at {} ms: {violation}\n{}\nreplay with SIM_SEED={}",
            self.seed,
            self.now_ms,
            self.describe(),
            self.seed
        );
    }

    fn check(&self, outcome: Result<(), String>) {
        if let Err(violation) = outcome {
            self.fail(violation);
        }
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    pub fn core(&self, node: NodeId) -> Option<&RaftCore> {
        self.nodes[node].shell.as_ref().map(Shell::core)
    }

    pub fn shell(&self, node: NodeId) -> Option<&Shell> {
        self.nodes[node].shell.as_ref()
    }

    pub fn is_up(&self, node: NodeId) -> bool {
        self.nodes[node].shell.is_some()
    }

    pub fn committed_count(&self) -> usize {
        self.checker.committed_count()
    }

    /// Entries Log Matching was checked on (their whole prefix).
    pub fn log_matching_checked(&self) -> u64 {
        self.checker.log_matching_checked
    }

    pub fn is_committed(&self, index: LogIndex, term: Term) -> bool {
        self.checker.is_committed(index, term)
    }

    pub fn applied_index(&self, node: NodeId) -> LogIndex {
        self.nodes[node].shell.as_ref().map_or(0, Shell::last_applied)
    }

    /// The live leader with the highest term, if any.
    pub fn leader(&self) -> Option<NodeId> {
        (0..self.nodes.len())
            .filter_map(|id| self.core(id).map(|core| (id, core)))
            .filter(|(_, core)| core.role() == Role::Leader)
            .max_by_key(|(_, core)| core.term())
            .map(|(id, _)| id)
    }

    fn incarnations(&self) -> Vec<Option<u64>> {
        self.nodes.iter().map(|node| node.shell.as_ref().map(|_| node.incarnation)).collect()
    }

    fn shell_settings(&self, node: NodeId) -> ShellSettings {
        let options = &self.options;
        let mut core = CoreConfig::new(node, options.nodes);
        core.max_entries_per_message = options.max_entries_per_message;
        core.max_inflight_messages = options.max_inflight_messages;
        core.snapshot_chunk_bytes = options.snapshot_chunk_bytes;
        core.retained_entries_after_snapshot = options.retained_entries_after_snapshot;
        core.pre_vote = options.pre_vote;
        core.check_quorum = options.check_quorum;
        // Scripted scenarios start every election by hand.
        let (election_min_ms, election_max_ms) = if options.automatic_elections {
            (options.election_timeout_min_ms, options.election_timeout_max_ms)
        } else {
            (1 << 40, 1 << 40)
        };
        let heartbeat_interval = Duration::from_millis(options.heartbeat_interval_ms);
        ShellSettings {
            core,
            timers: TimerSettings {
                election_timeout_min: Duration::from_millis(election_min_ms),
                election_timeout_max: Duration::from_millis(election_max_ms),
                heartbeat_interval,
                stall_tolerance: heartbeat_interval * 2,
            },
            request_deadline: Duration::from_millis(options.request_deadline_ms),
            max_pending_requests: 10_000,
            snapshot_threshold_bytes: match options.snapshot_threshold_bytes {
                0 => u64::MAX,
                bytes => bytes,
            },
            client_endpoints: (0..options.nodes).map(node_endpoint).collect(),
            exit_linger: Duration::from_millis(20),
        }
    }

    /// Stop a node as a power loss would: what its disk had synced stays;
    /// of the write in flight, the real WAL recovery decides what a
    /// sector-torn copy of it keeps (disk.rs).
    pub fn crash(&mut self, node: NodeId) {
        if !self.is_up(node) {
            return;
        }
        let epoch = self.nodes[node].disk_epoch;
        let batches: Vec<Vec<DiskOperation>> = std::mem::take(&mut self.nodes[node].unsynced)
            .into_iter()
            .filter(|(batch_epoch, _, _)| *batch_epoch == epoch)
            .map(|(_, _, operations)| operations)
            .collect();
        let rule = self.options.wal_rule;
        match power_loss(&mut self.nodes[node].storage, batches, rule, &mut self.rng) {
            Ok(loss) => {
                self.crashes_in_flight += u64::from(loss.in_flight);
                self.torn_tails += u64::from(loss.torn);
                self.torn_records_cut += loss.records_cut as u64;
            }
            Err(problem) => self.fail(format!("node {node} cannot restart after a power loss: {problem}")),
        }
        self.go_down(node);
    }

    /// A power loss that also damages what the node had synced: the real
    /// node's storage refuses the directory, moves it aside and starts the
    /// node repairing from the cluster (src/storage/repair.rs); here its
    /// disk keeps only the repair state the real rule writes. `lose_term`:
    /// the term and vote are gone too (a wiped directory). Refused (false)
    /// when it would leave fewer than a majority intact: then no copy of a
    /// committed entry need survive, and no repair can be safe.
    pub fn crash_with_damage(&mut self, node: NodeId, lose_term: bool) -> bool {
        let others_repairing = (0..self.options.nodes).filter(|&other| other != node && self.repairing(other)).count();
        let may_lose = (self.options.nodes - 1) / 2;
        if others_repairing + 1 > may_lose {
            return false;
        }
        self.crash(node);
        let stored = self.nodes[node].storage.hard_state();
        let hard_state = raftmq::storage::repair_hard_state((!lose_term).then_some(stored), node);
        let mut storage = MemoryStorage::new();
        storage.save_hard_state(hard_state).expect("memory storage saves");
        storage.sync().expect("memory storage syncs");
        self.nodes[node].storage = storage;
        self.nodes[node].prefix = PrefixHashes::empty();
        self.damaged += 1;
        true
    }

    /// Whether the node is repairing: it has not yet durably left the
    /// repair state (a down node's disk tells).
    pub fn repairing(&self, node: NodeId) -> bool {
        match self.core(node) {
            Some(core) if core.repair() != Repair::Intact => true,
            _ => self.nodes[node].storage.hard_state().repair != Repair::Intact,
        }
    }

    fn go_down(&mut self, node: NodeId) {
        let sim_node = &mut self.nodes[node];
        if let Some(shell) = sim_node.shell.take() {
            self.confused_dropped += shell.dropped_messages();
        }
        sim_node.confused_received = 0;
        sim_node.unsynced.clear();
        sim_node.sync_deadline_ms = NEVER;
        sim_node.recover_at_ms = None;
        sim_node.snapshot_jobs.clear();
        sim_node.inbox.clear();
        sim_node.incarnation += 1;
    }

    /// The node's log hashes, from what its storage kept: the hashes noted
    /// as batches were written include writes that a crash or a storage
    /// failure then lost (a torn conflicting append leaves the older
    /// entries in place), so they are rebuilt, and the kept entries checked.
    fn rebuild_prefix(&mut self, node: NodeId, recovered: &RecoveredState) -> Result<(), String> {
        let mut prefix = PrefixHashes::empty();
        if let Some(snapshot) = &recovered.snapshot {
            prefix.reset(snapshot.last_index, self.checker.committed_prefix_hash(snapshot.last_index));
        }
        if !recovered.entries.is_empty() {
            self.checker.on_persist(node, &mut prefix, &recovered.entries)?;
        }
        self.nodes[node].prefix = prefix;
        Ok(())
    }

    /// Start (or restart) a node from what its storage kept.
    pub fn restart(&mut self, node: NodeId) {
        if self.is_up(node) {
            return;
        }
        let settings = self.shell_settings(node);
        let seed = self.rng.gen();
        let now = Duration::from_millis(self.now_ms);
        let recovered = self.nodes[node].storage.load().expect("memory storage loads");
        let outcome = self.rebuild_prefix(node, &recovered);
        self.check(outcome);
        let sim_node = &mut self.nodes[node];
        let queue = match &recovered.snapshot {
            Some(snapshot) => QueueStateMachine::decode_snapshot(&snapshot.data).expect("own snapshots decode"),
            None => QueueStateMachine::new(),
        };
        let disk_bytes = sim_node.storage.disk_bytes();
        let shell = Shell::new(settings, recovered, queue, disk_bytes, seed, now);
        sim_node.observed_applied = shell.last_applied();
        sim_node.observed_leader_term = None;
        sim_node.disk_epoch = 0;
        sim_node.shell = Some(shell);
        self.after_turn(node);
    }

    /// SIGTERM: the node hands leadership over if it leads, answers what
    /// it holds, lets its disk finish, and goes down at its exit time.
    pub fn terminate(&mut self, node: NodeId) {
        if self.is_up(node) {
            self.shutdowns += 1;
            self.nodes[node].inbox.push(Input::Shutdown);
        }
    }

    /// The node's storage fails (a full disk, an I/O error): every write
    /// not yet reported durable is lost; it comes back after a while.
    pub fn fail_storage(&mut self, node: NodeId) {
        let now_ms = self.now_ms;
        let back_after_ms = self.rng.gen_range(20..400);
        let sim_node = &mut self.nodes[node];
        if sim_node.shell.is_none() || sim_node.recover_at_ms.is_some() {
            return;
        }
        self.storage_failures += 1;
        sim_node.unsynced.clear();
        sim_node.sync_deadline_ms = NEVER;
        sim_node.disk_epoch += 1;
        sim_node.recover_at_ms = Some(now_ms + back_after_ms);
        sim_node.inbox.push(Input::Disk(DiskReport::Failed { detail: "simulated disk failure".into() }));
    }

    /// Every node's role, term, log and progress, for a failure report.
    pub fn describe(&self) -> String {
        let mut lines = Vec::new();
        for (id, sim_node) in self.nodes.iter().enumerate() {
            let line = match &sim_node.shell {
                None => format!("node {id}: down"),
                Some(shell) => {
                    let core = shell.core();
                    format!(
                        "node {id}: {:?} term {} leader {:?} commit {} last {} (term {}) persisted {} applied {} \
                         snapshot {} unsynced {} sync at {} pending {}",
                        core.role(),
                        core.term(),
                        core.leader(),
                        core.commit_index(),
                        core.log().last_index(),
                        core.log().last_term(),
                        core.persisted_index(),
                        shell.last_applied(),
                        core.snapshot_index(),
                        sim_node.unsynced.len(),
                        sim_node.sync_deadline_ms,
                        shell.pending_requests(),
                    )
                }
            };
            lines.push(line);
        }
        lines.join("\n")
    }

    /// Start an election on `node` now (Raft §5.2), as the scripted
    /// scenarios of the paper's figures do.
    pub fn force_election(&mut self, node: NodeId) {
        if let Some(shell) = self.nodes[node].shell.as_mut() {
            shell.campaign();
            self.turn(node, true);
        }
    }

    pub fn propose(&mut self, node: NodeId, command: Command) -> Option<(LogIndex, Term)> {
        self.propose_batch(node, vec![command])
    }

    /// Send several writes to `node` in one turn, as one turn's requests
    /// are proposed together; returns the first one's index and term if
    /// the node accepted them as leader.
    pub fn propose_batch(&mut self, node: NodeId, commands: Vec<Command>) -> Option<(LogIndex, Term)> {
        let count = commands.len() as LogIndex;
        let encoded: Vec<Vec<u8>> =
            commands.iter().map(|command| SessionCommand::encode_parts(None, command)).collect();
        let sim_node = &mut self.nodes[node];
        sim_node.shell.as_ref()?;
        for command in commands {
            let envelope = vec![HARNESS.to_vec()];
            sim_node.inbox.push(Input::Client(ClientCommand { envelope, id: None, session: None, command }));
        }
        self.turn(node, true);
        let core = self.core(node)?;
        let last = core.log().last_index();
        let first = (last + 1).checked_sub(count)?;
        let ours =
            (first..=last).zip(&encoded).all(|(index, data)| core.log().entry(index).is_some_and(|e| &e.data == data));
        (core.role() == Role::Leader && ours).then(|| (first, core.log().term_at(first).expect("just checked")))
    }

    /// Ask the leader `node` to hand leadership to `to` (Raft dissertation §3.10).
    pub fn transfer(&mut self, node: NodeId, to: NodeId) {
        if self.is_up(node) {
            let request = TransferRequest { envelope: vec![HARNESS.to_vec()], id: None, to };
            self.nodes[node].inbox.push(Input::Transfer(request));
        }
    }

    /// Advance the clock one millisecond: deliver what is due, run turns.
    pub fn tick(&mut self) {
        self.now_ms += 1;
        for Delivery { from, to, message, confused } in self.network.due(self.now_ms) {
            if self.is_up(to) {
                self.nodes[to].confused_received += u64::from(confused);
                self.confused_delivered += u64::from(confused);
                self.nodes[to].inbox.push(Input::Peer { from, message });
            }
        }
        let incarnations = self.incarnations();
        let sends = self.clients.due(self.now_ms, &mut self.rng, &self.checker, &incarnations);
        for send in sends {
            self.nodes[send.node].inbox.push(Input::Client(send.command));
        }
        for node in 0..self.nodes.len() {
            if !self.is_up(node) {
                continue;
            }
            self.run_disk(node);
            self.turn(node, false);
            let exited = self.nodes[node].shell.as_ref().and_then(Shell::exit_time);
            if exited.is_some_and(|until| until <= Duration::from_millis(self.now_ms)) {
                // A node that exits cleanly has answered every request it got.
                let outcome = self.clients.check_all_answered(node, self.nodes[node].incarnation);
                self.check(outcome);
                self.go_down(node);
            }
        }
        let incarnations = self.incarnations();
        let outcome = self.clients.check_timeouts(self.now_ms, &incarnations);
        self.check(outcome);
    }

    /// Deliver what the node's disk and snapshot writer finished by now.
    fn run_disk(&mut self, node: NodeId) {
        let now_ms = self.now_ms;
        if self.nodes[node].sync_deadline_ms <= now_ms {
            self.sync(node);
        }
        if self.nodes[node].recover_at_ms.is_some_and(|at| at <= now_ms) {
            let sim_node = &mut self.nodes[node];
            sim_node.recover_at_ms = None;
            let state = sim_node.storage.load().expect("memory storage loads");
            let disk_bytes = sim_node.storage.disk_bytes();
            let epoch = sim_node.disk_epoch;
            let outcome = self.rebuild_prefix(node, &state);
            self.check(outcome);
            self.nodes[node].inbox.push(Input::Disk(DiskReport::Recovered { epoch, state, disk_bytes }));
        }
        let sim_node = &mut self.nodes[node];
        let (done, waiting): (Vec<_>, Vec<_>) =
            std::mem::take(&mut sim_node.snapshot_jobs).into_iter().partition(|(at, _)| *at <= now_ms);
        sim_node.snapshot_jobs = waiting;
        for (_, job) in done {
            let data = Arc::new(job.queue.encode_snapshot());
            let snapshot = Snapshot { last_index: job.last_index, last_term: job.last_term, data };
            sim_node.inbox.push(Input::SnapshotWritten(Ok((snapshot, PathBuf::from("simulated")))));
        }
    }

    /// The disk finished its sync: every batch of the current epoch handed
    /// to it is durable; report the last one, as the LogManager does.
    fn sync(&mut self, node: NodeId) {
        let sim_node = &mut self.nodes[node];
        sim_node.sync_deadline_ms = NEVER;
        let epoch = sim_node.disk_epoch;
        let batches: Vec<_> = std::mem::take(&mut sim_node.unsynced)
            .into_iter()
            .filter(|(batch_epoch, _, _)| *batch_epoch == epoch)
            .collect();
        let Some(&(_, sequence, _)) = batches.last() else {
            return;
        };
        let operations = batches.into_iter().flat_map(|(_, _, operations)| operations);
        let written = match write_operations(&mut sim_node.storage, operations) {
            Ok(written) => written,
            Err(error) => self.fail(error.to_string()),
        };
        let sim_node = &mut self.nodes[node];
        sim_node.syncs += 1;
        sim_node.inbox.push(Input::Disk(DiskReport::Durable {
            epoch,
            sequence,
            last_entry: written.last_entry,
            saved_snapshot: written.saved_snapshot,
            disk_bytes: sim_node.storage.disk_bytes(),
            syncs: sim_node.syncs,
        }));
    }

    /// One turn of the node's event loop, when it has inputs or a deadline
    /// is due (or `always`).
    fn turn(&mut self, node: NodeId, always: bool) {
        let now = Duration::from_millis(self.now_ms);
        let sim_node = &mut self.nodes[node];
        let Some(shell) = sim_node.shell.as_mut() else {
            return;
        };
        let due = shell.next_deadline().is_some_and(|deadline| deadline <= now);
        if sim_node.inbox.is_empty() && !due && !always {
            return;
        }
        for input in std::mem::take(&mut sim_node.inbox) {
            shell.on_input(input, now);
        }
        shell.end_turn(now);
        self.after_turn(node);
    }

    /// Check the node's state, then execute its outputs: the checker sees
    /// every entry a reply may report committed before the reply leaves.
    fn after_turn(&mut self, node: NodeId) {
        let outcome = self.observe(node);
        self.check(outcome);
        let mut outputs = std::mem::take(&mut self.outputs);
        if let Some(shell) = self.nodes[node].shell.as_mut() {
            shell.take_outputs(&mut outputs);
        }
        for output in outputs.drain(..) {
            if self.trace_from_ms.is_some_and(|from| self.now_ms >= from) {
                let text = format!("{output:?}");
                eprintln!("{} node {node}: {}", self.now_ms, &text[..text.len().min(300)]);
            }
            let outcome = self.execute(node, output);
            self.check(outcome);
        }
        self.outputs = outputs;
    }

    /// Confused messages the nodes dropped, those still running included.
    pub fn confused_dropped_so_far(&self) -> u64 {
        let running: u64 = self.nodes.iter().filter_map(|node| node.shell.as_ref()).map(Shell::dropped_messages).sum();
        self.confused_dropped + running
    }

    fn observe(&mut self, node: NodeId) -> Result<(), String> {
        let sim_node = &mut self.nodes[node];
        let Some(shell) = sim_node.shell.as_ref() else {
            return Ok(());
        };
        // Confused messages (confused.rs) must be dropped; an honest one
        // never. (Not every confused one counts: a follower ignores an
        // acknowledgement without judging it.)
        if shell.dropped_messages() > sim_node.confused_received {
            return Err(format!(
                "node {node} dropped {} messages as untrustworthy but received only {} confused ones: \
                 it dropped a message from an honest peer",
                shell.dropped_messages(),
                sim_node.confused_received
            ));
        }
        let core = shell.core();
        if core.term() >= super::confused::TERM_NO_HONEST_RUN_REACHES {
            return Err(format!("node {node} took the term {} of a confused message", core.term()));
        }
        let applied = shell.last_applied();
        for index in sim_node.observed_applied + 1..=applied {
            // Entries below a snapshot installed this turn are not in the
            // log; the state digest below covers them.
            if let Some(entry) = core.log().entry(index) {
                self.checker.on_apply(node, entry)?;
            }
        }
        sim_node.observed_applied = applied;
        self.checker.on_state(node, applied, shell.queue().digest())?;
        if core.role() == Role::Leader && sim_node.observed_leader_term != Some(core.term()) {
            sim_node.observed_leader_term = Some(core.term());
            self.checker.on_leader(node, core.term(), core.log())?;
        }
        Ok(())
    }

    fn execute(&mut self, node: NodeId, output: Output) -> Result<(), String> {
        match output {
            Output::Send { to, message } => self.network.send(&mut self.rng, self.now_ms, node, to, message),
            Output::Reply { envelope, body, .. } => {
                if envelope.first().is_some_and(|frame| frame == HARNESS) {
                    return Ok(());
                }
                self.clients.on_reply(node, &envelope, &body, self.now_ms, &self.checker)?;
            }
            Output::WriteBatch { epoch, sequence, operations } => {
                self.on_write_batch(node, &operations)?;
                let delay_ms = self.rng.gen_range(0..=self.options.max_sync_ms);
                let sim_node = &mut self.nodes[node];
                if sim_node.sync_deadline_ms == NEVER {
                    sim_node.sync_deadline_ms = self.now_ms + delay_ms.max(1);
                }
                sim_node.unsynced.push((epoch, sequence, operations));
            }
            Output::WriteSnapshot(job) => {
                self.checker.on_state(node, job.last_index, job.queue.digest())?;
                self.snapshots_taken += 1;
                let done_at = self.now_ms + self.rng.gen_range(1..=5);
                self.nodes[node].snapshot_jobs.push((done_at, job));
            }
            Output::RemoveFile(_) | Output::Release(_) => {}
            Output::Fatal { detail } => return Err(format!("node {node} stopped: {detail}")),
            Output::Exit => {
                // The LogManager finishes what it holds before the process ends.
                self.sync(node);
                self.nodes[node].inbox.clear();
            }
        }
        Ok(())
    }

    fn on_write_batch(&mut self, node: NodeId, operations: &[DiskOperation]) -> Result<(), String> {
        for operation in operations {
            match operation {
                DiskOperation::Entries(entries) => {
                    self.checker.on_persist(node, &mut self.nodes[node].prefix, entries)?;
                }
                DiskOperation::InstallSnapshot { snapshot, log_kept } => {
                    self.snapshots_installed += 1;
                    if !log_kept {
                        let base = self.checker.committed_prefix_hash(snapshot.last_index);
                        self.nodes[node].prefix.reset(snapshot.last_index, base);
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    pub fn run_for(&mut self, duration_ms: u64) {
        for _ in 0..duration_ms {
            self.tick();
        }
    }

    /// Tick until `done` holds; false if `limit_ms` passes first.
    pub fn run_until(&mut self, limit_ms: u64, mut done: impl FnMut(&Cluster) -> bool) -> bool {
        for _ in 0..limit_ms {
            if done(self) {
                return true;
            }
            self.tick();
        }
        done(self)
    }

    pub fn wait_for_leader(&mut self, limit_ms: u64) -> NodeId {
        if !self.run_until(limit_ms, |cluster| cluster.leader().is_some()) {
            self.fail(format!("no leader within {limit_ms} ms"));
        }
        self.leader().expect("just checked")
    }

    /// Every topic's queued messages on `node`, for the final loss check.
    pub fn queued_messages(&self, node: NodeId) -> HashMap<String, Vec<String>> {
        let shell = self.shell(node).expect("a live node");
        shell
            .queue()
            .topics_with_messages()
            .map(|(topic, messages)| (topic.to_string(), messages.iter().map(|m| m.to_string()).collect()))
            .collect()
    }

    /// Every acknowledged message was delivered or is still queued.
    pub fn check_nothing_lost(&self, node: NodeId) {
        let remaining = self.queued_messages(node);
        self.check(self.clients.check_nothing_lost(&remaining));
    }

    /// Replies that failed a check end the run with the seed; tests may add their own.
    pub fn assert_that(&self, holds: bool, what: &str) {
        if !holds {
            self.fail(what.to_string());
        }
    }
}
