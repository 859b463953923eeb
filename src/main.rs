//! `raftmq-node <config> <index>`: run one node of a raftmq cluster.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use raftmq::config::ClusterConfig;
use raftmq::node::{self, NodeSettings};

/// Run one node of a raftmq cluster: a Raft-replicated message queue served over ZeroMQ.
#[derive(Parser, Debug)]
#[command(name = "raftmq-node", version, after_help = "Log level: RUST_LOG=debug|info|warn (default info).")]
struct Arguments {
    /// Path to the cluster's config.json (the list of node addresses).
    config: PathBuf,
    /// This node's position in the config's address list, from 0.
    index: usize,
    /// Shortest randomized election timeout.
    #[arg(long, default_value_t = NodeSettings::default().election_timeout_min_ms)]
    election_timeout_min_ms: u64,
    /// Longest randomized election timeout.
    #[arg(long, default_value_t = NodeSettings::default().election_timeout_max_ms)]
    election_timeout_max_ms: u64,
    /// How often a leader sends heartbeats.
    #[arg(long, default_value_t = NodeSettings::default().heartbeat_interval_ms)]
    heartbeat_interval_ms: u64,
    /// How long a write may wait to commit before the client gets `timeout`.
    #[arg(long, default_value_t = NodeSettings::default().request_deadline_ms)]
    request_deadline_ms: u64,
    /// Largest request frame accepted; larger ones get `too_large`.
    #[arg(long, default_value_t = NodeSettings::default().max_request_bytes)]
    max_request_bytes: usize,
    /// Requests that may wait for commit at once; beyond it clients get `busy`.
    #[arg(long, default_value_t = NodeSettings::default().max_pending_requests)]
    max_pending_requests: usize,
    /// Step down as leader after an election timeout without hearing from a majority.
    #[arg(long, default_value_t = NodeSettings::default().check_quorum, action = clap::ArgAction::Set)]
    check_quorum: bool,
    /// Ask a majority for pre-votes before raising the term, so a node that was cut off cannot depose a healthy leader.
    #[arg(long, default_value_t = NodeSettings::default().pre_vote, action = clap::ArgAction::Set)]
    pre_vote: bool,
    /// Where this node keeps its log and snapshot [default: raftmq-data/<cluster id>-node<index>
    /// in the config file's directory, whatever the working directory; the cluster id is a hash
    /// of the config's addresses].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Snapshot the state machine and compact the log once this many log bytes were applied since the last snapshot.
    #[arg(long, default_value_t = NodeSettings::default().snapshot_threshold_bytes)]
    snapshot_threshold_bytes: u64,
    /// Size at which a WAL segment file is closed; compaction removes whole segments.
    #[arg(long, default_value_t = NodeSettings::default().wal_segment_bytes)]
    wal_segment_bytes: u64,
    /// fdatasync the log before acknowledging. `false` is unsafe and exists only to measure what durability costs.
    #[arg(long, default_value_t = NodeSettings::default().fsync, action = clap::ArgAction::Set)]
    fsync: bool,
    /// Testing only: every disk write fails with ENOSPC while this file exists.
    #[arg(long, hide = true)]
    inject_disk_faults: Option<PathBuf>,
    /// Testing only: drop peer traffic as this file's `in <peers>` / `out <peers>` lines say.
    #[arg(long, hide = true)]
    inject_network_faults: Option<PathBuf>,
}

fn main() -> ExitCode {
    let arguments = Arguments::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let settings = NodeSettings {
        election_timeout_min_ms: arguments.election_timeout_min_ms,
        election_timeout_max_ms: arguments.election_timeout_max_ms,
        heartbeat_interval_ms: arguments.heartbeat_interval_ms,
        request_deadline_ms: arguments.request_deadline_ms,
        max_request_bytes: arguments.max_request_bytes,
        max_pending_requests: arguments.max_pending_requests,
        check_quorum: arguments.check_quorum,
        pre_vote: arguments.pre_vote,
        data_dir: arguments.data_dir,
        snapshot_threshold_bytes: arguments.snapshot_threshold_bytes,
        wal_segment_bytes: arguments.wal_segment_bytes,
        fsync: arguments.fsync,
        inject_disk_faults: arguments.inject_disk_faults,
        inject_network_faults: arguments.inject_network_faults,
    };
    let outcome = ClusterConfig::load(&arguments.config)
        .map_err(node::NodeError::Config)
        .and_then(|config| node::run(config, arguments.index, settings));
    match outcome {
        Ok(()) => {
            // Exit at once: listener threads block in ZMQ calls and need no join.
            std::process::exit(0);
        }
        Err(error) => {
            eprintln!("raftmq-node: error: {error}");
            ExitCode::FAILURE
        }
    }
}
