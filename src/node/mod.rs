//! The node process: the I/O around the shell (`crate::shell`). Listener
//! threads decode and forward; the event loop thread drives the shell and
//! executes its outputs; the LogManager and snapshot threads do the disk.

pub mod address_space;
mod client_listener;
mod connection_cap;
mod data_directory;
mod entry_garbage;
mod event_loop;
mod file_limit;
mod listener;
mod network_faults;
pub mod peer_codec;
mod peer_listener;
mod peer_security;
mod peer_senders;
mod releaser;
mod settings;
mod snapshotter;
mod thread_priority;
mod turn_timing;
mod zap_handler;

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Sender};
use log::{info, warn};

use crate::config::{ClusterConfig, ConfigError};
use crate::protocol::StatusReport;
use crate::queue::QueueStateMachine;
use crate::raft::CoreConfig;
use crate::shell::{Input, Shell, ShellSettings, TimerSettings};
use crate::storage::{
    FaultInjectingStorage, LogManager, RecoveredState, Storage, StorageError, WalOptions, WalStorage,
};
use client_listener::ClientListener;
use data_directory::data_directory;
use data_directory::FailedStartCleanup;
use event_loop::{EventLoop, Wiring};
use listener::start_listener;
use network_faults::NetworkFaults;
use peer_listener::{Admission, PeerListener};
use peer_security::{peer_security, PeerSecurity};
use peer_senders::PeerSenders;
pub use settings::NodeSettings;
use snapshotter::Snapshotter;
use zap_handler::ZapHandler;

/// Why a node could not start. Once it serves, [`run`] returns only at
/// shutdown: a storage failure then is recovered from (rule 7 in the crate
/// docs), not returned. The binary prints the error and exits with
/// [`NodeError::exit_code`].
#[derive(Debug)]
pub enum NodeError {
    /// The config or the settings are invalid (bad node index, bad option, bad
    /// key file): nothing was started.
    Config(ConfigError),
    /// Starting failed outside storage: a port could not be bound, or a
    /// thread, socket or signal handler could not be set up. The text says
    /// which.
    Startup(String),
    /// The data directory could not be opened or recovered, or its
    /// snapshot cannot be restored; see [`StorageError`].
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

impl NodeError {
    /// The process's exit status: `DATA_EXIT_CODE` when the data directory's
    /// content is refused (docs/storage.md), else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            NodeError::Storage(error) if error.is_damaged_data() => crate::storage::DATA_EXIT_CODE,
            _ => 1,
        }
    }
}

