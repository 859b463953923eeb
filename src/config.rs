//! `config.json`: the cluster's address list. Node i serves clients on
//! tcp://ip:port and peers on tcp://ip:internal_port. An entry may carry
//! `public_key`, the node's CURVE public key (Z85, 40 characters): when
//! every entry has one, peer traffic is authenticated and encrypted.

use std::fmt;
use std::net::{IpAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Characters of a CURVE key in Z85 (32 bytes).
pub(crate) const Z85_KEY_CHARACTERS: usize = 40;

/// One member of the cluster: where it serves clients and peers. Its
/// index in [`ClusterConfig::addresses`] is its node id.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NodeAddress {
    /// An IPv4 address, or a host name resolved once when the config loads.
    pub ip: String,
    /// The client port: clients connect to tcp://ip:port.
    pub port: u16,
    /// The peer port: other members connect to tcp://ip:internal_port.
    pub internal_port: u16,
    /// The node's CURVE public key in Z85, when peers authenticate.
    #[serde(default)]
    pub public_key: Option<String>,
    /// `ip` resolved; what sockets bind and connect to.
    #[serde(skip)]
    pub resolved: Option<IpAddr>,
}

impl NodeAddress {
    /// The address sockets use (`ip` resolved when the config was parsed).
    pub fn address(&self) -> IpAddr {
        self.resolved.expect("a parsed config has resolved every address")
    }
}

/// A client allowed on the client port when it requires CURVE.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ClientKey {
    /// The client's CURVE public key in Z85.
    pub public_key: String,
    /// Whether it may make admin operations (`transfer_leader`).
    #[serde(default)]
    pub admin: bool,
}

/// The parsed and validated `config.json`. [`ClusterConfig::load`] and
/// [`ClusterConfig::parse`] return one only if it holds at least one
/// address, no port 0, no endpoint used twice, CURVE keys for every node or
/// for none (each valid Z85 and distinct), and client keys only when the
/// nodes have keys.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ClusterConfig {
    /// The members, indexed by node id; never empty once parsed.
    pub addresses: Vec<NodeAddress>,
    /// When given, the client port requires CURVE and admits these keys
    /// only (docs/security.md); admin operations need an admin key.
    #[serde(default)]
    pub clients: Vec<ClientKey>,
    /// The canonical directory of the file this config was loaded from
    /// (None when parsed from text): default data directories live there,
    /// so they do not depend on the working directory.
    #[serde(skip)]
    pub directory: Option<PathBuf>,
}

