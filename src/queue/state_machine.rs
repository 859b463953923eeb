//! Topics in creation order, each a FIFO queue of messages. Deterministic:
//! the same commands in the same order give the same replies on every node.

use std::collections::HashMap;
use std::sync::Arc;

use super::command::{Command, DecodeError, Session, SessionCommand};
use super::limits::{MAX_QUEUED_MESSAGE_BYTES, MAX_TOPICS, MAX_TOPIC_NAME_BYTES};
use super::session::{EntryIndex, SessionCheck, SessionLimits, SessionTable};

/// The state machine's answer to one command; the protocol layer turns it
/// into a reply frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueReply {
    /// The command took effect (`put_topic`, `put_message`).
    Done,
    /// The command was valid but could not apply: the topic exists (or is
    /// empty) for `put_topic`; no such topic for `put_message`; no such topic
    /// or an empty queue for `get_message`. Not applied.
    Refused,
    /// `get_topics`: every topic, in creation order.
    Topics(Vec<String>),
    /// `get_message`: the message taken from the front of the queue.
    Message(String),
    /// The request's seq is below the client's latest applied one: it was
    /// superseded, and its reply is no longer kept. Not applied.
    Stale {
        /// The highest seq this client has had applied.
        latest_seq: u64,
    },
    /// A retry of the client's latest request, which was applied, but whose
    /// reply the session no longer keeps (`SessionLimits::max_bytes`). Not
    /// applied again.
    ReplyDropped,
    /// `put_message` would take the bytes queued over
    /// `MAX_QUEUED_MESSAGE_BYTES`. Not applied.
    QueueFull,
    /// `put_topic` of a new topic when `MAX_TOPICS` exist. Not applied.
    TooManyTopics,
    /// `put_topic` of a name longer than `MAX_TOPIC_NAME_BYTES`; requests
    /// are checked when parsed, so only an entry made otherwise gets it.
    TopicNameTooLong,
    /// A request that would open a session while every session that could
    /// make room for it was used too recently (see session.rs). Not
    /// applied, and no session is opened.
    TooManySessions,
}

/// One topic's messages, oldest first; cheap to clone (see `queues`).
pub type MessageQueue = imbl::Vector<Arc<str>>;

/// The replicated queue state: topics in creation order, each a FIFO of
/// messages, plus the client sessions that make requests exactly-once.
#[derive(Debug, Default, Clone)]
pub struct QueueStateMachine {
    topic_order: Vec<String>,
    /// Each queue is a persistent vector (an RRB tree whose nodes are
    /// shared between copies): cloning the whole state for a snapshot costs
    /// one pointer per topic, not one per message, so the event loop hands
    /// a copy to the snapshot thread in microseconds even with millions
    /// queued (a `VecDeque` copy of a million messages held the loop, and
    /// with it the heartbeats, for about 100 ms).
    queues: HashMap<String, MessageQueue>,
    /// Bytes of every message in `queues`, kept as they are pushed and
    /// popped, so the `MAX_QUEUED_MESSAGE_BYTES` check costs no scan.
    queued_message_bytes: u64,
    /// A checksum chained over every command applied: two replicas that
    /// applied the same commands agree on it (etcd's hashkv), so operators
    /// and tests can compare replicas without reading their queues.
    digest: u64,
    sessions: SessionTable,
}

impl QueueStateMachine {
    /// An empty state with the default [`SessionLimits`].
    pub fn new() -> QueueStateMachine {
        QueueStateMachine::default()
    }

    /// An empty state whose sessions obey `limits`; every replica of a
    /// cluster must use the same limits.
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
            SessionCheck::New
                if !self.sessions.contains(client_id) && !self.sessions.admits_new_session(client_id, index) =>
            {
                QueueReply::TooManySessions
            }
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

    fn execute(&mut self, command: &Command) -> QueueReply {
        match command {
            Command::PutTopic { topic } => self.put_topic(topic),
            Command::GetTopics => QueueReply::Topics(self.topic_order.clone()),
            Command::PutMessage { topic, message } => self.put_message(topic, message),
            Command::GetMessage { topic } => match self.queues.get_mut(topic).and_then(|queue| queue.pop_front()) {
                Some(message) => {
                    self.queued_message_bytes -= message.len() as u64;
                    QueueReply::Message(message.to_string())
                }
                None => QueueReply::Refused,
            },
        }
    }

