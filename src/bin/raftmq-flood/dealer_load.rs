//! One DEALER socket carrying many logical clients, each keeping `window`
//! plain `put_message` requests (no session) in flight against one node.
//! A reply frees its slot and the client sends its next request at once,
//! or after `busy_backoff` when the reply said the request was not taken
//! (`busy`, `not_leader`).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::histogram::Histogram;

/// How a request was answered. `Other` covers every other reply, including
/// a plain `{"success":false}` and error codes this tool does not name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    Success,
    Busy,
    NotLeader,
    LeaderChanged,
    Timeout,
    Other,
}

impl ReplyKind {
    pub const ALL: [ReplyKind; 6] = [
        ReplyKind::Success,
        ReplyKind::Busy,
        ReplyKind::NotLeader,
        ReplyKind::LeaderChanged,
        ReplyKind::Timeout,
        ReplyKind::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ReplyKind::Success => "success",
            ReplyKind::Busy => "busy",
            ReplyKind::NotLeader => "not_leader",
            ReplyKind::LeaderChanged => "leader_changed",
            ReplyKind::Timeout => "timeout",
            ReplyKind::Other => "other",
        }
    }

    pub fn position(self) -> usize {
        ReplyKind::ALL.iter().position(|kind| *kind == self).expect("every kind is in ALL")
    }

    /// The node said at once that it did not take the request.
    fn was_refused(self) -> bool {
        matches!(self, ReplyKind::Busy | ReplyKind::NotLeader)
    }
}

/// Counts and latencies by reply kind.
#[derive(Debug, Clone, Default)]
pub struct ReplyTally {
    pub latencies: [Histogram; 6],
}

impl ReplyTally {
    pub fn of(&self, kind: ReplyKind) -> &Histogram {
        &self.latencies[kind.position()]
    }

    fn record(&mut self, kind: ReplyKind, latency: Duration) {
        self.latencies[kind.position()].record(latency.as_micros() as u64);
    }

    pub fn merge(&mut self, other: &ReplyTally) {
        for (mine, theirs) in self.latencies.iter_mut().zip(&other.latencies) {
            mine.merge(theirs);
        }
    }
}

/// What one socket saw.
#[derive(Debug, Default)]
pub struct SocketOutcome {
    pub sent: u64,
    pub replies: ReplyTally,
    /// Replies by kind that arrived before the flood stopped sending.
    pub during_flood: [u64; 6],
    /// Replies per second since the flood started, by kind.
    pub per_second: Vec<[u64; 6]>,
    /// Requests still without a reply when the grace period ended.
    pub unanswered_at_end: u64,
    /// Requests given up after `reply_timeout` (their client moved on).
    pub no_reply_in_time: u64,
    /// Replies to requests already given up.
    pub late_replies: u64,
    /// Replies that did not parse or named no request of ours.
    pub unmatched_replies: u64,
}

impl SocketOutcome {
    fn count_second(&mut self, second: usize, kind: ReplyKind) {
        if self.per_second.len() <= second {
            self.per_second.resize(second + 1, [0; 6]);
        }
        self.per_second[second][kind.position()] += 1;
    }
}

/// The flood's shape, shared by every socket.
pub struct LoadPlan {
    pub endpoint: String,
    pub topic: String,
    pub message_bytes: usize,
    pub window: usize,
    pub busy_backoff: Duration,
    pub reply_timeout: Duration,
    /// When the flood started; replies are counted per second since then.
    pub started: Instant,
    pub stop_sending_at: Instant,
    pub give_up_at: Instant,
}

#[derive(Deserialize)]
struct Reply {
    id: Option<u64>,
    success: Option<bool>,
    error: Option<String>,
}

fn classify(reply: &Reply) -> ReplyKind {
    match (reply.success, reply.error.as_deref()) {
        (Some(true), None) => ReplyKind::Success,
        (_, Some("busy")) => ReplyKind::Busy,
        (_, Some("not_leader")) => ReplyKind::NotLeader,
        (_, Some("leader_changed")) => ReplyKind::LeaderChanged,
        (_, Some("timeout")) => ReplyKind::Timeout,
        _ => ReplyKind::Other,
    }
}

