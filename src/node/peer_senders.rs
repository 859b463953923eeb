//! One DEALER socket per peer, owned by the event loop. Sends never block:
//! a message to a peer that is down or backed up is dropped, which Raft
//! tolerates (heartbeats retry), rather than stalling the leader.

use log::debug;

use super::network_faults::NetworkFaults;
use super::peer_codec::{self, FrameHeader};
use super::peer_security::PeerSecurity;
use crate::config::ClusterConfig;
use crate::raft::{Message, NodeId};

pub struct PeerSenders {
    /// Every frame this node sends starts with it.
    header: FrameHeader,
    sockets: Vec<Option<zmq::Socket>>,
    buffer: Vec<u8>,
    faults: NetworkFaults,
}

impl PeerSenders {
    pub fn connect(
        context: &zmq::Context,
        config: &ClusterConfig,
        me: NodeId,
        security: &PeerSecurity,
        faults: NetworkFaults,
    ) -> Result<PeerSenders, String> {
        let mut sockets = Vec::with_capacity(config.node_count());
        for peer in 0..config.node_count() {
            if peer == me {
                sockets.push(None);
                continue;
            }
            let endpoint = config.peer_endpoint(peer);
            let socket = context.socket(zmq::DEALER).map_err(|e| e.to_string())?;
            let configure = || -> Result<(), zmq::Error> {
                socket.set_linger(0)?;
                socket.set_sndhwm(10_000)?;
                // Queue nothing for a peer that is not connected: after it
                // restarts it should get fresh messages, not a stale backlog.
                socket.set_immediate(true)?;
                socket.set_reconnect_ivl(20)?;
                socket.set_reconnect_ivl_max(200)?;
                if let PeerSecurity::Curve(keys) = security {
                    socket.set_curve_serverkey(&keys.members[peer])?;
                    socket.set_curve_publickey(&keys.public_key)?;
                    socket.set_curve_secretkey(&keys.secret_key)?;
                }
                socket.connect(&endpoint)
            };
            configure().map_err(|e| format!("cannot connect to peer {peer} at {endpoint}: {e}"))?;
            sockets.push(Some(socket));
        }
        let header = FrameHeader { cluster_id: config.cluster_hash(), from: me };
        Ok(PeerSenders { header, sockets, buffer: Vec::with_capacity(64 * 1024), faults })
    }

    pub fn send(&mut self, to: NodeId, message: &Message) {
        let Some(Some(socket)) = self.sockets.get(to) else {
            return;
        };
        if self.faults.current().drops_to(to) {
            return;
        }
        peer_codec::encode(self.header, message, &mut self.buffer);
        if let Err(failure) = socket.send(self.buffer.as_slice(), zmq::DONTWAIT) {
            debug!("message to node {to} dropped: {failure}");
        }
    }
}
