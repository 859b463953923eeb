//! The real consensus core, N copies, on a simulated network and clock, all
//! driven by one seed. Crashes keep only what storage made durable.

use std::sync::Arc;

use raftmq::raft::{CoreConfig, Effect, Entry, Event, LogIndex, NodeId, RaftCore, Role, Snapshot, Term};
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

    pub fn crash(&mut self, node: NodeId) {
        let sim_node = &mut self.nodes[node];
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

    pub fn force_election(&mut self, node: NodeId) {
        self.step(node, Event::ElectionTimeout);
    }

    pub fn propose(&mut self, node: NodeId, data: Vec<u8>) -> Option<(LogIndex, Term)> {
        self.propose_batch(node, vec![data])
    }

    /// Propose several commands at once, as the shell does with one turn's
    /// requests; returns the first one's index and term.
    pub fn propose_batch(&mut self, node: NodeId, commands: Vec<Vec<u8>>) -> Option<(LogIndex, Term)> {
        let core = self.nodes[node].core.as_mut()?;
        let accepted = core.propose(commands).ok();
        let mut effects = Vec::new();
        core.drain_effects(&mut effects);
        self.execute(node, effects);
        accepted
    }

    pub fn step(&mut self, node: NodeId, event: Event) {
        let Some(core) = self.nodes[node].core.as_mut() else {
            return;
        };
        core.step(event);
        let mut effects = Vec::new();
        core.drain_effects(&mut effects);
        self.execute(node, effects);
    }

    /// Advance the clock one millisecond: deliver what is due, fire timers.
    pub fn tick(&mut self) {
        self.now_ms += 1;
        for (from, to, message) in self.network.due(self.now_ms) {
            self.step(to, Event::Message { from, message });
        }
        for node in 0..self.nodes.len() {
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

    /// Execute effects in order (persist, send, apply as emitted), reporting
    /// durability back to the core as the real shell does.
    fn execute(&mut self, node: NodeId, mut pending: Vec<Effect>) {
        while !pending.is_empty() {
            let mut persisted: Option<(LogIndex, Term)> = None;
            for effect in std::mem::take(&mut pending) {
                if let Err(violation) = self.execute_one(node, effect, &mut persisted) {
                    self.fail(violation);
                }
            }
            if let Some((index, term)) = persisted {
                let core = self.nodes[node].core.as_mut().expect("live node");
                core.step(Event::LogPersisted { index, term });
                core.drain_effects(&mut pending);
            }
            if pending.is_empty() {
                self.maybe_snapshot(node, &mut pending);
            }
        }
    }

    /// Snapshot a node's state machine once it applied enough since the
    /// last one, as the shell does; the simulated disk keeps it at once.
    fn maybe_snapshot(&mut self, node: NodeId, pending: &mut Vec<Effect>) {
        let every = self.options.snapshot_every_entries;
        let sim_node = &mut self.nodes[node];
        if every == 0 || sim_node.applied_index < sim_node.snapshot_index + every {
            return;
        }
        let core = sim_node.core.as_mut().expect("live node");
        let last_index = sim_node.applied_index;
        let last_term = core.log().term_at(last_index).expect("applied entries are held");
        let snapshot =
            Snapshot { last_index, last_term, data: Arc::new(encode_snapshot(last_index, sim_node.applied_hash)) };
        if let Err(violation) = self.checker.on_snapshot(node, last_index, last_term, sim_node.applied_hash) {
            self.fail(violation);
        }
        sim_node.storage.save_snapshot(&snapshot).expect("memory storage saves");
        sim_node.snapshot_index = last_index;
        self.snapshots_taken += 1;
        core.step(Event::SnapshotSaved { snapshot });
        core.drain_effects(pending);
    }

    fn execute_one(
        &mut self,
        node: NodeId,
        effect: Effect,
        persisted: &mut Option<(LogIndex, Term)>,
    ) -> Result<(), String> {
        let sim_node = &mut self.nodes[node];
        match effect {
            Effect::PersistHardState(hard_state) => {
                sim_node.storage.save_hard_state(hard_state).map_err(|error| error.to_string())?;
            }
            Effect::PersistEntries(entries) => {
                sim_node.storage.append_entries(&entries).map_err(|error| error.to_string())?;
                self.checker.on_persist(node, &mut sim_node.prefix_hashes, &entries)?;
                let last = entries.last().expect("non-empty");
                *persisted = Some((last.index, last.term));
            }
            Effect::Send { to, message } => {
                self.network.send(&mut self.rng, self.now_ms, node, to, message);
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
            Effect::CompactLog { through_index } => {
                sim_node.storage.compact(through_index).map_err(|error| error.to_string())?;
            }
            Effect::InstallSnapshot { snapshot, log_kept } => {
                let (last_index, hash) = decode_snapshot(&snapshot);
                self.checker.on_snapshot(node, last_index, snapshot.last_term, hash)?;
                if last_index <= sim_node.applied_index {
                    return Err(format!(
                        "node {node} installs snapshot {last_index} after applying {}",
                        sim_node.applied_index
                    ));
                }
                sim_node.storage.save_snapshot(&snapshot).map_err(|error| error.to_string())?;
                if log_kept {
                    sim_node.storage.compact(last_index).map_err(|error| error.to_string())?;
                } else {
                    sim_node.storage.reset_log(last_index).map_err(|error| error.to_string())?;
                    sim_node.prefix_hashes.resize(last_index as usize, 0);
                    sim_node.prefix_hashes[last_index as usize - 1] = hash;
                }
                sim_node.applied_index = last_index;
                sim_node.applied_hash = hash;
                sim_node.snapshot_index = last_index;
                self.snapshots_installed += 1;
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
            Effect::ReadsConfirmed { .. } => {}
            Effect::ResetHeartbeatTimer => {
                sim_node.heartbeat_deadline_ms = self.now_ms + self.options.heartbeat_interval_ms;
            }
            Effect::RoleChanged { role: Role::Leader, term, .. } => {
                let core = sim_node.core.as_ref().expect("live node");
                self.checker.on_leader(node, term, core.log())?;
            }
            Effect::RoleChanged { .. } => {}
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