/// Start node `index` of `config` and serve until SIGTERM or SIGINT.
pub fn run(config: ClusterConfig, index: usize, settings: NodeSettings) -> Result<(), NodeError> {
    settings.validate().map_err(NodeError::Config)?;
    config.check_index(index).map_err(NodeError::Config)?;
    let security = peer_security(&config, index, settings.peer_key_file.as_deref(), settings.insecure_peers)
        .map_err(NodeError::Config)?;
    let max_client_connections = client_connection_cap(file_limit::raise_open_file_limit(), config.node_count());
    let context = zmq::Context::new();
    // Control-plane inputs never wait behind clients: they have a channel
    // of their own, read first every turn. Clients get a bounded queue; a
    // full one is answered `busy` by the listener at once.
    let (control_sender, control) = unbounded::<Input>();
    let (clients_sender, clients) = bounded::<Input>(CLIENT_QUEUE_CAPACITY);
    let started = Instant::now();
    let directory = data_directory(&config, index, &settings);
    let mut cleanup = FailedStartCleanup::note(&directory);
    let (storage, reopen, recovered, queue) = match recover(&config, index, &directory, &settings) {
        // A node of one or two has no others enough to learn from: it refuses.
        Err(NodeError::Storage(error)) if crate::storage::is_repairable(&error) && config.node_count() >= 3 => {
            repair_from_cluster(&directory, &error, index)?;
            recover(&config, index, &directory, &settings)?
        }
        outcome => outcome?,
    };
    cleanup.storage_opened();
    let disk_bytes = storage.disk_bytes();
    info!(
        "recovered term {}, snapshot through index {}, {} log entries in {} ms",
        recovered.hard_state.current_term,
        recovered.snapshot.as_ref().map_or(0, |snapshot| snapshot.last_index),
        recovered.entries.len(),
        started.elapsed().as_millis()
    );
    let status = Arc::new(Mutex::new(StatusReport::starting()));
    let replies_endpoint = format!("inproc://raftmq-replies-{index}");
    let (reply_batches, reply_batches_received) = crossbeam_channel::unbounded();
    let client_listener = ClientListener {
        endpoint: config.client_bind_endpoint(index),
        replies_endpoint: replies_endpoint.clone(),
        reply_batches: reply_batches_received,
        inputs: clients_sender,
        status: status.clone(),
        max_request_bytes: settings.max_request_bytes,
        max_connections: max_client_connections,
        curve: client_curve(&config, &security),
    };
    if let PeerSecurity::Curve(keys) = &security {
        // Before either socket it guards is bound.
        let clients = config.client_keys();
        start_listener(ZapHandler { keys: keys.clone(), clients }, context.clone()).map_err(NodeError::Startup)?;
        info!("peers authenticate with CURVE; {} member keys admitted", keys.members.len());
        if !config.clients.is_empty() {
            info!("clients authenticate with CURVE; {} client keys admitted", config.clients.len());
        }
    }
    start_listener(client_listener, context.clone()).map_err(NodeError::Startup)?;
    let peer_listener = PeerListener {
        endpoint: config.peer_endpoint(index),
        admission: Admission { cluster_id: config.cluster_hash(), me: index, node_count: config.node_count() },
        security: security.clone(),
        inputs: control_sender.clone(),
        faults_file: settings.inject_network_faults.clone(),
    };
    start_listener(peer_listener, context.clone()).map_err(NodeError::Startup)?;
    let disk_reports = control_sender.clone();
    let report = Box::new(move |report| {
        let _ = disk_reports.send(Input::Disk(report));
    });
    let log_manager = LogManager::spawn(storage, reopen, report).map_err(NodeError::Startup)?;
    let releaser = releaser::spawn().map_err(NodeError::Startup)?;
    let snapshotter =
        Snapshotter::spawn(directory, control_sender.clone(), releaser.clone()).map_err(NodeError::Startup)?;
    forward_signals(control_sender)?;

    let faults = NetworkFaults::new(settings.inject_network_faults.clone(), config.node_count());
    let peers = PeerSenders::connect(&context, &config, index, &security, faults).map_err(NodeError::Startup)?;
    let replies_doorbell = context.socket(zmq::PUSH).map_err(|e| NodeError::Startup(e.to_string()))?;
    replies_doorbell.set_sndhwm(0).map_err(|e| NodeError::Startup(e.to_string()))?;
    replies_doorbell.connect(&replies_endpoint).map_err(|e| NodeError::Startup(e.to_string()))?;
    info!(
        "node {index} of {}: clients on {}, peers on {}",
        config.node_count(),
        config.client_endpoint(index),
        config.peer_endpoint(index)
    );
    let shell_settings = shell_settings(&config, index, &settings);
    let seed = rand::random::<u64>();
    let shell = Shell::new(shell_settings, recovered, queue, disk_bytes, seed, started.elapsed());
    let wiring =
        Wiring { peers, replies_doorbell, reply_batches, control, clients, status, snapshotter, log_manager, releaser };
    let event_loop = EventLoop::new(shell, wiring, started);
    cleanup.node_is_up();
    event_loop.run();
    info!("node {index} stopped");
    Ok(())
}

/// The client port's CURVE keys: the node's own, when config.json lists
/// `clients` (which it allows only with node keys).
fn client_curve(config: &ClusterConfig, security: &PeerSecurity) -> Option<peer_security::CurveKeys> {
    match security {
        PeerSecurity::Curve(keys) if !config.clients.is_empty() => Some(keys.clone()),
        _ => None,
    }
}

