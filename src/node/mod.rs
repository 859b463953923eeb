//! The node process: the thin shell of threads, sockets and timers around
//! the consensus core. Listener threads decode and forward; the event loop
//! thread owns the core and everything it drives.

mod client_listener;
mod event_loop;
mod held_sends;
mod input;
mod listener;
mod network_faults;
pub mod peer_codec;
mod peer_listener;
mod peer_senders;
mod pending;
mod reads;
mod snapshotter;
mod timer;

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Sender};
use log::info;

use crate::config::{ClusterConfig, ConfigError};
use crate::protocol::{ErrorCode, ReplyBody, StatusReport};
use crate::queue::QueueStateMachine;
use crate::raft::CoreConfig;
use crate::storage::{FaultInjectingStorage, LogManager, Storage, StorageError, WalOptions, WalStorage};
use client_listener::ClientListener;
use event_loop::{EventLoop, Wiring};
use input::Input;
use listener::start_listener;
use network_faults::NetworkFaults;
use peer_listener::PeerListener;
use peer_senders::PeerSenders;
use snapshotter::Snapshotter;

/// Tunables, with defaults chosen for a loopback or LAN cluster.
#[derive(Debug, Clone)]
pub struct NodeSettings {
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    pub heartbeat_interval_ms: u64,
    pub request_deadline_ms: u64,
    pub max_request_bytes: usize,
    /// Client requests allowed to wait for commit at once before `busy`.
    pub max_pending_requests: usize,
    /// A leader out of touch with a majority for an election timeout steps down.
    pub check_quorum: bool,
    /// Ask for pre-votes before starting an election.
    pub pre_vote: bool,
    /// Where this node keeps its log; None derives one from the config.
    pub data_dir: Option<PathBuf>,
    /// Log bytes applied since the last snapshot that trigger a new one.
    pub snapshot_threshold_bytes: u64,
    pub wal_segment_bytes: u64,
    /// fdatasync before acknowledging; off only to measure what it costs.
    pub fsync: bool,
    /// Test switch: storage fails while this file exists.
    pub inject_disk_faults: Option<PathBuf>,
    /// Test switch: peer traffic is dropped as this file's rules say.
    pub inject_network_faults: Option<PathBuf>,
}

impl Default for NodeSettings {
    fn default() -> NodeSettings {
        NodeSettings {
            election_timeout_min_ms: 150,
            election_timeout_max_ms: 300,
            heartbeat_interval_ms: 50,
            request_deadline_ms: 500,
            max_request_bytes: 1 << 20,
            max_pending_requests: 100_000,
            check_quorum: true,
            pre_vote: true,
            data_dir: None,
            snapshot_threshold_bytes: 32 << 20,
            wal_segment_bytes: 8 << 20,
            fsync: true,
            inject_disk_faults: None,
            inject_network_faults: None,
        }
    }
}

impl NodeSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let problem = if self.election_timeout_min_ms == 0 {
            Some("the election timeout must be at least 1 ms".to_string())
        } else if self.election_timeout_min_ms > self.election_timeout_max_ms {
            Some(format!(
                "the election timeout range {}..{} ms is empty",
                self.election_timeout_min_ms, self.election_timeout_max_ms
            ))
        } else if self.heartbeat_interval_ms == 0 || self.heartbeat_interval_ms >= self.election_timeout_min_ms {
            Some(format!(
                "the heartbeat interval ({} ms) must be above 0 and below the minimum election timeout ({} ms)",
                self.heartbeat_interval_ms, self.election_timeout_min_ms
            ))
        } else if self.request_deadline_ms == 0 {
            Some("the request deadline must be at least 1 ms".to_string())
        } else if self.max_request_bytes == 0 || self.max_pending_requests == 0 {
            Some("the request size and pending-request limits must be above 0".to_string())
        } else if self.snapshot_threshold_bytes == 0 || self.wal_segment_bytes < 4096 {
            Some("the snapshot threshold must be above 0 and WAL segments at least 4096 bytes".to_string())
        } else {
            None
        };
        problem.map_or(Ok(()), |detail| Err(ConfigError(format!("invalid option: {detail}"))))
    }

    pub fn request_deadline(&self) -> Duration {
        Duration::from_millis(self.request_deadline_ms)
    }
}

#[derive(Debug)]
pub enum NodeError {
    Config(ConfigError),
    Startup(String),
    Storage(StorageError),
}

impl fmt::Display for NodeError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeError::Config(error) => write!(formatter, "{error}"),
            NodeError::Startup(detail) => write!(formatter, "{detail}"),
            NodeError::Storage(error) => write!(formatter, "{error}"),
        }
    }
}

impl std::error::Error for NodeError {}

