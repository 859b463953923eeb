//! Simulated clients of the real shell. Each client sends one request at a
//! time, writes in an exactly-once session (a retry reuses the seq), and
//! retries a failed write at another node until it succeeds. What comes
//! back is checked as it arrives:
//! - every request gets exactly one reply, and a node that stays up
//!   answers every request within its deadline;
//! - a success reply to a write means its entry committed;
//! - a message is delivered at most once (exactly-once gets);
//! - a read reflects every write committed before it was sent, and none
//!   that was not committed (linearizable reads).
//!
//! At the end, every acknowledged message was delivered or is still queued.

use std::collections::{BTreeMap, HashMap};

use raftmq::protocol::{ErrorCode, ReplyBody};
use raftmq::queue::{Command, QueueReply, Session};
use raftmq::raft::NodeId;
use raftmq::shell::{ClientCommand, Envelope};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::invariants::Checker;

const TOPICS: [&str; 3] = ["alpha", "beta", "gamma"];

struct Client {
    id: String,
    seq: u64,
    /// The write being sent (and retried), or None between operations.
    current: Option<Command>,
    target: NodeId,
    next_send_ms: u64,
    busy: bool,
}

enum Kind {
    Write {
        seq: u64,
        command: Command,
    },
    /// A read sent when everything through `must_see` had committed.
    Read {
        must_see: u64,
    },
}

struct Outstanding {
    client: usize,
    node: NodeId,
    incarnation: u64,
    sent_ms: u64,
    kind: Kind,
}

pub struct Clients {
    clients: Vec<Client>,
    outstanding: HashMap<u64, Outstanding>,
    next_request: u64,
    /// Message -> topic of every acknowledged put.
    acknowledged: BTreeMap<String, String>,
    /// Message -> (client, seq) of the get that delivered it.
    delivered: HashMap<String, (String, u64)>,
    /// No new operations: clients only finish what they started.
    pub draining: bool,
    /// A node that stays up must answer within this.
    reply_limit_ms: u64,
    pub replies_checked: u64,
    pub reads_checked: u64,
    pub writes_acknowledged: u64,
}

/// What a client sends now: to which node, and the request.
pub struct Send {
    pub node: NodeId,
    pub command: ClientCommand,
}

impl Clients {
    pub fn new(count: usize, nodes: usize, reply_limit_ms: u64) -> Clients {
        let clients = (0..count)
            .map(|number| Client {
                id: format!("client-{number}"),
                seq: 0,
                current: None,
                target: number % nodes.max(1),
                next_send_ms: 0,
                busy: false,
            })
            .collect();
        Clients {
            clients,
            outstanding: HashMap::new(),
            next_request: 0,
            acknowledged: BTreeMap::new(),
            delivered: HashMap::new(),
            draining: false,
            reply_limit_ms,
            replies_checked: 0,
            reads_checked: 0,
            writes_acknowledged: 0,
        }
    }

    /// True once no client has work left.
    pub fn idle(&self) -> bool {
        self.clients.iter().all(|client| client.current.is_none() && !client.busy)
    }

    /// Requests to send this millisecond. `incarnations[n]` is None while node n is down.
    pub fn due(
        &mut self,
        now_ms: u64,
        rng: &mut ChaCha8Rng,
        checker: &Checker,
        incarnations: &[Option<u64>],
    ) -> Vec<Send> {
        let mut sends = Vec::new();
        if incarnations.iter().all(Option::is_none) {
            return sends;
        }
        for number in 0..self.clients.len() {
            let client = &mut self.clients[number];
            if client.busy || now_ms < client.next_send_ms {
                continue;
            }
            if client.current.is_none() {
                if self.draining {
                    continue;
                }
                if rng.gen_range(0..4) == 0 {
                    // A read, outside the session: served by ReadIndex.
                    let node = pick_node(client.target, rng, incarnations);
                    let must_see = checker.highest_committed();
                    sends.push(self.send(number, node, now_ms, Kind::Read { must_see }, incarnations));
                    continue;
                }
                client.seq += 1;
                let topic = TOPICS[rng.gen_range(0..TOPICS.len())].to_string();
                client.current = Some(match rng.gen_range(0..5) {
                    0 => Command::PutTopic { topic },
                    1 | 2 => Command::PutMessage { topic, message: format!("{}-{}", client.id, client.seq) },
                    _ => Command::GetMessage { topic },
                });
            }
            let client = &mut self.clients[number];
            let node = pick_node(client.target, rng, incarnations);
            let kind = Kind::Write { seq: client.seq, command: client.current.clone().expect("set above") };
            sends.push(self.send(number, node, now_ms, kind, incarnations));
        }
        sends
    }

    fn send(&mut self, client: usize, node: NodeId, now_ms: u64, kind: Kind, incarnations: &[Option<u64>]) -> Send {
        self.next_request += 1;
        let request = self.next_request;
        let (session, command) = match &kind {
            Kind::Write { seq, command } => {
                (Some(Session { client_id: self.clients[client].id.clone(), seq: *seq }), command.clone())
            }
            Kind::Read { .. } => (None, Command::GetTopics),
        };
        let incarnation = incarnations[node].expect("requests go to live nodes");
        self.outstanding.insert(request, Outstanding { client, node, incarnation, sent_ms: now_ms, kind });
        self.clients[client].busy = true;
        let envelope: Envelope = vec![request.to_le_bytes().to_vec()];
        Send { node, command: ClientCommand { envelope, id: None, session, command } }
    }

