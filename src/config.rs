//! `config.json`: the cluster's address list. Node i serves clients on
//! tcp://ip:port and peers on tcp://ip:internal_port.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NodeAddress {
    pub ip: String,
    pub port: u16,
    pub internal_port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ClusterConfig {
    pub addresses: Vec<NodeAddress>,
    /// The canonical directory of the file this config was loaded from
    /// (None when parsed from text): default data directories live there,
    /// so they do not depend on the working directory.
    #[serde(skip)]
    pub directory: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl ClusterConfig {
    pub fn load(path: &Path) -> Result<ClusterConfig, ConfigError> {
        let shown = path.display();
        let text = std::fs::read_to_string(path)
            .map_err(|error| ConfigError(format!("cannot read config file {shown}: {error}")))?;
        let mut config = ClusterConfig::parse(&text)
            .map_err(|ConfigError(detail)| ConfigError(format!("config file {shown}: {detail}")))?;
        let canonical = path
            .canonicalize()
            .map_err(|error| ConfigError(format!("cannot resolve the path of config file {shown}: {error}")))?;
        config.directory = canonical.parent().map(Path::to_path_buf);
        Ok(config)
    }

    pub fn parse(text: &str) -> Result<ClusterConfig, ConfigError> {
        let config: ClusterConfig =
            serde_json::from_str(text).map_err(|error| ConfigError(format!("invalid config: {error}")))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.addresses.is_empty() {
            return Err(ConfigError("invalid config: \"addresses\" is empty".into()));
        }
        let mut endpoints = std::collections::HashSet::new();
        for (index, address) in self.addresses.iter().enumerate() {
            if address.ip.trim().is_empty() {
                return Err(ConfigError(format!("invalid config: address {index} has an empty \"ip\"")));
            }
            if address.port == 0 || address.internal_port == 0 {
                return Err(ConfigError(format!("invalid config: address {index} has port 0")));
            }
            for port in [address.port, address.internal_port] {
                if !endpoints.insert((address.ip.clone(), port)) {
                    return Err(ConfigError(format!(
                        "invalid config: {}:{port} is used twice (address {index})",
                        address.ip
                    )));
                }
            }
        }
        Ok(())
    }

    pub fn node_count(&self) -> usize {
        self.addresses.len()
    }

    pub fn check_index(&self, index: usize) -> Result<(), ConfigError> {
        if index >= self.addresses.len() {
            return Err(ConfigError(format!(
                "node index {index} is out of range: the config lists {} node(s), so valid indices are 0..={}",
                self.addresses.len(),
                self.addresses.len() - 1
            )));
        }
        Ok(())
    }

    /// A short fingerprint of the address list: two configs with the same
    /// nodes share it, and a config with new ports (as every course test
    /// writes) gets a new one. FNV-1a, 64 bits. Peer frames carry it, so a
    /// node of another cluster on reused ports is not heard.
    pub fn cluster_hash(&self) -> u64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for address in &self.addresses {
            let text = format!("{}:{}:{};", address.ip, address.port, address.internal_port);
            for byte in text.bytes() {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
        }
        hash
    }

    /// `cluster_hash` in hex: the name of the cluster's data directories.
    pub fn cluster_id(&self) -> String {
        format!("{:016x}", self.cluster_hash())
    }

    /// Node `index`'s data directory unless `--data-dir` names one:
    /// `raftmq-data/<cluster id>-node<index>` beside the config file, so a
    /// node started from any working directory finds its term, vote and
    /// log. (Under the working directory only for a config parsed from text.)
    pub fn default_data_directory(&self, index: usize) -> PathBuf {
        let base = self.directory.clone().unwrap_or_default();
        base.join("raftmq-data").join(format!("{}-node{index}", self.cluster_id()))
    }

    pub fn client_endpoint(&self, index: usize) -> String {
        let address = &self.addresses[index];
        format!("tcp://{}:{}", address.ip, address.port)
    }

    pub fn peer_endpoint(&self, index: usize) -> String {
        let address = &self.addresses[index];
        format!("tcp://{}:{}", address.ip, address.internal_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_course_format() {
        let config = ClusterConfig::parse(
            r#"{"addresses":[{"ip":"127.0.0.1","port":5550,"internal_port":6550},
                             {"ip":"127.0.0.1","port":5551,"internal_port":6551}]}"#,
        )
        .unwrap();
        assert_eq!(config.node_count(), 2);
        assert_eq!(config.client_endpoint(1), "tcp://127.0.0.1:5551");
        assert_eq!(config.peer_endpoint(0), "tcp://127.0.0.1:6550");
        assert!(config.check_index(1).is_ok());
        assert!(config.check_index(2).unwrap_err().0.contains("out of range"));
    }

    #[test]
    fn bad_configs_name_their_problem() {
        let cases = [
            ("{", "invalid config"),
            ("{}", "missing field `addresses`"),
            (r#"{"addresses":[]}"#, "empty"),
            (r#"{"addresses":[{"ip":"127.0.0.1","port":1}]}"#, "missing field `internal_port`"),
            (r#"{"addresses":[{"ip":"127.0.0.1","port":"x","internal_port":2}]}"#, "invalid type"),
            (r#"{"addresses":[{"ip":"127.0.0.1","port":70000,"internal_port":2}]}"#, "invalid value"),
            (r#"{"addresses":[{"ip":"127.0.0.1","port":5,"internal_port":5}]}"#, "used twice"),
            (r#"{"addresses":[{"ip":"","port":5,"internal_port":6}]}"#, "empty \"ip\""),
        ];
        for (text, expected) in cases {
            let error = ClusterConfig::parse(text).unwrap_err();
            assert!(error.0.contains(expected), "{text}: {}", error.0);
        }
    }

    #[test]
    fn the_cluster_id_is_fnv1a_of_the_addresses() {
        // The value tests/python/peer_frame.py computes for the repository's config.json.
        let config = ClusterConfig::parse(
            r#"{"addresses":[{"ip":"127.0.0.1","port":5550,"internal_port":6550},
                             {"ip":"127.0.0.1","port":5551,"internal_port":6551},
                             {"ip":"127.0.0.1","port":5552,"internal_port":6552}]}"#,
        )
        .unwrap();
        assert_eq!(config.cluster_hash(), 0x4295_e573_6e22_1cea);
        assert_eq!(config.cluster_id(), "4295e5736e221cea");
    }

    #[test]
    fn the_default_data_directory_is_beside_the_config_file_whatever_the_path_given() {
        let directory = std::env::temp_dir().join(format!("raftmq-config-test-{}", std::process::id()));
        std::fs::create_dir_all(directory.join("sub")).unwrap();
        let file = directory.join("cluster.json");
        std::fs::write(&file, r#"{"addresses":[{"ip":"127.0.0.1","port":5550,"internal_port":6550}]}"#).unwrap();
        let roundabout = directory.join("sub").join("..").join(".").join("cluster.json");
        let config = ClusterConfig::load(&roundabout).unwrap();
        let canonical = directory.canonicalize().unwrap();
        let expected = canonical.join("raftmq-data").join(format!("{}-node2", config.cluster_id()));
        assert_eq!(config.default_data_directory(2), expected);
        assert!(expected.is_absolute());
        std::fs::remove_dir_all(&directory).unwrap();
    }

    #[test]
    fn missing_file_names_the_path() {
        let error = ClusterConfig::load(Path::new("/nonexistent/raftmq.json")).unwrap_err();
        assert!(error.0.contains("/nonexistent/raftmq.json"), "{}", error.0);
    }
}