/// Start node `index` of `config` and serve until SIGTERM or SIGINT.
pub fn run(config: ClusterConfig, index: usize, settings: NodeSettings) -> Result<(), NodeError> {
    settings.validate().map_err(NodeError::Config)?;
    config.check_index(index).map_err(NodeError::Config)?;
    let context = zmq::Context::new();
    let (inputs_sender, inputs) = bounded::<Input>(200_000);
    let started = Instant::now();
    let directory = data_directory(&config, index, &settings);
    let (mut storage, reopen) = open_storage(&config, index, &directory, &settings)?;
    let recovered = storage.load().map_err(NodeError::Storage)?;
    let queue = match &recovered.snapshot {
        Some(snapshot) => QueueStateMachine::decode_snapshot(&snapshot.data)
            .map_err(|problem| NodeError::Storage(StorageError::UnreadableSnapshot { problem: problem.to_string() }))?,
        None => QueueStateMachine::new(),
    };
    info!(
        "recovered term {}, snapshot through index {}, {} log entries in {} ms",
        recovered.hard_state.current_term,
        recovered.snapshot.as_ref().map_or(0, |snapshot| snapshot.last_index),
        recovered.entries.len(),
        started.elapsed().as_millis()
    );
    let status = Arc::new(Mutex::new(StatusReport::starting()));
    let replies_endpoint = format!("inproc://raftmq-replies-{index}");
    let client_listener = ClientListener {
        endpoint: config.client_endpoint(index),
        replies_endpoint: replies_endpoint.clone(),
        inputs: inputs_sender.clone(),
        status: status.clone(),
        max_request_bytes: settings.max_request_bytes,
    };
    start_listener(client_listener, context.clone()).map_err(NodeError::Startup)?;
    let peer_listener = PeerListener {
        endpoint: config.peer_endpoint(index),
        node_count: config.node_count(),
        inputs: inputs_sender.clone(),
        faults_file: settings.inject_network_faults.clone(),
    };
    start_listener(peer_listener, context.clone()).map_err(NodeError::Startup)?;
    let disk_reports = inputs_sender.clone();
    let inputs_sender_for_snapshots = inputs_sender.clone();
    let report = Box::new(move |report| {
        let _ = disk_reports.send(Input::Disk(report));
    });
    let log_manager = LogManager::spawn(storage, reopen, report).map_err(NodeError::Startup)?;
    forward_signals(inputs_sender)?;

    let mut core_config = CoreConfig::new(index, config.node_count());
    core_config.check_quorum = settings.check_quorum;
    core_config.pre_vote = settings.pre_vote;
    let faults = NetworkFaults::new(settings.inject_network_faults.clone(), config.node_count());
    let peers = PeerSenders::connect(&context, &config, index, faults).map_err(NodeError::Startup)?;
    let replies = context.socket(zmq::PUSH).map_err(|e| NodeError::Startup(e.to_string()))?;
    replies.set_sndhwm(0).map_err(|e| NodeError::Startup(e.to_string()))?;
    replies.connect(&replies_endpoint).map_err(|e| NodeError::Startup(e.to_string()))?;
    let client_endpoints = (0..config.node_count()).map(|node| config.client_endpoint(node)).collect();
    info!(
        "node {index} of {}: clients on {}, peers on {}",
        config.node_count(),
        config.client_endpoint(index),
        config.peer_endpoint(index)
    );
    let snapshotter = Snapshotter::spawn(directory, inputs_sender_for_snapshots).map_err(NodeError::Startup)?;
    let wiring = Wiring { peers, replies, inputs, status, snapshotter, client_endpoints };
    let event_loop = EventLoop::new(core_config, recovered, queue, log_manager, wiring, settings);
    event_loop.run();
    info!("node {index} stopped");
    Ok(())
}

/// The answer to a request that reaches a node on its way out: it was not
/// applied, and no leader is named (the client should ask the others).
/// Given by the event loop while it winds down and by the client listener
/// once the loop is gone.
fn shutting_down_reply() -> ReplyBody {
    ReplyBody::redirect(ErrorCode::NotLeader, None, "the node is shutting down; the request was not applied")
}

/// The data directory: `--data-dir`, or `raftmq-data/<cluster id>-node<index>`
/// under the working directory, so a restarted node of the same config finds
/// its state and a config with new addresses starts empty.
pub fn data_directory(config: &ClusterConfig, index: usize, settings: &NodeSettings) -> PathBuf {
    settings
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("raftmq-data").join(format!("{}-node{index}", config.cluster_id())))
}

type OpenedStorage = (Box<dyn Storage>, crate::storage::Reopen);

/// Open the WAL, and a way to open it again after a storage failure.
fn open_storage(
    config: &ClusterConfig,
    index: usize,
    directory: &std::path::Path,
    settings: &NodeSettings,
) -> Result<OpenedStorage, NodeError> {
    info!("data directory {}", directory.display());
    let directory = directory.to_path_buf();
    let options = WalOptions {
        segment_bytes: settings.wal_segment_bytes,
        identity: Some(format!("raftmq cluster {} node {index}", config.cluster_id())),
        fsync: settings.fsync,
    };
    let faults = settings.inject_disk_faults.clone();
    let mut reopen: crate::storage::Reopen = Box::new(move || {
        let wal: Box<dyn Storage> = Box::new(WalStorage::open(&directory, options.clone())?);
        Ok(match &faults {
            Some(flag) => Box::new(FaultInjectingStorage::new(wal, flag.clone())),
            None => wal,
        })
    });
    let storage = reopen().map_err(NodeError::Storage)?;
    Ok((storage, reopen))
}

/// SIGTERM and SIGINT become a shutdown input for the event loop.
fn forward_signals(inputs: Sender<Input>) -> Result<(), NodeError> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
        .map_err(|e| NodeError::Startup(format!("cannot install signal handlers: {e}")))?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                info!("received signal {signal}; shutting down");
                let _ = inputs.send(Input::Shutdown);
            }
        })
        .map_err(|e| NodeError::Startup(format!("cannot start the signal thread: {e}")))?;
    Ok(())
}