    fn put_message(&mut self, topic: &str, message: &str) -> QueueReply {
        let Some(queue) = self.queues.get_mut(topic) else {
            return QueueReply::Refused;
        };
        let queued_after = self.queued_message_bytes + message.len() as u64;
        if queued_after > MAX_QUEUED_MESSAGE_BYTES {
            return QueueReply::QueueFull;
        }
        queue.push_back(Arc::from(message));
        self.queued_message_bytes = queued_after;
        QueueReply::Done
    }

    fn put_topic(&mut self, topic: &str) -> QueueReply {
        // The protocol layer rejects empty topics, but a log entry comes from
        // a peer or the disk: refuse it the same way on every replica.
        if topic.is_empty() {
            return QueueReply::Refused;
        }
        if topic.len() > MAX_TOPIC_NAME_BYTES {
            return QueueReply::TopicNameTooLong;
        }
        if self.queues.contains_key(topic) {
            return QueueReply::Refused;
        }
        if self.topic_order.len() >= MAX_TOPICS {
            return QueueReply::TooManyTopics;
        }
        self.queues.insert(topic.to_owned(), MessageQueue::new());
        self.topic_order.push(topic.to_owned());
        QueueReply::Done
    }

    /// Every topic, in creation order.
    pub fn topics(&self) -> &[String] {
        &self.topic_order
    }

    /// The checksum chained over every command applied so far (see
    /// `StatusReport::state_digest`).
    pub fn digest(&self) -> u64 {
        self.digest
    }

    pub(super) fn restore_digest(&mut self, digest: u64) {
        self.digest = digest;
    }

    /// The client sessions, for the snapshot image and for tests.
    pub fn sessions(&self) -> &SessionTable {
        &self.sessions
    }

    pub(super) fn sessions_mut(&mut self) -> &mut SessionTable {
        &mut self.sessions
    }

    /// Every topic in creation order with its queued messages, oldest first.
    pub fn topics_with_messages(&self) -> impl Iterator<Item = (&str, &MessageQueue)> {
        self.topic_order.iter().map(|topic| (topic.as_str(), &self.queues[topic]))
    }

    /// Add a topic read from a snapshot, after those already restored.
    pub fn restore_topic(&mut self, topic: String, messages: MessageQueue) -> Result<(), String> {
        if topic.is_empty() || self.queues.contains_key(&topic) {
            return Err(format!("snapshot holds an empty or repeated topic {topic:?}"));
        }
        self.queued_message_bytes += messages.iter().map(|message| message.len() as u64).sum::<u64>();
        self.topic_order.push(topic.clone());
        self.queues.insert(topic, messages);
        Ok(())
    }

    /// Bytes of every queued message, in every topic.
    pub fn queued_message_bytes(&self) -> u64 {
        self.queued_message_bytes
    }

