//! Topics in creation order, each a FIFO queue of messages. Deterministic:
//! the same commands in the same order give the same replies on every node.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::command::{Command, DecodeError, Session, SessionCommand};
use super::session::{EntryIndex, SessionCheck, SessionLimits, SessionTable};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueReply {
    Done,
    Refused,
    Topics(Vec<String>),
    Message(String),
    /// The request's seq is below the client's latest applied one: it was
    /// superseded, and its reply is no longer kept. Not applied.
    Stale {
        latest_seq: u64,
    },
}

#[derive(Debug, Default, Clone)]
pub struct QueueStateMachine {
    topic_order: Vec<String>,
    /// Messages are shared, not owned: cloning the whole state for a
    /// snapshot copies pointers, so the event loop hands a copy to the
    /// snapshot thread in milliseconds even with millions queued.
    queues: HashMap<String, VecDeque<Arc<str>>>,
    /// A checksum chained over every command applied: two replicas that
    /// applied the same commands agree on it (etcd's hashkv), so operators
    /// and tests can compare replicas without reading their queues.
    digest: u64,
    sessions: SessionTable,
}

impl QueueStateMachine {
    pub fn new() -> QueueStateMachine {
        QueueStateMachine::default()
    }

    pub fn with_session_limits(limits: SessionLimits) -> QueueStateMachine {
        QueueStateMachine { sessions: SessionTable::with_limits(limits), ..QueueStateMachine::default() }
    }

    /// Apply log entry `index`, given as its encoding, without re-encoding
    /// it for the digest. A request in a session is applied at most once:
    /// a retry gets the first reply back.
    pub fn apply_entry(&mut self, index: EntryIndex, data: &[u8]) -> Result<QueueReply, DecodeError> {
        let SessionCommand { session, command } = SessionCommand::decode(data)?;
        self.digest = chain_digest(self.digest, data);
        let reply = match &session {
            None => self.execute(&command),
            Some(Session { client_id, seq }) => self.execute_once(client_id, *seq, &command, index),
        };
        if !self.sessions.is_empty() {
            self.sessions.expire(index);
        }
        Ok(reply)
    }

    /// Answer a read-only command from the current state, changing nothing:
    /// the leader serves reads this way after ReadIndex, not through the log.
    /// None for a command that changes the state.
    pub fn query(&self, command: &Command) -> Option<QueueReply> {
        match command {
            Command::GetTopics => Some(QueueReply::Topics(self.topic_order.clone())),
            Command::PutTopic { .. } | Command::PutMessage { .. } | Command::GetMessage { .. } => None,
        }
    }

    fn execute_once(&mut self, client_id: &str, seq: u64, command: &Command, index: EntryIndex) -> QueueReply {
        match self.sessions.check(client_id, seq) {
            SessionCheck::New => {
                let reply = self.execute(command);
                self.sessions.record(client_id, seq, reply.clone(), index);
                reply
            }
            SessionCheck::Duplicate(reply) => {
                // A client still retrying is alive: keep its session fresh.
                self.sessions.record(client_id, seq, reply.clone(), index);
                reply
            }
            SessionCheck::Stale { latest_seq } => QueueReply::Stale { latest_seq },
        }
    }

    pub fn apply(&mut self, command: &Command) -> QueueReply {
        self.digest = chain_digest(self.digest, &command.encode());
        self.execute(command)
    }

    fn execute(&mut self, command: &Command) -> QueueReply {
        match command {
            Command::PutTopic { topic } => self.put_topic(topic),
            Command::GetTopics => QueueReply::Topics(self.topic_order.clone()),
            Command::PutMessage { topic, message } => match self.queues.get_mut(topic) {
                Some(queue) => {
                    queue.push_back(Arc::from(message.as_str()));
                    QueueReply::Done
                }
                None => QueueReply::Refused,
            },
            Command::GetMessage { topic } => match self.queues.get_mut(topic).and_then(|queue| queue.pop_front()) {
                Some(message) => QueueReply::Message(message.to_string()),
                None => QueueReply::Refused,
            },
        }
    }

