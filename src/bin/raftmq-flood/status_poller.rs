//! One thread per node asks it for `status` every poll interval on a REQ
//! socket of its own, with a receive timeout, and keeps every answer. A REQ
//! socket that timed out cannot send again, so it is replaced.

use std::time::{Duration, Instant};

use serde::Deserialize;

/// What a node said about leadership.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NodeView {
    pub role: String,
    pub term: u64,
    pub leader: Option<usize>,
}

impl NodeView {
    /// The leader this node names: itself if it leads, else the one it knows.
    pub fn named_leader(&self, node: usize) -> Option<usize> {
        if self.role == "Leader" {
            Some(node)
        } else {
            self.leader
        }
    }
}

#[derive(Debug, Clone)]
pub struct Poll {
    pub node: usize,
    /// When the answer came (or the poll gave up), since the flood started.
    pub at: Duration,
    /// None when the node did not answer within the poll timeout.
    pub answer: Option<(Duration, NodeView)>,
}

pub struct PollPlan {
    pub interval: Duration,
    pub timeout: Duration,
    pub started: Instant,
    pub stop_at: Instant,
}

pub fn poll_node(context: &zmq::Context, node: usize, endpoint: &str, plan: &PollPlan) -> Result<Vec<Poll>, String> {
    let mut polls = Vec::new();
    let mut socket = connect(context, endpoint, plan.timeout)?;
    let mut next_poll_at = Instant::now();
    while next_poll_at < plan.stop_at {
        std::thread::sleep(next_poll_at.saturating_duration_since(Instant::now()));
        let asked_at = Instant::now();
        let answer = ask_status(&socket);
        let answered_at = Instant::now();
        if answer.is_none() {
            socket = connect(context, endpoint, plan.timeout)?;
        }
        let at = answered_at.duration_since(plan.started);
        polls.push(Poll { node, at, answer: answer.map(|view| (answered_at - asked_at, view)) });
        next_poll_at = (asked_at + plan.interval).max(answered_at);
    }
    Ok(polls)
}

fn connect(context: &zmq::Context, endpoint: &str, timeout: Duration) -> Result<zmq::Socket, String> {
    let socket = context.socket(zmq::REQ).map_err(|e| e.to_string())?;
    socket.set_linger(0).map_err(|e| e.to_string())?;
    socket.set_rcvtimeo(timeout.as_millis() as i32).map_err(|e| e.to_string())?;
    socket.set_sndtimeo(timeout.as_millis() as i32).map_err(|e| e.to_string())?;
    socket.connect(endpoint).map_err(|e| format!("cannot connect to {endpoint}: {e}"))?;
    Ok(socket)
}

/// None on a timeout or an answer that is not a status.
fn ask_status(socket: &zmq::Socket) -> Option<NodeView> {
    socket.send(&br#"{"op":"status"}"#[..], 0).ok()?;
    let reply = socket.recv_bytes(0).ok()?;
    serde_json::from_slice(&reply).ok()
}
