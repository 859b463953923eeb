//! The peer listener thread: a ROUTER socket receiving Raft messages from
//! the other nodes' DEALER sockets. It decodes and forwards; a message that
//! does not decode is logged and dropped (Raft tolerates lost messages).

use crossbeam_channel::Sender;
use log::warn;

use super::listener::Listener;
use super::network_faults::NetworkFaults;
use super::peer_codec;
use crate::shell::Input;

pub struct PeerListener {
    pub endpoint: String,
    pub node_count: usize,
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
        let router = context.socket(zmq::ROUTER).map_err(|e| e.to_string())?;
        router.set_linger(0).map_err(|e| e.to_string())?;
        router.set_rcvhwm(100_000).map_err(|e| e.to_string())?;
        router.bind(&self.endpoint).map_err(|e| format!("cannot bind peer socket {}: {e}", self.endpoint))?;
        Ok(router)
    }

    fn serve(&self, router: &zmq::Socket) -> Result<(), zmq::Error> {
        let mut faults = NetworkFaults::new(self.faults_file.clone(), self.node_count);
        loop {
            let frames = router.recv_multipart(0)?;
            let Some(body) = frames.last() else { continue };
            match peer_codec::decode(body) {
                Ok((from, _)) if faults.current().drops_from(from) => {}
                Ok((from, message)) if from < self.node_count => {
                    if self.inputs.send(Input::Peer { from, message }).is_err() {
                        return Ok(()); // the event loop has ended
                    }
                }
                Ok((from, _)) => warn!("dropping a message from unknown node {from}"),
                Err(failure) => warn!("dropping a peer message: {failure}"),
            }
        }
    }
}