    fn put_topic(&mut self, topic: &str) -> QueueReply {
        assert!(!topic.is_empty(), "the protocol layer rejects empty topics");
        if self.queues.contains_key(topic) {
            return QueueReply::Refused;
        }
        self.queues.insert(topic.to_owned(), VecDeque::new());
        self.topic_order.push(topic.to_owned());
        QueueReply::Done
    }

    pub fn topics(&self) -> &[String] {
        &self.topic_order
    }

    pub fn digest(&self) -> u64 {
        self.digest
    }

    pub fn restore_digest(&mut self, digest: u64) {
        self.digest = digest;
    }

    pub fn sessions(&self) -> &SessionTable {
        &self.sessions
    }

    pub fn sessions_mut(&mut self) -> &mut SessionTable {
        &mut self.sessions
    }

    /// Every topic in creation order with its queued messages, oldest first.
    pub fn topics_with_messages(&self) -> impl Iterator<Item = (&str, &VecDeque<Arc<str>>)> {
        self.topic_order.iter().map(|topic| (topic.as_str(), &self.queues[topic]))
    }

    /// Add a topic read from a snapshot, after those already restored.
    pub fn restore_topic(&mut self, topic: String, messages: VecDeque<Arc<str>>) -> Result<(), String> {
        if topic.is_empty() || self.queues.contains_key(&topic) {
            return Err(format!("snapshot holds an empty or repeated topic {topic:?}"));
        }
        self.topic_order.push(topic.clone());
        self.queues.insert(topic, messages);
        Ok(())
    }

    pub fn queue_length(&self, topic: &str) -> Option<usize> {
        self.queues.get(topic).map(VecDeque::len)
    }
}