    /// How many messages `topic` holds; `None` if there is no such topic.
    pub fn queue_length(&self, topic: &str) -> Option<usize> {
        self.queues.get(topic).map(MessageQueue::len)
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

    /// A state machine fed as a node feeds it: each command encoded as the
    /// next log entry and applied through `apply_entry`.
    #[derive(Default)]
    struct Replica {
        queues: QueueStateMachine,
        last_index: EntryIndex,
    }

    impl Replica {
        fn with_session_limits(limits: SessionLimits) -> Replica {
            Replica { queues: QueueStateMachine::with_session_limits(limits), last_index: 0 }
        }

        fn apply(&mut self, command: &Command) -> QueueReply {
            self.apply_encoded(&command.encode())
        }

        fn apply_in_session(&mut self, client_id: &str, seq: u64, command: Command) -> QueueReply {
            self.apply_encoded(&in_session(client_id, seq, command))
        }

        fn apply_encoded(&mut self, entry: &[u8]) -> QueueReply {
            self.last_index += 1;
            self.queues.apply_entry(self.last_index, entry).expect("a valid entry")
        }
    }

    fn in_session(client_id: &str, seq: u64, command: Command) -> Vec<u8> {
        SessionCommand { session: Some(Session { client_id: client_id.into(), seq }), command }.encode()
    }

    #[test]
    fn topics_listed_in_creation_order_and_never_duplicated() {
        let mut replica = Replica::default();
        assert_eq!(replica.apply(&Command::GetTopics), QueueReply::Topics(vec![]));
        assert_eq!(replica.apply(&put_topic("b")), QueueReply::Done);
        assert_eq!(replica.apply(&put_topic("a")), QueueReply::Done);
        assert_eq!(replica.apply(&put_topic("b")), QueueReply::Refused);
        assert_eq!(replica.apply(&Command::GetTopics), QueueReply::Topics(vec!["b".into(), "a".into()]));
    }

    #[test]
    fn messages_come_out_first_in_first_out() {
        let mut replica = Replica::default();
        replica.apply(&put_topic("t"));
        for message in ["1", "", "ü"] {
            assert_eq!(replica.apply(&put("t", message)), QueueReply::Done);
        }
        assert_eq!(replica.apply(&get("t")), QueueReply::Message("1".into()));
        assert_eq!(replica.apply(&get("t")), QueueReply::Message("".into()));
        assert_eq!(replica.apply(&get("t")), QueueReply::Message("ü".into()));
        assert_eq!(replica.apply(&get("t")), QueueReply::Refused, "empty topic");
    }

    #[test]
    fn missing_topic_refuses_put_and_get() {
        let mut replica = Replica::default();
        assert_eq!(replica.apply(&put("nope", "m")), QueueReply::Refused);
        assert_eq!(replica.apply(&get("nope")), QueueReply::Refused);
        assert_eq!(replica.queues.queue_length("nope"), None);
    }

    #[test]
    fn replicas_applying_the_same_commands_agree() {
        let commands = [put_topic("a"), put("a", "x"), put_topic("b"), get("a"), get("a"), put("b", "y")];
        let (mut first, mut second) = (Replica::default(), Replica::default());
        let replies_first: Vec<_> = commands.iter().map(|c| first.apply(c)).collect();
        let replies_second: Vec<_> = commands.iter().map(|c| second.apply(c)).collect();
        assert_eq!(replies_first, replies_second);
        assert_eq!(first.queues.topics(), second.queues.topics());
        assert_eq!(first.queues.digest(), second.queues.digest());
        assert_ne!(first.queues.digest(), 0, "every applied entry is folded into the digest");
    }

    #[test]
    fn query_answers_exactly_the_read_only_commands() {
        let queues = QueueStateMachine::new();
        for command in [put_topic("t"), Command::GetTopics, put("t", "m"), get("t")] {
            assert_eq!(queues.query(&command).is_some(), command.is_read_only(), "{command:?}");
        }
    }

    #[test]
    fn an_undecodable_entry_is_an_error_and_changes_nothing() {
        let mut replica = Replica::default();
        replica.apply(&put_topic("t"));
        let digest = replica.queues.digest();
        assert!(replica.queues.apply_entry(2, &[99]).is_err());
        assert_eq!(replica.queues.digest(), digest);
    }

    #[test]
    fn a_retried_put_is_enqueued_once_and_answered_alike() {
        let mut replica = Replica::default();
        replica.apply(&put_topic("t"));
        assert_eq!(replica.apply_in_session("c", 1, put("t", "m")), QueueReply::Done);
        assert_eq!(replica.apply_in_session("c", 1, put("t", "m")), QueueReply::Done);
        assert_eq!(replica.queues.queue_length("t"), Some(1), "the retry was not applied");
    }

    #[test]
    fn a_retried_get_returns_the_same_message_instead_of_popping_another() {
        let mut replica = Replica::default();
        replica.apply(&put_topic("t"));
        replica.apply(&put("t", "first"));
        replica.apply(&put("t", "second"));
        assert_eq!(replica.apply_in_session("c", 7, get("t")), QueueReply::Message("first".into()));
        assert_eq!(replica.apply_in_session("c", 7, get("t")), QueueReply::Message("first".into()));
        assert_eq!(replica.apply_in_session("c", 8, get("t")), QueueReply::Message("second".into()));
        assert_eq!(replica.apply_in_session("c", 7, get("t")), QueueReply::Stale { latest_seq: 8 });
        assert_eq!(replica.queues.queue_length("t"), Some(0));
    }

    #[test]
    fn a_new_session_that_would_push_out_a_recent_one_is_refused_and_not_applied() {
        let limits = SessionLimits { max_sessions: 2, protected_entries: 1000, ..SessionLimits::default() };
        let mut replica = Replica::with_session_limits(limits);
        assert_eq!(replica.apply(&put_topic("t")), QueueReply::Done);
        assert_eq!(replica.apply_in_session("victim", 1, put("t", "once")), QueueReply::Done);
        assert_eq!(replica.apply_in_session("other", 1, put("t", "x")), QueueReply::Done);
        for number in 0..100 {
            let fresh = format!("fresh-{number}");
            assert_eq!(replica.apply_in_session(&fresh, 1, put("t", "flood")), QueueReply::TooManySessions);
        }
        assert_eq!(replica.apply_in_session("victim", 1, put("t", "once")), QueueReply::Done, "still a duplicate");
        assert_eq!(replica.apply_in_session("victim", 1, get("t")), QueueReply::Done);
        assert_eq!(replica.apply(&get("t")), QueueReply::Message("once".into()));
        assert_eq!(replica.apply(&get("t")), QueueReply::Message("x".into()));
        assert_eq!(replica.apply(&get("t")), QueueReply::Refused, "no flood message was applied, nor a second once");
    }

    #[test]
    fn sessions_expire_at_the_same_entry_on_every_replica() {
        let limits =
            SessionLimits { max_sessions: 2, idle_entries: 10, protected_entries: 0, ..SessionLimits::default() };
        let (mut first, mut second) = (Replica::with_session_limits(limits), Replica::with_session_limits(limits));
        for replica in [&mut first, &mut second] {
            replica.apply(&put_topic("t"));
            for client in ["a", "b", "a", "c"] {
                replica.apply_in_session(client, 1, put("t", client));
            }
        }
        let clients = |replica: &Replica| -> Vec<String> {
            replica.queues.sessions().iter().map(|(client, _)| client.to_string()).collect()
        };
        assert_eq!(clients(&first), ["a", "c"], "b was least recently used: a's retry refreshed a");
        assert_eq!(clients(&first), clients(&second));
        assert_eq!(first.queues.queue_length("t"), Some(3), "a's second seq-1 put was a duplicate");
        first.last_index = 99;
        first.apply_in_session("d", 1, put("t", "d"));
        assert_eq!(clients(&first), ["d"], "the idle sessions expired by log index");
    }

    #[test]
    fn queued_bytes_follow_every_put_and_get() {
        let mut replica = Replica::default();
        replica.apply(&put_topic("a"));
        replica.apply(&put_topic("b"));
        replica.apply(&put("a", "four"));
        replica.apply(&put("b", "ü"));
        replica.apply(&put("b", ""));
        assert_eq!(replica.queues.queued_message_bytes(), 4 + 2, "UTF-8 bytes, not characters");
        replica.apply(&get("a"));
        assert_eq!(replica.queues.queued_message_bytes(), 2);
        replica.apply(&put("missing", "refused"));
        replica.apply(&get("a"));
        assert_eq!(replica.queues.queued_message_bytes(), 2, "refused commands change nothing");
        replica.apply(&get("b"));
        replica.apply(&get("b"));
        assert_eq!(replica.queues.queued_message_bytes(), 0);
    }

    #[test]
    fn a_put_beyond_the_queued_byte_limit_is_queue_full_until_messages_are_taken() {
        let mut replica = Replica::default();
        replica.apply(&put_topic("t"));
        // As if 1 GiB less 10 bytes were queued in other messages: filling
        // the real gigabyte would cost the test that much memory.
        replica.queues.queued_message_bytes = MAX_QUEUED_MESSAGE_BYTES - 10;
        assert_eq!(replica.apply(&put("t", "0123456789")), QueueReply::Done, "exactly at the limit");
        assert_eq!(replica.apply(&put("t", "x")), QueueReply::QueueFull);
        assert_eq!(replica.apply_in_session("c", 1, put("t", "y")), QueueReply::QueueFull);
        assert_eq!(replica.apply_in_session("c", 1, put("t", "y")), QueueReply::QueueFull, "a retry: the same answer");
        assert_eq!(replica.apply(&put("missing", "x")), QueueReply::Refused, "a missing topic is still plain refusal");
        assert_eq!(replica.queues.queue_length("t"), Some(1));
        assert_eq!(replica.apply(&get("t")), QueueReply::Message("0123456789".into()));
        assert_eq!(replica.apply_in_session("c", 2, put("t", "y")), QueueReply::Done, "room again after a get");
        assert_eq!(replica.queues.queued_message_bytes(), MAX_QUEUED_MESSAGE_BYTES - 9);
    }

    #[test]
    fn a_new_topic_beyond_the_topic_limit_is_refused() {
        let mut replica = Replica::default();
        for number in 0..MAX_TOPICS {
            assert_eq!(replica.apply(&put_topic(&format!("topic-{number}"))), QueueReply::Done);
        }
        assert_eq!(replica.apply(&put_topic("one-too-many")), QueueReply::TooManyTopics);
        assert_eq!(replica.apply(&put_topic("topic-0")), QueueReply::Refused, "an existing topic: plain refusal");
        assert_eq!(replica.queues.topics().len(), MAX_TOPICS);
        assert_eq!(replica.apply(&put("one-too-many", "m")), QueueReply::Refused, "it was not created");
    }

    #[test]
    fn an_entry_with_a_topic_name_over_the_limit_is_refused_when_applied() {
        let mut replica = Replica::default();
        let longest = "n".repeat(MAX_TOPIC_NAME_BYTES);
        assert_eq!(replica.apply(&put_topic(&longest)), QueueReply::Done);
        let too_long = "n".repeat(MAX_TOPIC_NAME_BYTES + 1);
        assert_eq!(replica.apply(&put_topic(&too_long)), QueueReply::TopicNameTooLong);
        assert_eq!(replica.queues.topics(), [longest]);
    }

    // Issue 11: a log entry with an empty topic (from a forged or damaged
    // entry; requests with one are refused when parsed) is refused, not a panic.
    #[test]
    fn an_entry_with_an_empty_topic_is_refused_when_applied() {
        let mut replica = Replica::default();
        assert_eq!(replica.apply(&put_topic("")), QueueReply::Refused);
        assert!(replica.queues.topics().is_empty());
    }

    /// The case that exposed the unbounded sessions: 100 clients each took
    /// a 900 KB message, and their replies stayed after the queue was empty.
    #[test]
    fn large_replies_are_bounded_by_the_session_byte_limit() {
        let limits = SessionLimits::default();
        let mut replica = Replica::default();
        replica.apply(&put_topic("t"));
        let message = "m".repeat(900 * 1024);
        for _ in 0..100 {
            replica.apply(&put("t", &message));
        }
        for client in 0..100 {
            let reply = replica.apply_in_session(&format!("client-{client:03}"), 1, get("t"));
            assert_eq!(reply, QueueReply::Message(message.clone()), "the first answer is whole");
        }
        assert_eq!(replica.queues.queue_length("t"), Some(0));
        let sessions = replica.queues.sessions();
        assert!(sessions.bytes() <= limits.max_bytes, "{} bytes kept", sessions.bytes());
        assert_eq!(sessions.len(), 100, "every session keeps its seq");
        assert!(replica.queues.encode_snapshot().len() < limits.max_bytes + 64 * 1024);
        // The most recent clients can still retry and get their message; the
        // oldest ones are told their reply is gone, and nothing is applied twice.
        assert_eq!(replica.apply_in_session("client-099", 1, get("t")), QueueReply::Message(message.clone()));
        assert_eq!(replica.apply_in_session("client-000", 1, get("t")), QueueReply::ReplyDropped);
        assert_eq!(replica.apply_in_session("client-000", 2, get("t")), QueueReply::Refused, "a new seq is applied");
    }
}
