//! The arguments both load tools take with the same meaning and default.
//! The rest (clients, window, duration) stay with each tool: their defaults
//! differ, and a client is a DEALER socket in raftmq-bench but a logical
//! client spread over the sockets in raftmq-flood.

use std::path::PathBuf;

use clap::Args;

#[derive(Args, Debug)]
pub struct TargetArguments {
    /// The cluster's config.json; the leader is found through `status`.
    #[arg(long, default_value = "config.json")]
    pub config: PathBuf,
    /// Size of each put's message.
    #[arg(long, default_value_t = 100)]
    pub message_bytes: usize,
}
