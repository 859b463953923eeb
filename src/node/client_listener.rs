//! The client listener thread: a ROUTER socket for clients (REQ and DEALER
//! alike) and an inproc PULL socket on which the event loop rings when it
//! has handed over a turn's replies. It decodes requests, answers malformed
//! ones and `status` itself, and forwards queue operations; it encodes the
//! event loop's replies and puts them on the wire. Its sockets never leave
//! this thread.

use std::sync::{Arc, Mutex};

use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use log::{debug, warn};

use super::connection_cap::{Admission, ConnectionCap};
use super::listener::Listener;
use super::peer_security::{enforce_zap, CurveKeys, CLIENT_ZAP_DOMAIN};
use super::zap_handler::ADMIN_USER;
use crate::protocol::{parse_request, ErrorCode, Operation, ReplyBody, StatusReport};
use crate::rate_limited::RateLimited;
use crate::shell::{shutting_down_reply, ClientCommand, Envelope, Input, TransferRequest};

/// Messages handled per socket before checking the other, so neither starves.
const BATCH: usize = 1024;

pub struct ClientListener {
    pub endpoint: String,
    /// Where the event loop rings after handing over a batch of replies.
    pub replies_endpoint: String,
    /// The event loop's replies, one batch per turn.
    pub reply_batches: Receiver<ReplyBatch>,
    /// The event loop's bounded client queue.
    pub inputs: Sender<Input>,
    pub status: Arc<Mutex<StatusReport>>,
    pub max_request_bytes: usize,
    /// Client connections at most; see connection_cap.rs.
    pub max_connections: usize,
    /// When config.json lists `clients`: this node's key pair, for the
    /// client port's CURVE (the ZAP handler admits the listed keys only).
    pub curve: Option<CurveKeys>,
}

/// The client socket, the replies from the event loop, and the client
/// socket's monitor (connections accepted and closed).
pub struct ClientSockets {
    router: zmq::Socket,
    replies: zmq::Socket,
    monitor: zmq::Socket,
}

/// Connection events worth a warning, each kind rate-limited on its own.
#[derive(Default)]
struct ConnectionWarnings {
    refused: RateLimited<Instant>,
    accept_failed: RateLimited<Instant>,
}

/// How long a connection may take to send ZeroMQ's greeting: a bare TCP
/// connection that says nothing is closed after it, freeing its descriptor.
const HANDSHAKE_TIMEOUT_MS: i32 = 5_000;

/// ZMTP heartbeats: a PING every 2 s, and a connection that sends nothing
/// for 10 s is closed. An honest client's ZeroMQ answers PINGs by itself;
/// one stalled halfway through a frame cannot, so the frame it holds
/// buffered (up to four times the request limit) is freed.
const HEARTBEAT_INTERVAL_MS: i32 = 2_000;
const HEARTBEAT_TIMEOUT_MS: i32 = 10_000;

fn monitored_events() -> i32 {
    [zmq::SocketEvent::ACCEPTED, zmq::SocketEvent::ACCEPT_FAILED, zmq::SocketEvent::DISCONNECTED]
        .into_iter()
        .fold(0, |events, event| events | i32::from(event.to_raw()))
}

impl Listener for ClientListener {
    type Sockets = ClientSockets;

