//! The real consensus core, N copies, on a simulated network and clock, all
//! driven by one seed. Each node's disk is asynchronous, as the real shell's
//! LogManager is: writes become durable after a random sync delay, messages
//! that promise durability wait for it, and a crash keeps only what was
//! synced (plus, at random, a prefix of what was being written).

use std::sync::Arc;

use raftmq::raft::{
    CoreConfig, Effect, Entry, Event, HardState, LogIndex, Message, NodeId, RaftCore, Role, Snapshot, Term,
};
use raftmq::storage::{MemoryStorage, Storage};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::invariants::{chain_hash, Checker};
use super::network::{Network, NetworkConfig};

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
    /// A node snapshots once it applied this many entries since its last
    /// snapshot; 0 never.
    pub snapshot_every_entries: u64,
    pub snapshot_chunk_bytes: usize,
    pub retained_entries_after_snapshot: u64,
    pub pre_vote: bool,
    pub check_quorum: bool,
    /// Longest simulated fsync; 0 makes every write durable at once.
    pub max_sync_ms: u64,
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
            snapshot_every_entries: 0,
            snapshot_chunk_bytes: 1 << 20,
            retained_entries_after_snapshot: 0,
            pre_vote: true,
            check_quorum: true,
            max_sync_ms: 4,
        }
    }
}

const NEVER: u64 = u64::MAX;

struct SimNode {
    /// None while crashed.
    core: Option<RaftCore>,
    /// Survives crashes: the simulated disk.
    storage: MemoryStorage,
    election_deadline_ms: u64,
    lease_deadline_ms: u64,
    heartbeat_deadline_ms: u64,
    /// Highest index applied by this incarnation, and its state machine: the
    /// chained hash of every entry applied (a snapshot carries it).
    applied_index: LogIndex,
    applied_hash: u64,
    snapshot_index: LogIndex,
    prefix_hashes: Vec<u64>,
    /// Writes handed to the disk and not yet synced, in order.
    unsynced: Vec<DiskWrite>,
    /// Messages that may leave only once `unsynced` is durable.
    held: Vec<(NodeId, Message)>,
    sync_deadline_ms: u64,
    /// ReadIndex reads this node started: (round, the highest index applied
    /// anywhere when the read began, which the read must reflect).
    reads: Vec<(u64, LogIndex)>,
}

/// One write the simulated disk has not synced yet.
enum DiskWrite {
    HardState(HardState),
    Entries(Vec<Entry>),
    Compact(LogIndex),
    /// A snapshot from the leader: keep it, then drop the log it covers
    /// (all of it unless `log_kept`).
    Install(Snapshot, bool),
    /// This node's own snapshot; the core hears of it once it is durable.
    Save(Snapshot),
}

pub struct Cluster {
    pub seed: u64,
    pub now_ms: u64,
    pub network: Network,
    options: SimOptions,
    rng: SmallRng,
    nodes: Vec<SimNode>,
    checker: Checker,
    /// Snapshots nodes made of their own state, and installed from a leader.
    pub snapshots_taken: u64,
    pub snapshots_installed: u64,
    reads_confirmed: u64,
    /// SIM_TRACE_FROM_MS=<ms>: print every effect from that simulated time on
    /// (read once, not per effect).
    trace_from_ms: Option<u64>,
}

impl Cluster {
    pub fn new(seed: u64, options: SimOptions) -> Cluster {
        let mut cluster = Cluster {
            seed,
            now_ms: 0,
            network: Network::new(options.network),
            rng: SmallRng::seed_from_u64(seed),
            nodes: Vec::new(),
            checker: Checker::default(),
            options,
            snapshots_taken: 0,
            snapshots_installed: 0,
            reads_confirmed: 0,
            trace_from_ms: std::env::var("SIM_TRACE_FROM_MS").ok().and_then(|from| from.parse().ok()),
        };
        for id in 0..cluster.options.nodes {
            cluster.nodes.push(SimNode {
                core: None,
                storage: MemoryStorage::new(),
                election_deadline_ms: NEVER,
                lease_deadline_ms: NEVER,
                heartbeat_deadline_ms: NEVER,
                applied_index: 0,
                applied_hash: 0,
                snapshot_index: 0,
                prefix_hashes: Vec::new(),
                unsynced: Vec::new(),
                held: Vec::new(),
                sync_deadline_ms: NEVER,
                reads: Vec::new(),
            });
            cluster.restart(id);
        }
        cluster
    }

