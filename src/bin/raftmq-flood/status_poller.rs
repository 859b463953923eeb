//! One thread per node asks it for `status` every poll interval on a REQ
//! socket of its own, with a receive timeout, and keeps every answer. A REQ
//! socket that timed out cannot send again, so it is replaced.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// What a node said about leadership.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
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
    /// Set when the load has finished early (every reply in).
    pub load_finished: AtomicBool,
}

/// Poll `node` until the plan stops. Node i starts i/`node_count` of an
/// interval late, so together the pollers look at the cluster `node_count`
/// times per interval.
pub fn poll_node(
    context: &zmq::Context,
    (node, node_count): (usize, usize),
    endpoint: &str,
    plan: &PollPlan,
) -> Result<Vec<Poll>, String> {
    let mut polls = Vec::new();
    let mut socket = connect(context, endpoint, plan.timeout)?;
    let mut next_poll_at = Instant::now() + plan.interval * node as u32 / node_count as u32;
    while next_poll_at < plan.stop_at && !plan.load_finished.load(Ordering::Relaxed) {
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

/// Every poll, in time order, one JSON object a line: when (s since the
/// flood started), which node, and its answer or `null` on a timeout.
pub fn write_polls(path: &std::path::Path, polls: &[Poll]) -> Result<(), String> {
    let mut ordered: Vec<&Poll> = polls.iter().collect();
    ordered.sort_by_key(|poll| poll.at);
    let mut text = String::new();
    for poll in ordered {
        let (latency_ms, view) = match &poll.answer {
            Some((latency, view)) => (Some(latency.as_secs_f64() * 1000.0), Some(view)),
            None => (None, None),
        };
        let at_s = poll.at.as_secs_f64();
        let line = serde_json::json!({"at_s": at_s, "node": poll.node, "latency_ms": latency_ms, "status": view});
        text.push_str(&line.to_string());
        text.push('\n');
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
