//! The ZAP handler (ZeroMQ RFC 27): libzmq asks it, over
//! inproc://zeromq.zap.01, whether a CURVE client that completed the
//! handshake may connect. On the peer port it admits only the cluster's
//! members, and names each by its node index (the ZAP user id), which the
//! peer listener checks against the sender a frame claims. On the client
//! port, when config.json lists `clients`, it admits only their keys, named
//! "admin" or "client". It must be bound before the sockets it guards: a
//! CURVE server with no ZAP handler admits every key.

use std::time::Instant;

use log::{error, warn};

use super::listener::Listener;
use super::peer_security::{CurveKeys, CLIENT_ZAP_DOMAIN, PEER_ZAP_DOMAIN};
use crate::rate_limited::RateLimited;

const ZAP_ENDPOINT: &str = "inproc://zeromq.zap.01";
const ZAP_VERSION: &[u8] = b"1.0";

pub struct ZapHandler {
    pub keys: CurveKeys,
    /// The clients admitted on the client port, and whether each is an
    /// admin's; empty when the client port does not use CURVE.
    pub clients: Vec<([u8; 32], bool)>,
}

/// The ZAP user id of a client whose key is marked admin.
pub const ADMIN_USER: &str = "admin";
/// The ZAP user id of the other listed clients.
pub const CLIENT_USER: &str = "client";

/// What a ZAP request gets: a status code, its text, and the user id.
#[derive(Debug, PartialEq, Eq)]
pub struct ZapDecision {
    pub status_code: &'static str,
    pub status_text: String,
    pub user_id: String,
}

impl ZapDecision {
    fn refuse(status_code: &'static str, status_text: String) -> ZapDecision {
        ZapDecision { status_code, status_text, user_id: String::new() }
    }
}

impl Listener for ZapHandler {
    type Sockets = zmq::Socket;

    fn name(&self) -> &'static str {
        "zap-handler"
    }

    fn bind(&self, context: &zmq::Context) -> Result<zmq::Socket, String> {
        let socket = context.socket(zmq::REP).map_err(|e| e.to_string())?;
        socket.set_linger(0).map_err(|e| e.to_string())?;
        socket.bind(ZAP_ENDPOINT).map_err(|e| format!("cannot bind the ZAP handler at {ZAP_ENDPOINT}: {e}"))?;
        Ok(socket)
    }

    /// Never returns: if answering fails for good, the process exits, since
    /// without a handler no peer or client could connect (the guarded
    /// sockets enforce ZAP, see `enforce_zap`).
    fn serve(&self, socket: &zmq::Socket) -> Result<(), zmq::Error> {
        let failure = self.answer_requests(socket);
        error!("the ZAP handler stopped ({failure}); no peer or client could connect now, so the node exits");
        std::process::exit(EXIT_ZAP_HANDLER_STOPPED);
    }
}

/// Exit status when the ZAP handler stops (EX_SOFTWARE).
const EXIT_ZAP_HANDLER_STOPPED: i32 = 70;

/// `operation`, again while a signal interrupts it.
fn retrying_interrupts<T>(mut operation: impl FnMut() -> Result<T, zmq::Error>) -> Result<T, zmq::Error> {
    loop {
        match operation() {
            Err(zmq::Error::EINTR) => continue,
            outcome => return outcome,
        }
    }
}

impl ZapHandler {
    fn answer_requests(&self, socket: &zmq::Socket) -> zmq::Error {
        let mut refusals = RateLimited::default();
        loop {
            let request = match retrying_interrupts(|| socket.recv_multipart(0)) {
                Ok(request) => request,
                Err(failure) => return failure,
            };
            let request_id = request.get(1).cloned().unwrap_or_default();
            let decision = self.decide(&request);
            if decision.status_code != "200" {
                if let Some(refused) = refusals.note(Instant::now()) {
                    warn!("refused {refused} connection(s); latest: {}", decision.status_text);
                }
            }
            let reply: [&[u8]; 6] = [
                ZAP_VERSION,
                &request_id,
                decision.status_code.as_bytes(),
                decision.status_text.as_bytes(),
                decision.user_id.as_bytes(),
                b"",
            ];
            if let Err(failure) = retrying_interrupts(|| socket.send_multipart(reply, 0)) {
                return failure;
            }
        }
    }