/// Client connections at most: the open-file limit less what the node
/// needs besides (connection_cap.rs says why a cap).
fn client_connection_cap(open_file_limit: Option<u64>, node_count: usize) -> usize {
    let reserved = connection_cap::reserved_descriptors(node_count);
    let cap = match open_file_limit {
        Some(limit) => limit.saturating_sub(reserved).max(MIN_CLIENT_CONNECTIONS),
        None => DEFAULT_CLIENT_CONNECTIONS,
    };
    let cap = usize::try_from(cap).unwrap_or(usize::MAX);
    info!("at most {cap} client connections at once");
    cap
}

const MIN_CLIENT_CONNECTIONS: u64 = 16;
const DEFAULT_CLIENT_CONNECTIONS: u64 = 1024;

/// Client requests queued for the event loop at most; beyond it, `busy`.
/// Enough for several turns of work, few enough that a queued request is
/// still answered well within its deadline.
const CLIENT_QUEUE_CAPACITY: usize = 4 * event_loop::MAX_CLIENT_INPUTS_PER_TURN;

/// On shutdown, how long an exiting node keeps answering what still
/// arrives, so the client listener puts the last replies on the wire.
const EXIT_LINGER: Duration = Duration::from_millis(200);

/// The shell's settings from the node's options.
fn shell_settings(config: &ClusterConfig, index: usize, settings: &NodeSettings) -> ShellSettings {
    let mut core = CoreConfig::new(index, config.node_count());
    core.check_quorum = settings.check_quorum;
    core.pre_vote = settings.pre_vote;
    let heartbeat_interval = settings.heartbeat_interval;
    ShellSettings {
        core,
        timers: TimerSettings {
            election_timeout_min: settings.election_timeout_min,
            election_timeout_max: settings.election_timeout_max,
            heartbeat_interval,
            // Overdue by two heartbeats: this process was not running.
            stall_tolerance: heartbeat_interval * 2,
        },
        request_deadline: settings.request_deadline,
        max_pending_requests: settings.max_pending_requests,
        snapshot_threshold_bytes: settings.snapshot_threshold_bytes,
        client_endpoints: (0..config.node_count()).map(|node| config.client_endpoint(node)).collect(),
        exit_linger: EXIT_LINGER,
    }
}

type OpenedStorage = (Box<dyn Storage>, crate::storage::Reopen);
type Recovered = (Box<dyn Storage>, crate::storage::Reopen, RecoveredState, QueueStateMachine);

/// Open the data directory and read back the node's state and queue.
fn recover(
    config: &ClusterConfig,
    index: usize,
    directory: &std::path::Path,
    settings: &NodeSettings,
) -> Result<Recovered, NodeError> {
    let (mut storage, reopen) = open_storage(config, index, directory, settings)?;
    let recovered = storage.load().map_err(NodeError::Storage)?;
    crate::storage::check_terms(directory, &recovered).map_err(NodeError::Storage)?;
    let queue = match &recovered.snapshot {
        Some(snapshot) => QueueStateMachine::decode_snapshot(&snapshot.data)
            .map_err(|problem| NodeError::Storage(StorageError::UnreadableSnapshot { problem: problem.to_string() }))?,
        None => QueueStateMachine::new(),
    };
    Ok((storage, reopen, recovered, queue))
}

fn repair_from_cluster(directory: &std::path::Path, error: &StorageError, index: usize) -> Result<(), NodeError> {
    warn!("node {index}: {error}");
    let now_seconds =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs());
    let set_aside =
        crate::storage::set_aside_for_repair(directory, error, index, now_seconds).map_err(NodeError::Storage)?;
    warn!(
        "node {index}: starting anyway, to repair from the cluster: moved {} to {}; starting in term {} ({}), \
         without voting until it has caught up",
        if set_aside.moved.is_empty() { "nothing".to_string() } else { set_aside.moved.join(", ") },
        set_aside.damaged_directory.display(),
        set_aside.hard_state.current_term,
        set_aside.hard_state.repair.as_str()
    );
    Ok(())
}

/// Open the WAL, and a way to open it again after a storage failure.
fn open_storage(
    config: &ClusterConfig,
    index: usize,
    directory: &std::path::Path,
    settings: &NodeSettings,
) -> Result<OpenedStorage, NodeError> {
    let absolute = std::path::absolute(directory).unwrap_or_else(|_| directory.to_path_buf());
    info!("data directory {}", absolute.display());
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
