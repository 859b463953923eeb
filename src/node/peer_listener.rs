//! The peer listener thread: a ROUTER socket receiving Raft messages from
//! the other nodes' DEALER sockets. It decodes, checks that the frame comes
//! from a node of this cluster's configuration, and forwards. Anything else
//! is dropped (Raft tolerates lost messages) with a rate-limited warning:
//! a node of another cluster left on reused ports must not depose a leader,
//! nor flood the log.

use std::collections::HashMap;
use std::time::Instant;

use crossbeam_channel::Sender;
use log::warn;

use super::listener::Listener;
use super::network_faults::NetworkFaults;
use super::peer_codec;
use super::peer_security::{enforce_zap, PeerSecurity, PEER_ZAP_DOMAIN};
use crate::raft::{Message, NodeId};
use crate::rate_limited::RateLimited;
use crate::shell::Input;

/// How long a peer connection may take to complete ZeroMQ's handshake.
const PEER_HANDSHAKE_TIMEOUT_MS: i32 = 5_000;

/// The largest peer frame read; see `bind`.
const PEER_FRAME_LIMIT_BYTES: i64 = 16 << 20;

pub struct PeerListener {
    pub endpoint: String,
    pub admission: Admission,
    pub security: PeerSecurity,
    pub inputs: Sender<Input>,
    /// Testing only: the network fault switch's file.
    pub faults_file: Option<std::path::PathBuf>,
}

impl Listener for PeerListener {
    type Sockets = zmq::Socket;

    fn name(&self) -> &'static str {
        "peer-listener"
    }

    fn bind(&self, context: &zmq::Context) -> Result<zmq::Socket, String> {
        let mut router = context.socket(zmq::ROUTER).map_err(|e| e.to_string())?;
        router.set_linger(0).map_err(|e| e.to_string())?;
        // A connection that has not completed ZeroMQ's handshake (a bare
        // TCP connection, or a CURVE HELLO never finished) holds a
        // descriptor; libzmq's default lets it for 30 s.
        router.set_handshake_ivl(PEER_HANDSHAKE_TIMEOUT_MS).map_err(|e| e.to_string())?;
        router.set_rcvhwm(100_000).map_err(|e| e.to_string())?;
        // No honest peer frame comes near this (an AppendEntries stops
        // adding entries at 1 MiB, a snapshot chunk is 1 MiB): a larger one
        // is refused by ZeroMQ before it is buffered.
        router.set_maxmsgsize(PEER_FRAME_LIMIT_BYTES).map_err(|e| e.to_string())?;
        if let PeerSecurity::Curve(keys) = &self.security {
            // The ZAP handler, bound before this socket, admits members only.
            router.set_curve_server(true).map_err(|e| e.to_string())?;
            router.set_curve_secretkey(&keys.secret_key).map_err(|e| e.to_string())?;
            router.set_zap_domain(PEER_ZAP_DOMAIN).map_err(|e| e.to_string())?;
            enforce_zap(&mut router)?;
        }
        router.bind(&self.endpoint).map_err(|e| format!("cannot bind peer socket {}: {e}", self.endpoint))?;
        Ok(router)
    }

    fn serve(&self, router: &zmq::Socket) -> Result<(), zmq::Error> {
        let mut faults = NetworkFaults::new(self.faults_file.clone(), self.admission.node_count);
        let mut warnings = DropWarnings::default();
        loop {
            let (body, authenticated) = receive_frame(router)?;
            let admitted = match authenticated {
                Authenticated::Node(node) => self.admission.admit_from(&body, node),
                Authenticated::Nobody if matches!(self.security, PeerSecurity::Unauthenticated) => {
                    self.admission.admit(&body)
                }
                Authenticated::Nobody => {
                    Err((DropReason::UnknownSender, "a frame without a member's CURVE identity".into()))
                }
            };
            match admitted {
                Ok((from, _)) if faults.current().drops_from(from) => {}
                Ok((from, message)) => {
                    if self.inputs.send(Input::Peer { from, message }).is_err() {
                        return Ok(()); // the event loop has ended
                    }
                }
                Err((reason, detail)) => {
                    if let Some(line) = warnings.note(reason, &detail, Instant::now()) {
                        warn!("{line}");
                    }
                }
            }
        }
    }
}

/// Whom ZAP authenticated a frame as.
enum Authenticated {
    Node(NodeId),
    Nobody,
}

/// One peer frame (the last part of a message; the first is the routing
/// id) and the node its connection authenticated as, if any.
fn receive_frame(router: &zmq::Socket) -> Result<(zmq::Message, Authenticated), zmq::Error> {
    let mut part = router.recv_msg(0)?;
    while part.get_more() {
        part = router.recv_msg(0)?;
    }
    let authenticated = match part.gets("User-Id").and_then(|user| user.parse::<NodeId>().ok()) {
        Some(node) => Authenticated::Node(node),
        None => Authenticated::Nobody,
    };
    Ok((part, authenticated))
}

/// Which frames a node accepts: those of its own cluster, from another node
/// of its configuration, naming that same node inside the message.
#[derive(Debug, Clone, Copy)]
pub struct Admission {
    pub cluster_id: u64,
    pub me: NodeId,
    pub node_count: usize,
}

/// Why a frame was dropped; warnings are rate-limited per reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    Undecodable,
    OtherCluster,
    UnknownSender,
}

impl DropReason {
    fn describe(self) -> &'static str {
        match self {
            DropReason::Undecodable => "undecodable",
            DropReason::OtherCluster => "from another cluster",
            DropReason::UnknownSender => "from a sender not in this cluster's configuration",
        }
    }
}