    /// RFC 27's request: version, request id, domain, address, identity,
    /// mechanism, then the mechanism's credentials (CURVE: the client's
    /// 32-byte public key).
    pub fn decide(&self, request: &[Vec<u8>]) -> ZapDecision {
        let [version, _request_id, domain, address, _identity, mechanism, credentials @ ..] = request else {
            return ZapDecision::refuse("500", format!("malformed ZAP request of {} frame(s)", request.len()));
        };
        if version.as_slice() != ZAP_VERSION {
            return ZapDecision::refuse("500", "unknown ZAP version".into());
        }
        let address = String::from_utf8_lossy(address);
        if domain.as_slice() == CLIENT_ZAP_DOMAIN.as_bytes() && mechanism.as_slice() == b"CURVE" {
            return self.decide_client(&address, credentials.first());
        }
        if domain.as_slice() != PEER_ZAP_DOMAIN.as_bytes() || mechanism.as_slice() != b"CURVE" {
            return ZapDecision::refuse(
                "400",
                format!(
                    "{address}: domain {:?} with mechanism {:?} is not served",
                    String::from_utf8_lossy(domain),
                    String::from_utf8_lossy(mechanism)
                ),
            );
        }
        let Some(key) = credentials.first() else {
            return ZapDecision::refuse("400", format!("{address}: no CURVE key"));
        };
        match self.keys.member_of(key) {
            Some(node) => ZapDecision { status_code: "200", status_text: "OK".into(), user_id: node.to_string() },
            None => ZapDecision::refuse(
                "400",
                format!("{address}: key {} is not a member's", zmq::z85_encode(key).unwrap_or_default()),
            ),
        }
    }

    fn decide_client(&self, address: &str, key: Option<&Vec<u8>>) -> ZapDecision {
        let Some(key) = key else {
            return ZapDecision::refuse("400", format!("client {address}: no CURVE key"));
        };
        match self.clients.iter().find(|(client, _)| client.as_slice() == key.as_slice()) {
            Some((_, admin)) => ZapDecision {
                status_code: "200",
                status_text: "OK".into(),
                user_id: if *admin { ADMIN_USER } else { CLIENT_USER }.into(),
            },
            None => ZapDecision::refuse(
                "400",
                format!("client {address}: key {} is not listed", zmq::z85_encode(key).unwrap_or_default()),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handler() -> (ZapHandler, Vec<[u8; 32]>) {
        let pairs: Vec<zmq::CurveKeyPair> = (0..3).map(|_| zmq::CurveKeyPair::new().unwrap()).collect();
        let members: Vec<[u8; 32]> = pairs.iter().map(|pair| pair.public_key).collect();
        let keys = CurveKeys { secret_key: pairs[0].secret_key, public_key: members[0], members: members.clone() };
        (ZapHandler { keys, clients: Vec::new() }, members)
    }

    fn request(domain: &str, mechanism: &str, key: &[u8]) -> Vec<Vec<u8>> {
        [b"1.0".as_slice(), b"7", domain.as_bytes(), b"127.0.0.1", b"", mechanism.as_bytes(), key]
            .iter()
            .map(|frame| frame.to_vec())
            .collect()
    }

    #[test]
    fn a_members_key_is_admitted_as_its_node() {
        let (handler, members) = handler();
        let decision = handler.decide(&request(PEER_ZAP_DOMAIN, "CURVE", &members[2]));
        assert_eq!((decision.status_code, decision.user_id.as_str()), ("200", "2"));
    }

    #[test]
    fn listed_clients_are_admitted_as_admin_or_client_and_members_are_not_clients() {
        let (mut handler, members) = handler();
        let [admin, plain, stranger] = [(); 3].map(|_| zmq::CurveKeyPair::new().unwrap().public_key);
        handler.clients = vec![(admin, true), (plain, false)];
        let user = |key: &[u8]| handler.decide(&request(CLIENT_ZAP_DOMAIN, "CURVE", key));
        assert_eq!((user(&admin).status_code, user(&admin).user_id), ("200", ADMIN_USER.to_string()));
        assert_eq!((user(&plain).status_code, user(&plain).user_id), ("200", CLIENT_USER.to_string()));
        assert_eq!(user(&stranger).status_code, "400");
        assert_eq!(user(&members[1]).status_code, "400", "a member's key is not a client's");
        let as_peer = handler.decide(&request(PEER_ZAP_DOMAIN, "CURVE", &admin));
        assert_eq!(as_peer.status_code, "400", "a client's key is not a member's");
    }

    #[test]
    fn strangers_other_domains_and_malformed_requests_are_refused() {
        let (handler, members) = handler();
        let stranger = zmq::CurveKeyPair::new().unwrap().public_key;
        let cases = [
            (request(PEER_ZAP_DOMAIN, "CURVE", &stranger), "400", "is not a member's"),
            (request("other", "CURVE", &members[1]), "400", "is not served"),
            (request(PEER_ZAP_DOMAIN, "PLAIN", b"user"), "400", "is not served"),
            (request(PEER_ZAP_DOMAIN, "CURVE", b"")[..6].to_vec(), "400", "no CURVE key"),
            (vec![b"1.0".to_vec()], "500", "malformed"),
        ];
        for (request, code, text) in cases {
            let decision = handler.decide(&request);
            assert_eq!(decision.status_code, code, "{}", decision.status_text);
            assert!(decision.status_text.contains(text), "{}", decision.status_text);
            assert!(decision.user_id.is_empty());
        }
    }
}
