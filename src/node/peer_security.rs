//! Who may speak on the peer port. When config.json gives every node a
//! `public_key`, peers use ZeroMQ's CURVE: traffic is encrypted, and the
//! ZAP handler (zap_handler.rs) admits only members' keys, each as its own
//! node index, so a frame can neither come from outside the cluster nor
//! speak for another member. Without keys (the course's configs) peers are
//! unauthenticated, which is allowed on loopback only unless the operator
//! says `--insecure-peers`.

use std::ffi::CString;
use std::path::Path;

use log::warn;

use crate::config::{decode_z85_key, ClusterConfig, ConfigError, Z85_KEY_CHARACTERS};
use crate::raft::NodeId;

/// The ZAP domain of the peer socket.
pub const PEER_ZAP_DOMAIN: &str = "raftmq-peers";
/// The ZAP domain of the client socket, when config.json lists `clients`.
pub const CLIENT_ZAP_DOMAIN: &str = "raftmq-clients";

/// libzmq's ZMQ_ZAP_ENFORCE_DOMAIN (zmq.h lists it with the draft options,
/// but 4.3.4 honours it in every build).
const ZMQ_ZAP_ENFORCE_DOMAIN: i32 = 93;

/// Make a CURVE server socket refuse every client when no ZAP handler
/// answers. By default libzmq then admits any key, and takes the client's
/// own claimed properties (a `User-Id` among them) as the connection's:
/// a ZAP handler that had stopped would let anyone in as anyone.
pub fn enforce_zap(socket: &mut zmq::Socket) -> Result<(), String> {
    let on: i32 = 1;
    // SAFETY: the socket pointer is live for the call; the value is a
    // 4-byte int, as the option expects.
    let status = unsafe {
        zmq_sys::zmq_setsockopt(
            socket.as_mut_ptr(),
            ZMQ_ZAP_ENFORCE_DOMAIN,
            (&on as *const i32).cast(),
            std::mem::size_of::<i32>(),
        )
    };
    if status != 0 {
        return Err(format!("cannot make the socket enforce ZAP: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// How this node's peer sockets are secured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerSecurity {
    /// CURVE with this node's keys; `members[i]` is node i's public key.
    Curve(CurveKeys),
    /// Plain TCP: no authentication, no encryption.
    Unauthenticated,
}

/// A node's CURVE key pair and its cluster's public keys.
#[derive(Clone, PartialEq, Eq)]
pub struct CurveKeys {
    /// This node's CURVE secret key; never logged (see the `Debug` impl).
    pub secret_key: [u8; 32],
    /// This node's CURVE public key, `members[own index]`.
    pub public_key: [u8; 32],
    /// Every member's CURVE public key, by node id: peers are admitted only
    /// with one of these.
    pub members: Vec<[u8; 32]>,
}

impl std::fmt::Debug for CurveKeys {
    /// Never prints the secret key.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CurveKeys")
            .field("public_key", &zmq::z85_encode(&self.public_key).unwrap_or_default())
            .field("members", &self.members.len())
            .finish_non_exhaustive()
    }
}

impl CurveKeys {
    /// The node a member's public key belongs to.
    pub fn member_of(&self, public_key: &[u8]) -> Option<NodeId> {
        self.members.iter().position(|member| member.as_slice() == public_key)
    }
}

/// Decide how node `index` secures its peer port, from the config and the
/// `--peer-key-file` / `--insecure-peers` options; refuse, with what to do,
/// every combination that would leave it open or unable to talk.
pub fn peer_security(
    config: &ClusterConfig,
    index: NodeId,
    key_file: Option<&Path>,
    insecure_peers: bool,
) -> Result<PeerSecurity, ConfigError> {
    let Some(members) = config.public_keys() else {
        return unauthenticated(config, index, key_file, insecure_peers);
    };
    let Some(key_file) = key_file else {
        return Err(ConfigError(format!(
            "config.json gives every node a \"public_key\", so peers use CURVE: start node {index} with \
             --peer-key-file FILE naming its secret key (see docs/security.md)"
        )));
    };
    if zmq::has("curve") != Some(true) {
        return Err(ConfigError("this build of libzmq has no CURVE support".into()));
    }
    let secret_key = read_secret_key(key_file)?;
    let public_key = public_key_of(&secret_key)
        .map_err(|detail| ConfigError(format!("key file {}: {detail}", key_file.display())))?;
    if public_key != members[index] {
        return Err(ConfigError(format!(
            "the secret key in {} belongs to public key {}, but config.json gives node {index} the public key {}: \
             wrong key file or wrong node index?",
            key_file.display(),
            zmq::z85_encode(&public_key).unwrap_or_default(),
            zmq::z85_encode(&members[index]).unwrap_or_default()
        )));
    }
    Ok(PeerSecurity::Curve(CurveKeys { secret_key, public_key, members }))
}

fn unauthenticated(
    config: &ClusterConfig,
    index: NodeId,
    key_file: Option<&Path>,
    insecure_peers: bool,
) -> Result<PeerSecurity, ConfigError> {
    if let Some(file) = key_file {
        return Err(ConfigError(format!(
            "--peer-key-file {} is given, but config.json has no \"public_key\" entries: add every node's \
             public key to config.json, or drop the option",
            file.display()
        )));
    }
    let address = config.addresses[index].address();
    if !address.is_loopback() && !insecure_peers {
        return Err(ConfigError(format!(
            "refusing to serve peers unauthenticated on {}: anyone who can reach it could speak for a member. \
             Give every node a \"public_key\" in config.json and start each with --peer-key-file \
             (see docs/security.md), or pass --insecure-peers to accept the risk",
            config.peer_endpoint(index)
        )));
    }
    warn!(
        "peers are unauthenticated (config.json has no \"public_key\" entries): any process that can reach {} \
         can speak for a member; see docs/security.md",
        config.peer_endpoint(index)
    );
    Ok(PeerSecurity::Unauthenticated)
}

/// The secret key in `file`: Z85 on one line, as `raftmq-keygen` writes it.
pub fn read_secret_key(file: &Path) -> Result<[u8; 32], ConfigError> {
    let shown = file.display();
    let text = std::fs::read_to_string(file)
        .map_err(|error| ConfigError(format!("cannot read the peer key file {shown}: {error}")))?;
    warn_if_readable_by_others(file);
    let key = text.trim();
    decode_z85_key(key).map_err(|detail| {
        ConfigError(format!(
            "peer key file {shown} must hold one CURVE secret key in Z85 ({Z85_KEY_CHARACTERS} characters): {detail}"
        ))
    })
}

fn warn_if_readable_by_others(file: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(metadata) = std::fs::metadata(file) {
        if metadata.permissions().mode() & 0o077 != 0 {
            warn!("peer key file {} is readable by others; chmod 600 it", file.display());
        }
    }
}

/// The public key of a CURVE secret key.
pub fn public_key_of(secret_key: &[u8; 32]) -> Result<[u8; 32], String> {
    let secret_text = zmq::z85_encode(secret_key).map_err(|error| error.to_string())?;
    let secret = CString::new(secret_text).map_err(|error| error.to_string())?;
    let mut public = [0u8; Z85_KEY_CHARACTERS + 1];
    // SAFETY: zmq_curve_public reads a NUL-terminated 40-character Z85
    // secret and writes 40 characters plus a NUL into a 41-byte buffer.
    let status = unsafe { zmq_sys::zmq_curve_public(public.as_mut_ptr().cast(), secret.as_ptr()) };
    if status != 0 {
        return Err("libzmq cannot derive a public key (no CURVE support?)".into());
    }
    let text = std::str::from_utf8(&public[..Z85_KEY_CHARACTERS]).map_err(|error| error.to_string())?;
    decode_z85_key(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_pair() -> ([u8; 32], [u8; 32]) {
        let pair = zmq::CurveKeyPair::new().unwrap();
        (pair.secret_key, pair.public_key)
    }

    fn config(ip: &str, keys: Option<&[[u8; 32]]>) -> ClusterConfig {
        let entries: Vec<String> = (0..3)
            .map(|index| {
                let key = keys.map_or(String::new(), |keys| {
                    format!(r#","public_key":{:?}"#, zmq::z85_encode(&keys[index]).unwrap())
                });
                format!(r#"{{"ip":"{ip}","port":{},"internal_port":{}{key}}}"#, 7550 + index, 8550 + index)
            })
            .collect();
        ClusterConfig::parse(&format!(r#"{{"addresses":[{}]}}"#, entries.join(","))).unwrap()
    }

    fn key_file(secret_key: &[u8; 32]) -> TemporaryFile {
        TemporaryFile::with_text(&format!("{}\n", zmq::z85_encode(secret_key).unwrap()))
    }

    /// A file removed when dropped.
    struct TemporaryFile(std::path::PathBuf);

    impl TemporaryFile {
        fn with_text(text: &str) -> TemporaryFile {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let name = format!("raftmq-key-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
            let path = std::env::temp_dir().join(name);
            std::fs::write(&path, text).unwrap();
            TemporaryFile(path)
        }
    }

    impl Drop for TemporaryFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn a_node_with_its_own_key_uses_curve_and_knows_every_member() {
        let pairs = [key_pair(), key_pair(), key_pair()];
        let publics: Vec<[u8; 32]> = pairs.iter().map(|pair| pair.1).collect();
        let config = config("127.0.0.1", Some(&publics));
        let file = key_file(&pairs[1].0);
        let PeerSecurity::Curve(keys) = peer_security(&config, 1, Some(&file.0), false).unwrap() else {
            panic!("CURVE expected");
        };
        assert_eq!(keys.public_key, publics[1]);
        assert_eq!(keys.member_of(&publics[2]), Some(2));
        assert_eq!(keys.member_of(&key_pair().1), None);
        assert!(!format!("{keys:?}").contains(&zmq::z85_encode(&pairs[1].0).unwrap()), "the secret is never printed");
    }

    #[test]
    fn a_keyed_cluster_refuses_a_node_without_its_key_or_with_another_nodes() {
        let pairs = [key_pair(), key_pair(), key_pair()];
        let publics: Vec<[u8; 32]> = pairs.iter().map(|pair| pair.1).collect();
        let config = config("127.0.0.1", Some(&publics));
        let missing = peer_security(&config, 0, None, false).unwrap_err();
        assert!(missing.0.contains("start node 0 with --peer-key-file"), "{}", missing.0);
        let file = key_file(&pairs[2].0);
        let wrong = peer_security(&config, 0, Some(&file.0), false).unwrap_err();
        assert!(wrong.0.contains("wrong key file or wrong node index"), "{}", wrong.0);
        let garbage = TemporaryFile::with_text("not a key\n");
        let bad = peer_security(&config, 0, Some(&garbage.0), false).unwrap_err();
        assert!(bad.0.contains("must hold one CURVE secret key in Z85"), "{}", bad.0);
        let absent = peer_security(&config, 0, Some(Path::new("/nonexistent/node0.key")), false).unwrap_err();
        assert!(absent.0.contains("cannot read the peer key file /nonexistent/node0.key"), "{}", absent.0);
    }

    #[test]
    fn unauthenticated_peers_only_on_loopback_unless_the_operator_insists() {
        assert_eq!(peer_security(&config("127.0.0.1", None), 0, None, false), Ok(PeerSecurity::Unauthenticated));
        let open = peer_security(&config("0.0.0.0", None), 0, None, false).unwrap_err();
        assert!(open.0.contains("refusing to serve peers unauthenticated on tcp://0.0.0.0:8550"), "{}", open.0);
        assert_eq!(peer_security(&config("0.0.0.0", None), 0, None, true), Ok(PeerSecurity::Unauthenticated));
        let file = key_file(&key_pair().0);
        let stray = peer_security(&config("127.0.0.1", None), 0, Some(&file.0), false).unwrap_err();
        assert!(stray.0.contains("no \"public_key\" entries"), "{}", stray.0);
    }

    /// A CURVE server whose ZAP handler is missing: does a client with any
    /// key get a frame through within half a second?
    fn stranger_gets_through_without_a_zap_handler(enforce: bool) -> bool {
        let context = zmq::Context::new();
        let (server_secret, server_public) = key_pair();
        let mut server = context.socket(zmq::ROUTER).unwrap();
        server.set_curve_server(true).unwrap();
        server.set_curve_secretkey(&server_secret).unwrap();
        server.set_zap_domain(PEER_ZAP_DOMAIN).unwrap();
        if enforce {
            enforce_zap(&mut server).unwrap();
        }
        server.set_rcvtimeo(500).unwrap();
        server.bind("tcp://127.0.0.1:*").unwrap();
        let endpoint = server.get_last_endpoint().unwrap().unwrap();
        let (client_secret, client_public) = key_pair();
        let client = context.socket(zmq::DEALER).unwrap();
        client.set_linger(0).unwrap();
        client.set_curve_serverkey(&server_public).unwrap();
        client.set_curve_publickey(&client_public).unwrap();
        client.set_curve_secretkey(&client_secret).unwrap();
        client.connect(&endpoint).unwrap();
        client.send("hello", zmq::DONTWAIT).ok();
        let through = server.recv_multipart(0).is_ok();
        server.set_linger(0).unwrap();
        through
    }

    #[test]
    fn without_its_zap_handler_a_guarded_socket_admits_nobody() {
        assert!(stranger_gets_through_without_a_zap_handler(false), "libzmq's default: fail open");
        assert!(!stranger_gets_through_without_a_zap_handler(true), "enforced: fail closed");
    }

    #[test]
    fn the_public_key_is_derived_from_the_secret() {
        let (secret, public) = key_pair();
        assert_eq!(public_key_of(&secret), Ok(public));
    }
}
