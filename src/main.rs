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
    /// The node's options.
    #[command(flatten)]
    settings: NodeSettings,
}

fn main() -> ExitCode {
    let arguments = Arguments::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp_millis()
        .init();
    node::address_space::keep_steady();
    let settings = arguments.settings;
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
            ExitCode::from(error.exit_code())
        }
    }
}