    fn name(&self) -> &'static str {
        "client-listener"
    }

    fn niceness(&self) -> i32 {
        super::thread_priority::CLIENT_LISTENER_NICENESS
    }

    fn bind(&self, context: &zmq::Context) -> Result<ClientSockets, String> {
        let mut router = context.socket(zmq::ROUTER).map_err(|e| e.to_string())?;
        router.set_linger(0).map_err(|e| e.to_string())?;
        router.set_handshake_ivl(HANDSHAKE_TIMEOUT_MS).map_err(|e| e.to_string())?;
        router.set_heartbeat_ivl(HEARTBEAT_INTERVAL_MS).map_err(|e| e.to_string())?;
        router.set_heartbeat_timeout(HEARTBEAT_TIMEOUT_MS).map_err(|e| e.to_string())?;
        if let Some(keys) = &self.curve {
            router.set_curve_server(true).map_err(|e| e.to_string())?;
            router.set_curve_secretkey(&keys.secret_key).map_err(|e| e.to_string())?;
            router.set_zap_domain(CLIENT_ZAP_DOMAIN).map_err(|e| e.to_string())?;
            enforce_zap(&mut router)?;
        }
        let monitor_endpoint = format!("inproc://raftmq-client-connections-{}", self.endpoint);
        router.monitor(&monitor_endpoint, monitored_events()).map_err(|e| e.to_string())?;
        let monitor = context.socket(zmq::PAIR).map_err(|e| e.to_string())?;
        // libzmq sends monitor events blocking, from its I/O thread, which
        // carries the peers' traffic too: a full event queue (a burst of
        // connections while this thread is starved) must not stop it.
        // A limit of 0 on either side makes the queue unbounded.
        monitor.set_rcvhwm(0).map_err(|e| e.to_string())?;
        monitor.connect(&monitor_endpoint).map_err(|e| e.to_string())?;
        router.set_sndhwm(100_000).map_err(|e| e.to_string())?;
        router.set_rcvhwm(100_000).map_err(|e| e.to_string())?;
        // A frame past this is refused by ZeroMQ before it is buffered
        // (the connection is dropped); frames up to it are read and the
        // ones above --max-request-bytes answered `too_large`.
        router.set_maxmsgsize(client_frame_limit_bytes(self.max_request_bytes)).map_err(|e| e.to_string())?;
        router.bind(&self.endpoint).map_err(|e| format!("cannot bind client socket {}: {e}", self.endpoint))?;
        let replies = context.socket(zmq::PULL).map_err(|e| e.to_string())?;
        replies.set_rcvhwm(0).map_err(|e| e.to_string())?;
        replies.bind(&self.replies_endpoint).map_err(|e| format!("cannot bind {}: {e}", self.replies_endpoint))?;
        Ok(ClientSockets { router, replies, monitor })
    }

    fn serve(&self, sockets: &ClientSockets) -> Result<(), zmq::Error> {
        let ClientSockets { router, replies, monitor } = sockets;
        let mut cap = ConnectionCap::new(self.max_connections);
        let mut warnings = ConnectionWarnings::default();
        loop {
            let mut items = [
                router.as_poll_item(zmq::POLLIN),
                replies.as_poll_item(zmq::POLLIN),
                monitor.as_poll_item(zmq::POLLIN),
            ];
            zmq::poll(&mut items, -1)?;
            let (requests_ready, replies_ready) = (items[0].is_readable(), items[1].is_readable());
            if items[2].is_readable() {
                self.on_connection_events(monitor, &mut cap, &mut warnings)?;
            }
            if requests_ready {
                for _ in 0..BATCH {
                    match receive_frames(router) {
                        Ok(frames) => self.on_request(router, frames),
                        Err(zmq::Error::EAGAIN) => break,
                        Err(failure) => return Err(failure),
                    }
                }
            }
            if replies_ready {
                take_doorbells(replies)?;
                // Every batch handed over before its ring is here by now.
                for batch in self.reply_batches.try_iter() {
                    for reply in batch {
                        let encoded = reply.body.encode(reply.id.as_ref());
                        reply_now(router, &reply.envelope, encoded);
                    }
                }
            }
        }
    }
}

impl ClientListener {
    /// Count connections from the monitor's events; refuse those past
    /// the cap.
    fn on_connection_events(
        &self,
        monitor: &zmq::Socket,
        cap: &mut ConnectionCap,
        warnings: &mut ConnectionWarnings,
    ) -> Result<(), zmq::Error> {
        loop {
            let frames = match monitor.recv_multipart(zmq::DONTWAIT) {
                Ok(frames) => frames,
                Err(zmq::Error::EAGAIN) => return Ok(()),
                Err(failure) => return Err(failure),
            };
            // The event frame: a 16-bit event id, then a 32-bit value
            // (for ACCEPTED, the new connection's descriptor).
            let Some(event) = frames.first().and_then(|frame| frame.get(..6)) else { continue };
            let value = i32::from_ne_bytes([event[2], event[3], event[4], event[5]]);
            match zmq::SocketEvent::from_raw(u16::from_ne_bytes([event[0], event[1]])) {
                zmq::SocketEvent::ACCEPTED => self.on_accepted(cap, value, &mut warnings.refused),
                zmq::SocketEvent::DISCONNECTED => cap.on_disconnected(),
                zmq::SocketEvent::ACCEPT_FAILED => {
                    if let Some(failed) = warnings.accept_failed.note(Instant::now()) {
                        warn!(
                            "accepting {failed} client connection(s) failed; latest: {} ({} connected)",
                            std::io::Error::from_raw_os_error(value),
                            cap.open_connections()
                        );
                    }
                }
                _ => {}
            }
        }
    }

    /// The port of `endpoint` (tcp://address:port).
    fn port(&self) -> Option<u16> {
        self.endpoint.rsplit(':').next().and_then(|port| port.parse().ok())
    }

    /// Admin operations: with client CURVE, for admin keys only; without,
    /// for clients on this machine only.
    fn may_administer(&self, frame: &mut zmq::Message) -> bool {
        match self.curve {
            Some(_) => frame.gets("User-Id") == Some(ADMIN_USER),
            None => from_loopback(frame),
        }
    }