impl Admission {
    /// `admit`, for a frame whose connection CURVE authenticated as
    /// member `node`: it may speak only for itself.
    pub fn admit_from(&self, frame: &[u8], node: NodeId) -> Result<(NodeId, Message), (DropReason, String)> {
        let (from, message) = self.admit(frame)?;
        if from != node {
            return Err((DropReason::UnknownSender, format!("node {node} (by its key) sent a frame as node {from}")));
        }
        Ok((from, message))
    }

    pub fn admit(&self, frame: &[u8]) -> Result<(NodeId, Message), (DropReason, String)> {
        let (header, message) =
            peer_codec::decode(frame).map_err(|failure| (DropReason::Undecodable, failure.to_string()))?;
        if header.cluster_id != self.cluster_id {
            return Err((
                DropReason::OtherCluster,
                format!(
                    "cluster id {:016x} (ours is {:016x}), node {}",
                    header.cluster_id, self.cluster_id, header.from
                ),
            ));
        }
        let from = header.from;
        if from >= self.node_count || from == self.me {
            return Err((
                DropReason::UnknownSender,
                format!("node {from} (we are node {} of {})", self.me, self.node_count),
            ));
        }
        match claimed_sender(&message) {
            Some(claimed) if claimed != from => {
                Err((DropReason::UnknownSender, format!("node {from} sent a message in the name of node {claimed}")))
            }
            _ => Ok((from, message)),
        }
    }
}

/// The node a message names as its author, for the kinds that name one.
fn claimed_sender(message: &Message) -> Option<NodeId> {
    match message {
        Message::RequestVote(m) | Message::PreVote(m) => Some(m.candidate),
        Message::AppendEntries(m) => Some(m.leader),
        Message::InstallSnapshot(m) => Some(m.leader),
        Message::TimeoutNow(m) => Some(m.leader),
        Message::RequestVoteResponse(_)
        | Message::PreVoteResponse(_)
        | Message::AppendEntriesResponse(_)
        | Message::InstallSnapshotResponse(_)
        | Message::TermQuery(_)
        | Message::TermAnswer(_) => None,
    }
}

/// At most one warning line per second per reason; each line counts the
/// frames dropped for that reason since the previous line.
#[derive(Debug, Default)]
pub struct DropWarnings {
    by_reason: HashMap<DropReason, RateLimited<Instant>>,
}

impl DropWarnings {
    /// Count a dropped frame; the line to log, if one is due.
    pub fn note(&mut self, reason: DropReason, detail: &str, now: Instant) -> Option<String> {
        let dropped = self.by_reason.entry(reason).or_default().note(now)?;
        Some(format!("dropped {dropped} peer frame(s) {}; latest: {detail}", reason.describe()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::peer_codec::FrameHeader;
    use crate::raft::{AppendEntries, RequestVoteResponse, TimeoutNow};
    use std::time::Duration;

    const OURS: Admission = Admission { cluster_id: 42, me: 0, node_count: 3 };

    fn frame(cluster_id: u64, from: NodeId, message: &Message) -> Vec<u8> {
        let mut out = Vec::new();
        peer_codec::encode(FrameHeader { cluster_id, from }, message, &mut out);
        out
    }

    fn heartbeat(leader: NodeId) -> Message {
        Message::AppendEntries(AppendEntries {
            term: 99,
            leader,
            prev_log_index: 0,
            prev_log_term: 0,
            entries: vec![],
            leader_commit: 0,
            read_round: 0,
        })
    }

    #[test]
    fn a_frame_of_this_cluster_from_a_peer_is_admitted() {
        assert_eq!(OURS.admit(&frame(42, 2, &heartbeat(2))), Ok((2, heartbeat(2))));
        let reply = Message::RequestVoteResponse(RequestVoteResponse { term: 1, vote_granted: true });
        assert_eq!(OURS.admit(&frame(42, 1, &reply)), Ok((1, reply)));
    }

    #[test]
    fn a_frame_of_another_cluster_is_dropped() {
        let (reason, detail) = OURS.admit(&frame(43, 2, &heartbeat(2))).unwrap_err();
        assert_eq!(reason, DropReason::OtherCluster);
        assert!(detail.contains("000000000000002b"), "{detail}");
    }

    #[test]
    fn senders_outside_the_configuration_or_speaking_for_another_are_dropped() {
        for (from, message) in [
            (3, heartbeat(3)),
            (0, heartbeat(0)),
            (1, heartbeat(2)),
            (2, Message::TimeoutNow(TimeoutNow { term: 5, leader: 1 })),
        ] {
            let (reason, _) = OURS.admit(&frame(42, from, &message)).unwrap_err();
            assert_eq!(reason, DropReason::UnknownSender, "{from} {message:?}");
        }
        assert_eq!(OURS.admit(b"\x03garbage").unwrap_err().0, DropReason::Undecodable);
    }

    #[test]
    fn warnings_come_at_most_once_a_second_per_reason_and_count_the_drops() {
        let mut warnings = DropWarnings::default();
        let start = Instant::now();
        let at = |millis| start + Duration::from_millis(millis);
        let first = warnings.note(DropReason::OtherCluster, "a", at(0)).unwrap();
        assert!(first.starts_with("dropped 1 peer frame(s) from another cluster"), "{first}");
        for millis in (100..1000).step_by(100) {
            assert_eq!(warnings.note(DropReason::OtherCluster, "b", at(millis)), None);
        }
        assert!(warnings.note(DropReason::Undecodable, "c", at(500)).is_some(), "reasons are limited apart");
        let next = warnings.note(DropReason::OtherCluster, "d", at(1000)).unwrap();
        assert!(next.starts_with("dropped 10 peer frame(s)") && next.ends_with("latest: d"), "{next}");
    }
}