/// A request id names its logical client in the high 32 bits.
fn request_id(client: u32, sequence: u32) -> u64 {
    (u64::from(client) << 32) | u64::from(sequence)
}

fn client_of(id: u64) -> u32 {
    (id >> 32) as u32
}

struct InFlight {
    sent_at: HashMap<u64, Instant>,
    /// (sent at, id) in send order, which is also expiry order.
    expiry_order: VecDeque<(Instant, u64)>,
}

pub struct DealerLoad<'a> {
    plan: &'a LoadPlan,
    socket: zmq::Socket,
    request_prefix: String,
    request_suffix: String,
    sequences: HashMap<u32, u32>,
    in_flight: InFlight,
    /// Clients waiting out their backoff, in the order they become ready.
    backing_off: VecDeque<(Instant, u32)>,
    outcome: SocketOutcome,
}

impl<'a> DealerLoad<'a> {
    pub fn connect(context: &zmq::Context, plan: &'a LoadPlan) -> Result<DealerLoad<'a>, String> {
        let socket = context.socket(zmq::DEALER).map_err(|e| e.to_string())?;
        socket.set_linger(0).map_err(|e| e.to_string())?;
        // No high-water mark: the window, not ZeroMQ, bounds what is in flight.
        socket.set_sndhwm(0).map_err(|e| e.to_string())?;
        socket.set_rcvhwm(0).map_err(|e| e.to_string())?;
        socket.connect(&plan.endpoint).map_err(|e| format!("cannot connect to {}: {e}", plan.endpoint))?;
        let topic = serde_json::to_string(&plan.topic).map_err(|e| e.to_string())?;
        let message = "m".repeat(plan.message_bytes);
        Ok(DealerLoad {
            plan,
            socket,
            request_prefix: format!(r#"{{"op":"put_message","topic":{topic},"message":"{message}","id":"#),
            request_suffix: "}".to_string(),
            sequences: HashMap::new(),
            in_flight: InFlight { sent_at: HashMap::new(), expiry_order: VecDeque::new() },
            backing_off: VecDeque::new(),
            outcome: SocketOutcome::default(),
        })
    }

    /// Drive `clients` until the plan stops sending and every request is
    /// answered, or the grace period ends.
    pub fn run(mut self, clients: &[u32]) -> Result<SocketOutcome, String> {
        for &client in clients {
            for _ in 0..self.plan.window {
                self.send(client)?;
            }
        }
        loop {
            let now = Instant::now();
            let sending = now < self.plan.stop_sending_at;
            if now >= self.plan.give_up_at || (!sending && self.in_flight.sent_at.is_empty()) {
                break;
            }
            self.wait_for_replies(now)?;
            self.receive_replies()?;
            self.give_up_on_silent_requests(Instant::now())?;
            self.send_after_backoff(Instant::now())?;
        }
        self.outcome.unanswered_at_end = self.in_flight.sent_at.len() as u64;
        Ok(self.outcome)
    }

    fn send(&mut self, client: u32) -> Result<(), String> {
        let sequence = self.sequences.entry(client).or_insert(0);
        let id = request_id(client, *sequence);
        *sequence = sequence.wrapping_add(1);
        let body = format!("{}{id}{}", self.request_prefix, self.request_suffix);
        let now = Instant::now();
        self.in_flight.sent_at.insert(id, now);
        self.in_flight.expiry_order.push_back((now, id));
        self.outcome.sent += 1;
        self.socket.send_multipart([&b""[..], body.as_bytes()], 0).map_err(|e| format!("send failed: {e}"))
    }

    /// Block until a reply is readable, a backoff ends or 10 ms pass
    /// (so the stop time and silent requests are noticed).
    fn wait_for_replies(&self, now: Instant) -> Result<(), String> {
        let mut wait = Duration::from_millis(10);
        if let Some((ready_at, _)) = self.backing_off.front() {
            wait = wait.min(ready_at.saturating_duration_since(now));
        }
        let mut items = [self.socket.as_poll_item(zmq::POLLIN)];
        zmq::poll(&mut items, wait.as_millis() as i64).map_err(|e| format!("poll failed: {e}"))?;
        Ok(())
    }

    fn receive_replies(&mut self) -> Result<(), String> {
        loop {
            let frames = match self.socket.recv_multipart(zmq::DONTWAIT) {
                Ok(frames) => frames,
                Err(zmq::Error::EAGAIN) => return Ok(()),
                Err(failure) => return Err(format!("receive failed: {failure}")),
            };
            self.on_reply(frames.last().map(Vec::as_slice).unwrap_or_default())?;
        }
    }

    fn on_reply(&mut self, body: &[u8]) -> Result<(), String> {
        let now = Instant::now();
        let Some((reply, id)) =
            serde_json::from_slice::<Reply>(body).ok().and_then(|reply| reply.id.map(|id| (reply, id)))
        else {
            self.outcome.unmatched_replies += 1;
            return Ok(());
        };
        let Some(sent_at) = self.in_flight.sent_at.remove(&id) else {
            self.outcome.late_replies += 1;
            return Ok(());
        };
        let kind = classify(&reply);
        self.outcome.replies.record(kind, now.duration_since(sent_at));
        let second = now.duration_since(self.plan.started).as_secs() as usize;
        self.outcome.count_second(second, kind);
        let sending = now < self.plan.stop_sending_at;
        if !sending {
            return Ok(());
        }
        self.outcome.during_flood[kind.position()] += 1;
        if kind.was_refused() && !self.plan.busy_backoff.is_zero() {
            self.backing_off.push_back((now + self.plan.busy_backoff, client_of(id)));
            return Ok(());
        }
        self.send(client_of(id))
    }

    /// A request unanswered for `reply_timeout` is counted and its client
    /// moves on, so a lost reply does not shrink the flood.
    fn give_up_on_silent_requests(&mut self, now: Instant) -> Result<(), String> {
        while let Some(&(sent_at, id)) = self.in_flight.expiry_order.front() {
            if !self.in_flight.sent_at.contains_key(&id) {
                self.in_flight.expiry_order.pop_front();
                continue;
            }
            if now.duration_since(sent_at) < self.plan.reply_timeout {
                return Ok(());
            }
            self.in_flight.expiry_order.pop_front();
            self.in_flight.sent_at.remove(&id);
            self.outcome.no_reply_in_time += 1;
            if now < self.plan.stop_sending_at {
                self.send(client_of(id))?;
            }
        }
        Ok(())
    }

    fn send_after_backoff(&mut self, now: Instant) -> Result<(), String> {
        while let Some(&(ready_at, client)) = self.backing_off.front() {
            if ready_at > now {
                break;
            }
            self.backing_off.pop_front();
            if now < self.plan.stop_sending_at {
                self.send(client)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(text: &str) -> ReplyKind {
        classify(&serde_json::from_str(text).unwrap())
    }

    #[test]
    fn replies_are_classified_by_their_error_code() {
        assert_eq!(kind_of(r#"{"success":true,"id":1}"#), ReplyKind::Success);
        assert_eq!(kind_of(r#"{"success":false,"error":"busy","detail":"x","id":1}"#), ReplyKind::Busy);
        assert_eq!(kind_of(r#"{"success":false,"error":"not_leader","leader":null}"#), ReplyKind::NotLeader);
        assert_eq!(kind_of(r#"{"success":false,"error":"leader_changed","leader":"a"}"#), ReplyKind::LeaderChanged);
        assert_eq!(kind_of(r#"{"success":false,"error":"timeout"}"#), ReplyKind::Timeout);
        assert_eq!(kind_of(r#"{"success":false}"#), ReplyKind::Other);
        assert_eq!(kind_of(r#"{"success":false,"error":"storage_failed"}"#), ReplyKind::Other);
    }

    #[test]
    fn request_ids_name_their_client() {
        let id = request_id(1023, u32::MAX);
        assert_eq!(client_of(id), 1023);
        assert_eq!(id & 0xffff_ffff, u64::from(u32::MAX));
    }
}