    fn on_accepted(&self, cap: &mut ConnectionCap, descriptor: i32, refusals: &mut RateLimited<Instant>) {
        if cap.on_accepted() == Admission::Refuse {
            refuse_connection(descriptor, self.port());
            if let Some(refused) = refusals.note(Instant::now()) {
                warn!(
                    "{} client connections (the cap is {}): refusing new ones until some close ({refused} refused)",
                    cap.open_connections(),
                    self.max_connections
                );
            }
        }
    }

    fn on_request(&self, router: &zmq::Socket, frames: Vec<zmq::Message>) {
        let (envelope, body) = split_envelope(frames);
        let Some(mut body) = body else {
            let reply = ReplyBody::error(ErrorCode::BadRequest, "a request is exactly one frame after the delimiter");
            return reply_now(router, &envelope, reply.encode(None));
        };
        let request = match parse_request(&body, self.max_request_bytes) {
            Ok(request) => request,
            Err(failure) => {
                debug!("rejected request: {}", failure.detail);
                let reply = ReplyBody::error(failure.code, failure.detail);
                return reply_now(router, &envelope, reply.encode(failure.id.as_ref()));
            }
        };
        match request.operation {
            Operation::Status => {
                let status = self.status.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
                reply_now(router, &envelope, ReplyBody::Status(status).encode(request.id.as_ref()));
            }
            Operation::Queue(command) => {
                let forwarded =
                    Input::Client(ClientCommand { envelope, id: request.id, session: request.session, command });
                self.forward(router, forwarded);
            }
            Operation::TransferLeader { to } => {
                if !self.may_administer(&mut body) {
                    let detail = if self.curve.is_some() {
                        "transfer_leader is an admin operation: it needs a client key marked admin in config.json"
                    } else {
                        "transfer_leader is an admin operation: it is accepted only from this node's machine (loopback)"
                    };
                    let reply = ReplyBody::error(ErrorCode::Forbidden, detail);
                    return reply_now(router, &envelope, reply.encode(request.id.as_ref()));
                }
                self.forward(router, Input::Transfer(TransferRequest { envelope, id: request.id, to }));
            }
        }
    }

    /// Hand a request to the event loop. When its client queue is full the
    /// node is past what it can take: answer `busy` at once, so the client
    /// backs off instead of waiting out a timeout, and the event loop's turns
    /// stay short. Once the loop has stopped (the node is exiting), answer
    /// here too: the request was not applied, so the client may retry
    /// elsewhere at once.
    fn forward(&self, router: &zmq::Socket, input: Input) {
        let (input, reply) = match self.inputs.try_send(input) {
            Ok(()) => return,
            Err(TrySendError::Full(input)) => {
                let detail = "this node has more requests queued than it can take; retry later";
                (input, ReplyBody::error(ErrorCode::Busy, detail))
            }
            Err(TrySendError::Disconnected(input)) => (input, shutting_down_reply()),
        };
        let (envelope, id) = match input {
            Input::Client(command) => (command.envelope, command.id),
            Input::Transfer(request) => (request.envelope, request.id),
            _ => return,
        };
        reply_now(router, &envelope, reply.encode(id.as_ref()));
    }
}

/// Shut down a connection past the cap. shutdown(2), not close: the
/// descriptor stays libzmq's, which sees the connection end and frees it.
/// The number comes from an event that may be old: if that connection has
/// closed since and the number went to another socket, leave it alone
/// unless it is a connection to this same client port (the residual race
/// is in REPORT's known limits).
fn refuse_connection(descriptor: i32, client_port: Option<u16>) {
    if client_port.is_none() || local_port(descriptor) != client_port {
        return;
    }
    // SAFETY: shutdown only acts on the descriptor; an invalid one is EBADF.
    unsafe {
        libc::shutdown(descriptor, libc::SHUT_RDWR);
    }
}

/// The local TCP port of a socket descriptor, if it is an IPv4 one.
fn local_port(descriptor: i32) -> Option<u16> {
    // SAFETY: getsockname writes at most `length` bytes into the address.
    unsafe {
        let mut address: libc::sockaddr_in = std::mem::zeroed();
        let mut length = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let status = libc::getsockname(descriptor, (&mut address as *mut libc::sockaddr_in).cast(), &mut length);
        (status == 0 && i32::from(address.sin_family) == libc::AF_INET).then(|| u16::from_be(address.sin_port))
    }
}

/// The largest client frame ZeroMQ will read: four times the request
/// limit, so a request somewhat too large still gets its `too_large` reply,
/// and a huge one (an 8 GiB frame header, say) costs nothing.
fn client_frame_limit_bytes(max_request_bytes: usize) -> i64 {
    i64::try_from(max_request_bytes.saturating_mul(4)).unwrap_or(i64::MAX)
}