    /// A node answered. Checks it, and moves the client on or makes it retry.
    pub fn on_reply(
        &mut self,
        node: NodeId,
        envelope: &Envelope,
        body: &ReplyBody,
        now_ms: u64,
        checker: &Checker,
    ) -> Result<(), String> {
        let request = envelope
            .first()
            .and_then(|frame| frame.as_slice().try_into().ok())
            .map(u64::from_le_bytes)
            .ok_or("a reply without a request envelope")?;
        let Some(outstanding) = self.outstanding.remove(&request) else {
            return Err(format!("node {node} answered request {request} a second time (or one never sent): {body:?}"));
        };
        if outstanding.node != node {
            return Err(format!("request {request} went to node {} but node {node} answered it", outstanding.node));
        }
        self.replies_checked += 1;
        let client = outstanding.client;
        self.clients[client].busy = false;
        match outstanding.kind {
            Kind::Read { must_see } => self.on_read_reply(body, must_see, checker),
            Kind::Write { seq, command } => self.on_write_reply(client, seq, &command, body, now_ms, checker),
        }
    }

    fn on_read_reply(&mut self, body: &ReplyBody, must_see: u64, checker: &Checker) -> Result<(), String> {
        let ReplyBody::Queue(QueueReply::Topics(topics)) = body else {
            return Ok(()); // refused or timed out: nothing was read
        };
        self.reads_checked += 1;
        let committed = checker.topics_through(u64::MAX);
        for required in checker.topics_through(must_see) {
            if !topics.contains(&required) {
                return Err(format!("stale read: topic {required} committed before the read began is missing"));
            }
        }
        if let Some(unknown) = topics.iter().find(|topic| !committed.contains(*topic)) {
            return Err(format!("a read returned topic {unknown}, which never committed"));
        }
        Ok(())
    }

    fn on_write_reply(
        &mut self,
        client: usize,
        seq: u64,
        command: &Command,
        body: &ReplyBody,
        now_ms: u64,
        checker: &Checker,
    ) -> Result<(), String> {
        let id = self.clients[client].id.clone();
        match body {
            ReplyBody::Queue(QueueReply::Stale { latest_seq }) => {
                Err(format!("{id} seq {seq} answered stale (latest {latest_seq}): its retry lost its reply"))
            }
            ReplyBody::Queue(reply) => {
                if !checker.session_committed(&id, seq) {
                    return Err(format!("{id} seq {seq} got {reply:?} but no entry of it committed"));
                }
                self.writes_acknowledged += 1;
                match (command, reply) {
                    (Command::PutMessage { topic, message }, QueueReply::Done) => {
                        self.acknowledged.insert(message.clone(), topic.clone());
                    }
                    (Command::GetMessage { .. }, QueueReply::Message(message)) => {
                        if let Some((other, other_seq)) = self.delivered.get(message) {
                            return Err(format!(
                                "message {message} delivered twice: to {other} seq {other_seq} and {id} seq {seq}"
                            ));
                        }
                        self.delivered.insert(message.clone(), (id, seq));
                    }
                    _ => {}
                }
                self.clients[client].current = None;
                Ok(())
            }
            ReplyBody::Error { code, leader, .. } => {
                let hinted = leader.clone().flatten().and_then(|address| parse_node(&address));
                let retry = &mut self.clients[client];
                retry.target = hinted.unwrap_or(retry.target + 1);
                // Back off a little, more when the node is overloaded.
                retry.next_send_ms = now_ms + if *code == ErrorCode::Busy { 20 } else { 5 };
                Ok(())
            }
            ReplyBody::Status(_) => Err("a queue request answered with a status".to_string()),
        }
    }

    /// Requests whose node crashed or exited lose their connection: the
    /// client retries elsewhere. A request to a node that stayed up and
    /// is still unanswered past the limit is a hang.
    pub fn check_timeouts(&mut self, now_ms: u64, incarnations: &[Option<u64>]) -> Result<(), String> {
        let mut lost = Vec::new();
        for (&request, outstanding) in &self.outstanding {
            if incarnations[outstanding.node] != Some(outstanding.incarnation) {
                lost.push(request);
            } else if now_ms > outstanding.sent_ms + self.reply_limit_ms {
                return Err(format!(
                    "request {request} to node {} sent at {} ms is unanswered at {now_ms} ms",
                    outstanding.node, outstanding.sent_ms
                ));
            }
        }
        for request in lost {
            let outstanding = self.outstanding.remove(&request).expect("just seen");
            let client = &mut self.clients[outstanding.client];
            client.busy = false;
            client.target = outstanding.node + 1;
            client.next_send_ms = now_ms + 5;
        }
        Ok(())
    }

    /// Nothing acknowledged is lost: every acknowledged message was
    /// delivered or is still queued in `remaining` (topic -> messages).
    pub fn check_nothing_lost(&self, remaining: &HashMap<String, Vec<String>>) -> Result<(), String> {
        for (message, topic) in &self.acknowledged {
            let queued = remaining.get(topic).is_some_and(|messages| messages.contains(message));
            if !queued && !self.delivered.contains_key(message) {
                return Err(format!("acknowledged message {message} on {topic} was lost"));
            }
            if queued && self.delivered.contains_key(message) {
                return Err(format!("message {message} was delivered and is still queued"));
            }
        }
        Ok(())
    }
}

/// The client endpoint the simulator gives node n.
pub fn node_endpoint(node: NodeId) -> String {
    format!("sim://node/{node}")
}

fn parse_node(address: &str) -> Option<NodeId> {
    address.strip_prefix("sim://node/")?.parse().ok()
}

/// The client's target if it is up, else a random live node.
fn pick_node(target: NodeId, rng: &mut ChaCha8Rng, incarnations: &[Option<u64>]) -> NodeId {
    let target = target % incarnations.len();
    if incarnations[target].is_some() {
        return target;
    }
    let live: Vec<NodeId> = (0..incarnations.len()).filter(|&node| incarnations[node].is_some()).collect();
    live[rng.gen_range(0..live.len())]
}