    fn fail(&self, violation: String) -> ! {
        panic!("seed {}: at {} ms: {violation}\nreplay with SIM_SEED={}", self.seed, self.now_ms, self.seed);
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn rng(&mut self) -> &mut SmallRng {
        &mut self.rng
    }

    pub fn core(&self, node: NodeId) -> Option<&RaftCore> {
        self.nodes[node].core.as_ref()
    }

    pub fn is_up(&self, node: NodeId) -> bool {
        self.nodes[node].core.is_some()
    }

    pub fn committed_count(&self) -> usize {
        self.checker.committed_count()
    }

    pub fn is_committed(&self, index: LogIndex, term: Term) -> bool {
        self.checker.is_committed(index, term)
    }

    pub fn applied_index(&self, node: NodeId) -> LogIndex {
        self.nodes[node].applied_index
    }

    /// The live leader with the highest term, if any.
    pub fn leader(&self) -> Option<NodeId> {
        (0..self.nodes.len())
            .filter_map(|id| self.core(id).map(|core| (id, core)))
            .filter(|(_, core)| core.role() == Role::Leader)
            .max_by_key(|(_, core)| core.term())
            .map(|(id, _)| id)
    }

    /// Stop a node as kill -9 would: what its disk had not synced is lost,
    /// except a random prefix that reached the platter before the crash
    /// (a WAL keeps a prefix of its records, never a later one alone).
    pub fn crash(&mut self, node: NodeId) {
        let pending = std::mem::take(&mut self.nodes[node].unsynced);
        let survivors = self.rng.gen_range(0..=pending.len());
        for write in pending.into_iter().take(survivors) {
            if let Err(violation) = Self::write_to_disk(&mut self.nodes[node], write) {
                self.fail(violation);
            }
        }
        let sim_node = &mut self.nodes[node];
        sim_node.held.clear();
        sim_node.reads.clear();
        sim_node.sync_deadline_ms = NEVER;
        sim_node.core = None;
        sim_node.election_deadline_ms = NEVER;
        sim_node.lease_deadline_ms = NEVER;
        sim_node.heartbeat_deadline_ms = NEVER;
    }

    /// Start (or restart) a node from what its storage kept.
    pub fn restart(&mut self, node: NodeId) {
        let recovered = self.nodes[node].storage.load().expect("memory storage loads");
        let mut config = CoreConfig::new(node, self.options.nodes);
        config.max_entries_per_message = self.options.max_entries_per_message;
        config.max_inflight_messages = self.options.max_inflight_messages;
        config.snapshot_chunk_bytes = self.options.snapshot_chunk_bytes;
        config.retained_entries_after_snapshot = self.options.retained_entries_after_snapshot;
        config.pre_vote = self.options.pre_vote;
        config.check_quorum = self.options.check_quorum;
        let (applied_index, applied_hash) = recovered.snapshot.as_ref().map_or((0, 0), decode_snapshot);
        let mut core = RaftCore::restore(config, recovered.hard_state, recovered.snapshot, recovered.entries);
        let mut effects = Vec::new();
        core.drain_effects(&mut effects);
        let sim_node = &mut self.nodes[node];
        sim_node.core = Some(core);
        sim_node.applied_index = applied_index;
        sim_node.applied_hash = applied_hash;
        sim_node.snapshot_index = applied_index;
        self.execute(node, effects);
    }

    /// Start a linearizable read on `node` (Raft dissertation §6.4). When it
    /// is confirmed, its read index must cover every entry applied anywhere
    /// before it began: a read served at a lower index could miss a write
    /// already acknowledged, which is a stale read.
    pub fn read(&mut self, node: NodeId) -> bool {
        let must_see = (0..self.nodes.len()).map(|other| self.nodes[other].applied_index).max().unwrap_or(0);
        // The read is recorded before its effects run: a cluster of one
        // confirms it among them.
        let Some(Ok(round)) = self.nodes[node].core.as_mut().map(RaftCore::read_index) else {
            return false;
        };
        self.nodes[node].reads.push((round, must_see));
        self.drive(node, |_| ());
        true
    }

    /// Hand leadership from `node` to `to` (Raft dissertation §3.10).
    pub fn transfer(&mut self, node: NodeId, to: NodeId) {
        self.drive(node, |core| core.transfer_leadership(to));
    }

    /// Every node's role, term, log and progress, for a failure report.
    pub fn describe(&self) -> String {
        let mut lines = Vec::new();
        for (id, sim_node) in self.nodes.iter().enumerate() {
            let line = match &sim_node.core {
                None => format!("node {id}: down"),
                Some(core) => format!(
                    "node {id}: {:?} term {} leader {:?} commit {} last {} (term {}) persisted {} applied {} \
                     snapshot {} unsynced {} held {} sync at {} now {}",
                    core.role(),
                    core.term(),
                    core.leader(),
                    core.commit_index(),
                    core.log().last_index(),
                    core.log().last_term(),
                    core.persisted_index(),
                    sim_node.applied_index,
                    core.snapshot_index(),
                    sim_node.unsynced.len(),
                    sim_node.held.len(),
                    sim_node.sync_deadline_ms,
                    self.now_ms
                ),
            };
            lines.push(line);
        }
        lines.join("\n")
    }

    pub fn reads_confirmed(&self) -> u64 {
        self.reads_confirmed
    }

    pub fn force_election(&mut self, node: NodeId) {
        self.step(node, Event::ElectionTimeout);
    }

    pub fn propose(&mut self, node: NodeId, data: Vec<u8>) -> Option<(LogIndex, Term)> {
        self.propose_batch(node, vec![data])
    }

    /// Propose several commands at once, as the shell does with one turn's
    /// requests; returns the first one's index and term.
    pub fn propose_batch(&mut self, node: NodeId, commands: Vec<Vec<u8>>) -> Option<(LogIndex, Term)> {
        self.drive(node, |core| core.propose(commands).ok()).flatten()
    }

    pub fn step(&mut self, node: NodeId, event: Event) {
        self.drive(node, |core| core.step(event));
    }

    /// Call into a live node's core, then execute the effects it emitted, as
    /// the shell does after every input. None if the node is down.
    fn drive<R>(&mut self, node: NodeId, call: impl FnOnce(&mut RaftCore) -> R) -> Option<R> {
        let core = self.nodes[node].core.as_mut()?;
        let returned = call(core);
        let mut effects = Vec::new();
        core.drain_effects(&mut effects);
        self.execute(node, effects);
        Some(returned)
    }

    /// Advance the clock one millisecond: deliver what is due, fire timers.
    pub fn tick(&mut self) {
        self.now_ms += 1;
        for (from, to, message) in self.network.due(self.now_ms) {
            self.step(to, Event::Message { from, message });
        }
        for node in 0..self.nodes.len() {
            if self.nodes[node].sync_deadline_ms <= self.now_ms {
                self.sync(node);
            }
            if self.nodes[node].election_deadline_ms <= self.now_ms {
                self.nodes[node].election_deadline_ms = NEVER;
                self.step(node, Event::ElectionTimeout);
            }
            if self.nodes[node].lease_deadline_ms <= self.now_ms {
                self.nodes[node].lease_deadline_ms = NEVER;
                self.step(node, Event::LeaseTimeout);
            }
            if self.nodes[node].heartbeat_deadline_ms <= self.now_ms {
                self.nodes[node].heartbeat_deadline_ms = NEVER;
                self.step(node, Event::HeartbeatTimeout);
            }
        }
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

    /// Execute effects in order (persist, send, apply as emitted). Writes go
    /// to the node's unsynced queue; `sync` reports them to the core.
    fn execute(&mut self, node: NodeId, mut pending: Vec<Effect>) {
        while !pending.is_empty() {
            for effect in std::mem::take(&mut pending) {
                if let Err(violation) = self.execute_one(node, effect) {
                    self.fail(violation);
                }
            }
            self.maybe_snapshot(node);
            if self.options.max_sync_ms == 0 && !self.nodes[node].unsynced.is_empty() {
                self.sync(node);
            }
        }
    }

    /// The disk finished its sync: every queued write is durable. Release the
    /// messages that waited for it and tell the core what is now durable.
    fn sync(&mut self, node: NodeId) {
        let sim_node = &mut self.nodes[node];
        sim_node.sync_deadline_ms = NEVER;
        let writes = std::mem::take(&mut sim_node.unsynced);
        let held = std::mem::take(&mut sim_node.held);
        let mut events = Vec::new();
        for write in writes {
            if let DiskWrite::Entries(entries) = &write {
                let last = entries.last().expect("non-empty");
                events.retain(|event| !matches!(event, Event::LogPersisted { .. }));
                events.push(Event::LogPersisted { index: last.index, term: last.term });
            }
            if let DiskWrite::Save(snapshot) = &write {
                events.push(Event::SnapshotSaved { snapshot: snapshot.clone() });
            }
            if let Err(violation) = Self::write_to_disk(&mut self.nodes[node], write) {
                self.fail(violation);
            }
        }
        for (to, message) in held {
            self.network.send(&mut self.rng, self.now_ms, node, to, message);
        }
        for event in events {
            self.step(node, event);
        }
    }

    fn write_to_disk(sim_node: &mut SimNode, write: DiskWrite) -> Result<(), String> {
        let storage = &mut sim_node.storage;
        let outcome = match write {
            DiskWrite::HardState(hard_state) => storage.save_hard_state(hard_state),
            DiskWrite::Entries(entries) => storage.append_entries(&entries),
            DiskWrite::Compact(through_index) => storage.compact(through_index),
            DiskWrite::Install(snapshot, log_kept) => storage.save_snapshot(&snapshot).and_then(|()| {
                if log_kept {
                    storage.compact(snapshot.last_index)
                } else {
                    storage.reset_log(snapshot.last_index)
                }
            }),
            DiskWrite::Save(snapshot) => storage.save_snapshot(&snapshot),
        };
        outcome.map_err(|error| error.to_string())
    }

    fn queue_write(&mut self, node: NodeId, write: DiskWrite) {
        let delay_ms = self.rng.gen_range(1..=self.options.max_sync_ms.max(1));
        let sim_node = &mut self.nodes[node];
        if sim_node.sync_deadline_ms == NEVER {
            sim_node.sync_deadline_ms = self.now_ms + delay_ms;
        }
        sim_node.unsynced.push(write);
    }

    /// Snapshot a node's state machine once it applied enough since the
    /// last one, as the shell does; the core learns of it once it is durable.
    fn maybe_snapshot(&mut self, node: NodeId) {
        let every = self.options.snapshot_every_entries;
        let sim_node = &mut self.nodes[node];
        if every == 0 || sim_node.applied_index < sim_node.snapshot_index + every {
            return;
        }
        let core = sim_node.core.as_ref().expect("live node");
        let last_index = sim_node.applied_index;
        let last_term = core.log().term_at(last_index).expect("applied entries are held");
        let snapshot =
            Snapshot { last_index, last_term, data: Arc::new(encode_snapshot(last_index, sim_node.applied_hash)) };
        if let Err(violation) = self.checker.on_snapshot(node, last_index, last_term, sim_node.applied_hash) {
            self.fail(violation);
        }
        sim_node.snapshot_index = last_index;
        self.snapshots_taken += 1;
        self.queue_write(node, DiskWrite::Save(snapshot));
    }

    fn execute_one(&mut self, node: NodeId, effect: Effect) -> Result<(), String> {
        if self.trace_from_ms.is_some_and(|from| self.now_ms >= from) {
            let text = format!("{effect:?}");
            eprintln!("{} node {node}: {}", self.now_ms, &text[..text.len().min(300)]);
        }
        let sim_node = &mut self.nodes[node];
        match effect {
            Effect::PersistHardState(hard_state) => self.queue_write(node, DiskWrite::HardState(hard_state)),
            Effect::PersistEntries(entries) => {
                self.checker.on_persist(node, &mut sim_node.prefix_hashes, &entries)?;
                self.queue_write(node, DiskWrite::Entries(entries));
            }
            Effect::Send { to, message } => {
                // As the shell's HeldSends: what promises durable state waits.
                if message.needs_durability() && !sim_node.unsynced.is_empty() {
                    sim_node.held.push((to, message));
                } else {
                    self.network.send(&mut self.rng, self.now_ms, node, to, message);
                }
            }
            Effect::Apply { first_index, last_index } => {
                if first_index != sim_node.applied_index + 1 || last_index < first_index {
                    return Err(format!(
                        "node {node} applies {first_index}..={last_index} after {}",
                        sim_node.applied_index
                    ));
                }
                let core = sim_node.core.as_ref().expect("live node");
                for index in first_index..=last_index {
                    let entry: &Entry = core.log().entry(index).ok_or(format!("applied index {index} missing"))?;
                    self.checker.on_apply(node, entry)?;
                    sim_node.applied_hash = chain_hash(sim_node.applied_hash, entry);
                }
                sim_node.applied_index = last_index;
            }
            Effect::CompactLog { through_index } => self.queue_write(node, DiskWrite::Compact(through_index)),
            Effect::InstallSnapshot { snapshot, log_kept } => {
                let (last_index, hash) = decode_snapshot(&snapshot);
                self.checker.on_snapshot(node, last_index, snapshot.last_term, hash)?;
                if last_index <= sim_node.applied_index {
                    return Err(format!(
                        "node {node} installs snapshot {last_index} after applying {}",
                        sim_node.applied_index
                    ));
                }
                if !log_kept {
                    sim_node.prefix_hashes.resize(last_index as usize, 0);
                    sim_node.prefix_hashes[last_index as usize - 1] = hash;
                }
                sim_node.applied_index = last_index;
                sim_node.applied_hash = hash;
                sim_node.snapshot_index = last_index;
                self.snapshots_installed += 1;
                self.queue_write(node, DiskWrite::Install(snapshot, log_kept));
            }
            Effect::ResetElectionTimer => {
                sim_node.election_deadline_ms = if self.options.automatic_elections {
                    self.now_ms
                        + self
                            .rng
                            .gen_range(self.options.election_timeout_min_ms..=self.options.election_timeout_max_ms)
                } else {
                    NEVER
                };
                sim_node.lease_deadline_ms = self.now_ms + self.options.election_timeout_min_ms;
            }
            Effect::ReadsConfirmed { round, read_index } => {
                for &(read_round, must_see) in sim_node.reads.iter().filter(|(read_round, _)| *read_round <= round) {
                    if read_index < must_see {
                        return Err(format!(
                            "stale read on node {node}: round {read_round} reads at {read_index}, \
                             but {must_see} was applied before it began"
                        ));
                    }
                    self.reads_confirmed += 1;
                }
                sim_node.reads.retain(|(read_round, _)| *read_round > round);
            }
            Effect::ResetHeartbeatTimer => {
                sim_node.heartbeat_deadline_ms = self.now_ms + self.options.heartbeat_interval_ms;
            }
            Effect::RoleChanged { role: Role::Leader, term, .. } => {
                let core = sim_node.core.as_ref().expect("live node");
                self.checker.on_leader(node, term, core.log())?;
            }
            Effect::RoleChanged { .. } => sim_node.reads.clear(),
            // Every simulated peer is honest: the core must trust all it sends.
            Effect::MessageDropped { from, reason } => {
                return Err(format!("node {node} dropped a message from honest node {from}: {reason}"));
            }
        }
        Ok(())
    }
}

fn encode_snapshot(last_index: LogIndex, hash: u64) -> Vec<u8> {
    let mut data = last_index.to_le_bytes().to_vec();
    data.extend_from_slice(&hash.to_le_bytes());
    data
}

fn decode_snapshot(snapshot: &Snapshot) -> (LogIndex, u64) {
    let data = &snapshot.data;
    let last_index = u64::from_le_bytes(data[0..8].try_into().expect("sim snapshots hold 16 bytes"));
    assert_eq!(last_index, snapshot.last_index, "snapshot data and metadata agree");
    (last_index, u64::from_le_bytes(data[8..16].try_into().expect("sim snapshots hold 16 bytes")))
}