/// One whole message from the ROUTER, without waiting (EAGAIN when none).
/// Frames stay ZeroMQ messages: the body is parsed where it lies, and its
/// connection's properties (Peer-Address) can be read.
fn receive_frames(router: &zmq::Socket) -> Result<Vec<zmq::Message>, zmq::Error> {
    let mut frames = vec![router.recv_msg(zmq::DONTWAIT)?];
    while frames.last().is_some_and(zmq::Message::get_more) {
        frames.push(router.recv_msg(0)?);
    }
    Ok(frames)
}

/// Whether the client that sent `frame` is on this machine. Admin
/// operations (moving leadership; membership later) are kept to it: any
/// client elsewhere could otherwise keep the cluster without a leader.
fn from_loopback(frame: &mut zmq::Message) -> bool {
    let address = frame.gets("Peer-Address").and_then(|text| text.parse::<std::net::IpAddr>().ok());
    address.is_some_and(|address| address.is_loopback())
}

/// Split ROUTER frames into the routing envelope (identity, and the empty
/// delimiter REQ and well-behaved DEALER clients send) and the one body frame.
fn split_envelope<F: std::ops::Deref<Target = [u8]>>(mut frames: Vec<F>) -> (Envelope, Option<F>) {
    let body_start = match frames.iter().skip(1).position(|frame| frame.is_empty()) {
        Some(delimiter) => delimiter + 2,
        None => 1.min(frames.len()),
    };
    let body_frames = frames.split_off(body_start);
    let body = if body_frames.len() == 1 { body_frames.into_iter().next() } else { None };
    (frames.iter().map(|frame| frame.to_vec()).collect(), body)
}

/// A reply of the event loop, encoded by the client listener: encoding
/// thousands of replies a turn is client work, kept off the control plane.
pub struct OutgoingReply {
    pub envelope: Envelope,
    pub id: Option<serde_json::Value>,
    pub body: ReplyBody,
}

/// One turn's replies, handed over at once and announced by one ring.
pub type ReplyBatch = Vec<OutgoingReply>;

/// Read every ring waiting on the doorbell socket (empty frames).
fn take_doorbells(replies: &zmq::Socket) -> Result<(), zmq::Error> {
    loop {
        match replies.recv_bytes(zmq::DONTWAIT) {
            Ok(_) => {}
            Err(zmq::Error::EAGAIN) => return Ok(()),
            Err(failure) => return Err(failure),
        }
    }
}

fn reply_now(router: &zmq::Socket, envelope: &Envelope, body: Vec<u8>) {
    send_to_client(router, envelope.iter().map(Vec::as_slice).chain(std::iter::once(body.as_slice())));
}

/// Never blocks: a client that is gone or not reading loses its reply.
fn send_to_client<F: Into<zmq::Message>>(router: &zmq::Socket, frames: impl IntoIterator<Item = F>) {
    if let Err(failure) = router.send_multipart(frames, zmq::DONTWAIT) {
        debug!("reply not delivered: {failure}");
    }
}

#[cfg(test)]
mod tests {
    use super::{from_loopback, split_envelope};

    #[test]
    fn admin_operations_are_for_clients_on_loopback_only() {
        let context = zmq::Context::new();
        let server = context.socket(zmq::ROUTER).unwrap();
        server.bind("tcp://127.0.0.1:*").unwrap();
        let endpoint = server.get_last_endpoint().unwrap().unwrap();
        let client = context.socket(zmq::DEALER).unwrap();
        client.connect(&endpoint).unwrap();
        client.send("hello", 0).unwrap();
        let mut identity = server.recv_msg(0).unwrap();
        let mut body = server.recv_msg(0).unwrap();
        assert!(from_loopback(&mut body), "a frame over tcp://127.0.0.1 is from loopback");
        assert!(from_loopback(&mut identity));
        // A frame without a TCP peer address (inproc, or made here) is not.
        assert!(!from_loopback(&mut zmq::Message::from("made here")));
    }

    #[test]
    fn splits_req_and_dealer_envelopes() {
        let req = vec![b"id".to_vec(), vec![], b"{}".to_vec()];
        assert_eq!(split_envelope(req), (vec![b"id".to_vec(), vec![]], Some(b"{}".to_vec())));
        let bare_dealer = vec![b"id".to_vec(), b"{}".to_vec()];
        assert_eq!(split_envelope(bare_dealer), (vec![b"id".to_vec()], Some(b"{}".to_vec())));
        let two_bodies = vec![b"id".to_vec(), vec![], b"a".to_vec(), b"b".to_vec()];
        assert_eq!(split_envelope(two_bodies).1, None);
        let no_body = vec![b"id".to_vec(), vec![]];
        assert_eq!(split_envelope(no_body).1, None);
    }
}