/// crc32c of the command's encoding, folded into the running digest.
fn chain_digest(previous: u64, encoded: &[u8]) -> u64 {
    let checksum = crc32c::crc32c_append(previous as u32, encoded);
    previous.rotate_left(32) ^ u64::from(checksum)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put_topic(topic: &str) -> Command {
        Command::PutTopic { topic: topic.into() }
    }
    fn put(topic: &str, message: &str) -> Command {
        Command::PutMessage { topic: topic.into(), message: message.into() }
    }
    fn get(topic: &str) -> Command {
        Command::GetMessage { topic: topic.into() }
    }

    #[test]
    fn topics_listed_in_creation_order_and_never_duplicated() {
        let mut queues = QueueStateMachine::new();
        assert_eq!(queues.apply(&Command::GetTopics), QueueReply::Topics(vec![]));
        assert_eq!(queues.apply(&put_topic("b")), QueueReply::Done);
        assert_eq!(queues.apply(&put_topic("a")), QueueReply::Done);
        assert_eq!(queues.apply(&put_topic("b")), QueueReply::Refused);
        assert_eq!(queues.apply(&Command::GetTopics), QueueReply::Topics(vec!["b".into(), "a".into()]));
    }

    #[test]
    fn messages_come_out_first_in_first_out() {
        let mut queues = QueueStateMachine::new();
        queues.apply(&put_topic("t"));
        for message in ["1", "", "ü"] {
            assert_eq!(queues.apply(&put("t", message)), QueueReply::Done);
        }
        assert_eq!(queues.apply(&get("t")), QueueReply::Message("1".into()));
        assert_eq!(queues.apply(&get("t")), QueueReply::Message("".into()));
        assert_eq!(queues.apply(&get("t")), QueueReply::Message("ü".into()));
        assert_eq!(queues.apply(&get("t")), QueueReply::Refused, "empty topic");
    }

    #[test]
    fn missing_topic_refuses_put_and_get() {
        let mut queues = QueueStateMachine::new();
        assert_eq!(queues.apply(&put("nope", "m")), QueueReply::Refused);
        assert_eq!(queues.apply(&get("nope")), QueueReply::Refused);
        assert_eq!(queues.queue_length("nope"), None);
    }

    #[test]
    fn replicas_applying_the_same_commands_agree() {
        let commands = [put_topic("a"), put("a", "x"), put_topic("b"), get("a"), get("a"), put("b", "y")];
        let (mut first, mut second) = (QueueStateMachine::new(), QueueStateMachine::new());
        let replies_first: Vec<_> = commands.iter().map(|c| first.apply(c)).collect();
        let replies_second: Vec<_> = commands.iter().map(|c| second.apply(c)).collect();
        assert_eq!(replies_first, replies_second);
        assert_eq!(first.topics(), second.topics());
    }

    fn in_session(client_id: &str, seq: u64, command: Command) -> Vec<u8> {
        SessionCommand { session: Some(Session { client_id: client_id.into(), seq }), command }.encode()
    }

    #[test]
    fn query_answers_exactly_the_read_only_commands() {
        let queues = QueueStateMachine::new();
        for command in [put_topic("t"), Command::GetTopics, put("t", "m"), get("t")] {
            assert_eq!(queues.query(&command).is_some(), command.is_read_only(), "{command:?}");
        }
    }

    #[test]
    fn a_retried_put_is_enqueued_once_and_answered_alike() {
        let mut queues = QueueStateMachine::new();
        queues.apply(&put_topic("t"));
        let entry = in_session("c", 1, put("t", "m"));
        assert_eq!(queues.apply_entry(2, &entry), Ok(QueueReply::Done));
        assert_eq!(queues.apply_entry(3, &entry), Ok(QueueReply::Done));
        assert_eq!(queues.queue_length("t"), Some(1), "the retry was not applied");
    }

    #[test]
    fn a_retried_get_returns_the_same_message_instead_of_popping_another() {
        let mut queues = QueueStateMachine::new();
        queues.apply(&put_topic("t"));
        queues.apply(&put("t", "first"));
        queues.apply(&put("t", "second"));
        let get_first = in_session("c", 7, get("t"));
        assert_eq!(queues.apply_entry(4, &get_first), Ok(QueueReply::Message("first".into())));
        assert_eq!(queues.apply_entry(5, &get_first), Ok(QueueReply::Message("first".into())));
        assert_eq!(queues.apply_entry(6, &in_session("c", 8, get("t"))), Ok(QueueReply::Message("second".into())));
        assert_eq!(queues.apply_entry(7, &get_first), Ok(QueueReply::Stale { latest_seq: 8 }));
        assert_eq!(queues.queue_length("t"), Some(0));
    }

    #[test]
    fn sessions_expire_at_the_same_entry_on_every_replica() {
        let limits = SessionLimits { max_sessions: 2, idle_entries: 10 };
        let (mut first, mut second) =
            (QueueStateMachine::with_session_limits(limits), QueueStateMachine::with_session_limits(limits));
        for machine in [&mut first, &mut second] {
            machine.apply(&put_topic("t"));
            for (index, client) in ["a", "b", "a", "c"].iter().enumerate() {
                machine.apply_entry(index as u64 + 2, &in_session(client, 1, put("t", client))).unwrap();
            }
        }
        let clients = |machine: &QueueStateMachine| -> Vec<String> {
            machine.sessions().iter().map(|(client, _)| client.to_string()).collect()
        };
        assert_eq!(clients(&first), ["a", "c"], "b was least recently used: a's retry refreshed a");
        assert_eq!(clients(&first), clients(&second));
        assert_eq!(first.queue_length("t"), Some(3), "a's second seq-1 put was a duplicate");
        first.apply_entry(100, &in_session("d", 1, put("t", "d"))).unwrap();
        assert_eq!(clients(&first), ["d"], "the idle sessions expired by log index");
    }
}