/// Why a config could not be loaded, or a node index is not in it: one
/// line of text for the operator, naming the file, field or entry at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl ClusterConfig {
    /// Reads, parses and validates the config file at `path`, and records its
    /// directory in [`ClusterConfig::directory`].
    /// Returns a [`ConfigError`] if the file cannot be read or resolved, or
    /// for anything [`ClusterConfig::parse`] rejects.
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

    /// Parses and validates config text (JSON); resolves every `ip` once.
    /// Returns a [`ConfigError`] for invalid JSON, an empty address list, an
    /// empty `ip` or port 0, a host name that does not resolve, an endpoint
    /// used twice, or bad or partial CURVE keys. [`ClusterConfig::directory`]
    /// stays `None`.
    pub fn parse(text: &str) -> Result<ClusterConfig, ConfigError> {
        let mut config: ClusterConfig =
            serde_json::from_str(text).map_err(|error| ConfigError(format!("invalid config: {error}")))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&mut self) -> Result<(), ConfigError> {
        if self.addresses.is_empty() {
            return Err(ConfigError("invalid config: \"addresses\" is empty".into()));
        }
        let mut endpoints = std::collections::HashSet::new();
        for (index, address) in self.addresses.iter_mut().enumerate() {
            if address.ip.trim().is_empty() {
                return Err(ConfigError(format!("invalid config: address {index} has an empty \"ip\"")));
            }
            if address.port == 0 || address.internal_port == 0 {
                return Err(ConfigError(format!("invalid config: address {index} has port 0")));
            }
            let resolved = resolve(&address.ip, address.port)
                .map_err(|detail| ConfigError(format!("invalid config: address {index}: {detail}")))?;
            address.resolved = Some(resolved);
            // Compared as addresses, so "localhost" and "127.0.0.1" clash.
            for port in [address.port, address.internal_port] {
                if !endpoints.insert((resolved, port)) {
                    return Err(ConfigError(format!(
                        "invalid config: {resolved}:{port} is used twice (address {index}, \"ip\" {:?})",
                        address.ip
                    )));
                }
            }
        }
        self.validate_public_keys()
    }

    /// Keys are all given or none: a cluster half on CURVE could not talk.
    fn validate_public_keys(&self) -> Result<(), ConfigError> {
        let (with_key, without_key): (Vec<usize>, Vec<usize>) =
            (0..self.addresses.len()).partition(|&index| self.addresses[index].public_key.is_some());
        if !with_key.is_empty() && !without_key.is_empty() {
            return Err(ConfigError(format!(
                "invalid config: \"public_key\" is given for node(s) {with_key:?} but not for {without_key:?}: \
                 give every node a key (peers authenticate with CURVE) or none"
            )));
        }
        let mut seen = std::collections::HashMap::new();
        for (index, address) in self.addresses.iter().enumerate() {
            let Some(key) = &address.public_key else { continue };
            decode_z85_key(key).map_err(|detail| {
                ConfigError(format!("invalid config: address {index} has a bad \"public_key\": {detail}"))
            })?;
            if let Some(other) = seen.insert(key.clone(), index) {
                return Err(ConfigError(format!(
                    "invalid config: nodes {other} and {index} have the same \"public_key\"; each node needs its own"
                )));
            }
        }
        self.validate_client_keys(with_key.is_empty())
    }

    fn validate_client_keys(&self, nodes_without_keys: bool) -> Result<(), ConfigError> {
        if !self.clients.is_empty() && nodes_without_keys {
            return Err(ConfigError(
                "invalid config: \"clients\" needs every node to have a \"public_key\": the client port's CURVE \
                 uses the node's key pair"
                    .into(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (index, client) in self.clients.iter().enumerate() {
            decode_z85_key(&client.public_key).map_err(|detail| {
                ConfigError(format!("invalid config: client {index} has a bad \"public_key\": {detail}"))
            })?;
            if !seen.insert(client.public_key.as_str()) {
                return Err(ConfigError(format!("invalid config: client {index}'s \"public_key\" is listed twice")));
            }
        }
        Ok(())
    }

    /// The clients' keys and whether each is an admin's; empty when the
    /// client port is open to all.
    pub fn client_keys(&self) -> Vec<([u8; 32], bool)> {
        self.clients
            .iter()
            .filter_map(|client| decode_z85_key(&client.public_key).ok().map(|key| (key, client.admin)))
            .collect()
    }

    /// The members' CURVE public keys, by node index, when every node has one.
    pub fn public_keys(&self) -> Option<Vec<[u8; 32]>> {
        self.addresses
            .iter()
            .map(|address| address.public_key.as_deref().and_then(|key| decode_z85_key(key).ok()))
            .collect()
    }

    /// How many members the cluster has.
    pub fn node_count(&self) -> usize {
        self.addresses.len()
    }

    /// Checks that `index` names a member; the error says the valid range.
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

    /// Where clients reach node `index`, as the config writes it (a host
    /// name stays a name: it is what a client elsewhere should use).
    pub fn client_endpoint(&self, index: usize) -> String {
        let address = &self.addresses[index];
        format!("tcp://{}:{}", address.ip, address.port)
    }

    /// What node `index` binds its client socket to.
    pub fn client_bind_endpoint(&self, index: usize) -> String {
        let address = &self.addresses[index];
        format!("tcp://{}:{}", address.address(), address.port)
    }

    /// Node `index`'s peer socket: what it binds and the others connect to.
    pub fn peer_endpoint(&self, index: usize) -> String {
        let address = &self.addresses[index];
        format!("tcp://{}:{}", address.address(), address.internal_port)
    }
}

/// `ip` as an address: an IPv4 address as written, or a host name's first
/// IPv4 address. (IPv6 would need the ZMQ_IPV6 option on every socket.)
fn resolve(ip: &str, port: u16) -> Result<IpAddr, String> {
    let address = match ip.parse::<IpAddr>() {
        Ok(address) => address,
        Err(_) => {
            let candidates =
                (ip, port).to_socket_addrs().map_err(|error| format!("cannot resolve host name {ip:?}: {error}"))?;
            let mut addresses: Vec<IpAddr> = candidates.map(|socket| socket.ip()).collect();
            addresses.sort_by_key(|address| address.is_ipv6());
            addresses.first().copied().ok_or_else(|| format!("host name {ip:?} has no address"))?
        }
    };
    if address.is_ipv6() {
        return Err(format!("{ip:?} is an IPv6 address; raftmq listens on IPv4 only"));
    }
    Ok(address)
}

const Z85_ALPHABET: &str = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

/// A CURVE key in Z85 text: exactly 40 characters, decoding to 32 bytes.
pub(crate) fn decode_z85_key(text: &str) -> Result<[u8; 32], String> {
    if text.len() != Z85_KEY_CHARACTERS {
        return Err(format!("a CURVE key in Z85 has {Z85_KEY_CHARACTERS} characters, this one has {}", text.len()));
    }
    // Decoded here: libzmq's decoder accepts characters outside the
    // alphabet and groups above 2^32 without a word.
    let mut key = [0u8; 32];
    for (group, chunk) in text.as_bytes().chunks(5).enumerate() {
        let mut value: u64 = 0;
        for &byte in chunk {
            let digit = Z85_ALPHABET
                .bytes()
                .position(|candidate| candidate == byte)
                .ok_or_else(|| format!("{:?} is not a Z85 character", char::from(byte)))?;
            value = value * 85 + digit as u64;
        }
        let word = u32::try_from(value).map_err(|_| "not valid Z85 text (a group exceeds 32 bits)".to_string())?;
        key[group * 4..group * 4 + 4].copy_from_slice(&word.to_be_bytes());
    }
    Ok(key)
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
    fn addresses_are_compared_as_addresses_and_host_names_resolve() {
        let config = ClusterConfig::parse(
            r#"{"addresses":[{"ip":"localhost","port":5550,"internal_port":6550},
                             {"ip":"127.0.0.1","port":5551,"internal_port":6551}]}"#,
        )
        .unwrap();
        assert_eq!(config.peer_endpoint(0), "tcp://127.0.0.1:6550");
        assert_eq!(config.client_bind_endpoint(0), "tcp://127.0.0.1:5550");
        assert_eq!(config.client_endpoint(0), "tcp://localhost:5550", "clients are told the name");
        let clash = ClusterConfig::parse(
            r#"{"addresses":[{"ip":"localhost","port":5550,"internal_port":6550},
                             {"ip":"127.0.0.1","port":5550,"internal_port":6551}]}"#,
        )
        .unwrap_err();
        assert!(clash.0.contains("127.0.0.1:5550 is used twice (address 1"), "{}", clash.0);
        let unknown =
            ClusterConfig::parse(r#"{"addresses":[{"ip":"no-such-host.invalid","port":5550,"internal_port":6550}]}"#)
                .unwrap_err();
        assert!(unknown.0.contains("address 0: cannot resolve host name \"no-such-host.invalid\""), "{}", unknown.0);
        let six = ClusterConfig::parse(r#"{"addresses":[{"ip":"::1","port":5550,"internal_port":6550}]}"#).unwrap_err();
        assert!(six.0.contains("IPv6"), "{}", six.0);
    }

    fn keyed_config(keys: [Option<String>; 2]) -> Result<ClusterConfig, ConfigError> {
        let entries: Vec<String> = keys
            .iter()
            .enumerate()
            .map(|(index, key)| {
                let key = key.as_ref().map_or(String::new(), |key| format!(r#","public_key":{key:?}"#));
                format!(r#"{{"ip":"127.0.0.1","port":{},"internal_port":{}{key}}}"#, 5550 + index, 6550 + index)
            })
            .collect();
        ClusterConfig::parse(&format!(r#"{{"addresses":[{}]}}"#, entries.join(",")))
    }

    fn public_key() -> String {
        let pair = zmq::CurveKeyPair::new().unwrap();
        zmq::z85_encode(&pair.public_key).unwrap()
    }

    #[test]
    fn public_keys_are_given_for_every_node_or_none() {
        let (first, second) = (public_key(), public_key());
        let config = keyed_config([Some(first.clone()), Some(second)]).unwrap();
        let keys = config.public_keys().expect("every node has a key");
        assert_eq!(zmq::z85_encode(&keys[0]).unwrap(), first);
        assert_eq!(keyed_config([None, None]).unwrap().public_keys(), None);
        let cases = [
            ([Some(first.clone()), None], "given for node(s) [0] but not for [1]"),
            ([Some(first.clone()), Some(first.clone())], "nodes 0 and 1 have the same \"public_key\""),
            (
                [Some(first.clone()), Some("short".into())],
                "address 1 has a bad \"public_key\": a CURVE key in Z85 has 40",
            ),
            ([Some(first.clone()), Some("~".repeat(40))], "'~' is not a Z85 character"),
            ([Some(first), Some("%".repeat(40))], "not valid Z85"),
        ];
        for (keys, expected) in cases {
            let error = keyed_config(keys).unwrap_err();
            assert!(error.0.contains(expected), "{}", error.0);
        }
    }

    #[test]
    fn client_keys_need_node_keys_and_are_listed_once() {
        let (first, second, client) = (public_key(), public_key(), public_key());
        let with_clients = |nodes: &str, clients: &str| {
            ClusterConfig::parse(&format!(
                r#"{{"addresses":[{{"ip":"127.0.0.1","port":5550,"internal_port":6550{nodes}}}],"clients":[{clients}]}}"#
            ))
        };
        let keyed = format!(r#","public_key":{first:?}"#);
        let config =
            with_clients(&keyed, &format!(r#"{{"public_key":{client:?},"admin":true}},{{"public_key":{second:?}}}"#))
                .unwrap();
        let keys = config.client_keys();
        assert_eq!(keys.len(), 2);
        assert!(keys[0].1 && !keys[1].1, "admin is given or false");
        let unkeyed = with_clients("", &format!(r#"{{"public_key":{client:?}}}"#)).unwrap_err();
        assert!(unkeyed.0.contains("needs every node to have a \"public_key\""), "{}", unkeyed.0);
        let twice =
            with_clients(&keyed, &format!(r#"{{"public_key":{client:?}}},{{"public_key":{client:?}}}"#)).unwrap_err();
        assert!(twice.0.contains("client 1's \"public_key\" is listed twice"), "{}", twice.0);
        let bad = with_clients(&keyed, r#"{"public_key":"short"}"#).unwrap_err();
        assert!(bad.0.contains("client 0 has a bad \"public_key\""), "{}", bad.0);
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
