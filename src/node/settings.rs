//! The node's options, declared once: these attributes are the command
//! line (`raftmq-node --help`), the defaults, and the settings `run` takes.
//! Durations are `Duration`s, given in milliseconds on the command line.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, FromArgMatches};

use crate::config::ConfigError;

/// Tunables, with defaults chosen for a loopback or LAN cluster.
#[derive(Debug, Clone, Args)]
pub struct NodeSettings {
    /// Shortest randomized election timeout, in ms.
    #[arg(long = "election-timeout-min-ms", value_name = "MS", value_parser = milliseconds, default_value = "150")]
    pub election_timeout_min: Duration,
    /// Longest randomized election timeout, in ms.
    #[arg(long = "election-timeout-max-ms", value_name = "MS", value_parser = milliseconds, default_value = "300")]
    pub election_timeout_max: Duration,
    /// How often a leader sends heartbeats, in ms.
    #[arg(long = "heartbeat-interval-ms", value_name = "MS", value_parser = milliseconds, default_value = "50")]
    pub heartbeat_interval: Duration,
    /// How long a write may wait to commit (or a read to be confirmed) before the client gets `timeout`, in ms.
    #[arg(long = "request-deadline-ms", value_name = "MS", value_parser = milliseconds, default_value = "500")]
    pub request_deadline: Duration,
    /// Largest request frame accepted; larger ones get `too_large`.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_request_bytes: usize,
    /// Writes that may wait for commit at once; beyond it clients get `busy`.
    #[arg(long, default_value_t = 100_000)]
    pub max_pending_requests: usize,
    /// Step down as leader after an election timeout without hearing from a majority.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub check_quorum: bool,
    /// Ask a majority for pre-votes before raising the term, so a node that was cut off cannot depose a healthy leader.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub pre_vote: bool,
    /// Where this node keeps its log and snapshot [default: raftmq-data/<cluster id>-node<index>
    /// in the config file's directory, whatever the working directory; the cluster id is a hash
    /// of the config's addresses].
    // The doc is the --help text, where `<cluster id>` reads as a placeholder;
    // rustdoc would take it for an HTML tag.
    #[allow(rustdoc::invalid_html_tags)]
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Snapshot the state machine and compact the log once this many log bytes (and at least
    /// the last snapshot's size) were applied since the last snapshot.
    #[arg(long, default_value_t = 32 << 20)]
    pub snapshot_threshold_bytes: u64,
    /// Size at which a WAL segment file is closed; compaction removes whole segments.
    #[arg(long, default_value_t = 8 << 20)]
    pub wal_segment_bytes: u64,
    /// fdatasync the log before acknowledging. `false` is unsafe and exists only to measure what durability costs.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub fsync: bool,
    /// The file holding this node's CURVE secret key (Z85, one line), as `raftmq-keygen` writes it.
    /// Required when config.json gives every node a `public_key`.
    #[arg(long, value_name = "FILE")]
    pub peer_key_file: Option<PathBuf>,
    /// Serve peers without authentication on a non-loopback address (config.json without
    /// `public_key`s). Anyone who can reach the peer port can then speak for a member.
    #[arg(long)]
    pub insecure_peers: bool,
    /// Testing only: every disk write fails with ENOSPC while this file exists.
    #[arg(long, hide = true)]
    pub inject_disk_faults: Option<PathBuf>,
    /// Testing only: drop peer traffic as this file's `in <peers>` / `out <peers>` lines say.
    #[arg(long, hide = true)]
    pub inject_network_faults: Option<PathBuf>,
}

impl Default for NodeSettings {
    /// The defaults the attributes above declare.
    fn default() -> NodeSettings {
        let command = NodeSettings::augment_args(clap::Command::new("defaults"));
        let matches = command.get_matches_from(["defaults"]);
        NodeSettings::from_arg_matches(&matches).expect("the declared defaults parse")
    }
}

/// A count of milliseconds on the command line.
fn milliseconds(text: &str) -> Result<Duration, String> {
    text.parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| format!("`{text}` is not a whole number of milliseconds"))
}

impl NodeSettings {
    /// Refuse settings the node cannot run with, naming the problem.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let milliseconds = |duration: Duration| duration.as_millis();
        let problem = if self.election_timeout_min.is_zero() {
            Some("the election timeout must be at least 1 ms".to_string())
        } else if self.election_timeout_min > self.election_timeout_max {
            Some(format!(
                "the election timeout range {}..{} ms is empty",
                milliseconds(self.election_timeout_min),
                milliseconds(self.election_timeout_max)
            ))
        } else if self.heartbeat_interval.is_zero() || self.heartbeat_interval >= self.election_timeout_min {
            Some(format!(
                "the heartbeat interval ({} ms) must be above 0 and below the minimum election timeout ({} ms)",
                milliseconds(self.heartbeat_interval),
                milliseconds(self.election_timeout_min)
            ))
        } else if self.request_deadline.is_zero() {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_come_from_the_declarations_and_validate() {
        let settings = NodeSettings::default();
        assert_eq!(settings.election_timeout_min, Duration::from_millis(150));
        assert_eq!(settings.heartbeat_interval, Duration::from_millis(50));
        assert_eq!(settings.max_pending_requests, 100_000);
        assert!(settings.fsync && settings.pre_vote && settings.check_quorum);
        assert!(settings.validate().is_ok());
    }

    #[test]
    fn a_heartbeat_as_long_as_the_election_timeout_is_refused() {
        let settings = NodeSettings { heartbeat_interval: Duration::from_millis(150), ..NodeSettings::default() };
        let error = settings.validate().expect_err("refused");
        assert!(error.0.contains("heartbeat interval (150 ms)"), "{}", error.0);
        assert!(milliseconds("12x").is_err());
    }
}
