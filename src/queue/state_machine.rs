//! Topics in creation order, each a FIFO queue of messages. Deterministic:
//! the same commands in the same order give the same replies on every node.

use std::collections::{HashMap, VecDeque};

use super::command::Command;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueReply {
    Done,
    Refused,
    Topics(Vec<String>),
    Message(String),
}

#[derive(Debug, Default, Clone)]
pub struct QueueStateMachine {
    topic_order: Vec<String>,
    queues: HashMap<String, VecDeque<String>>,
}

impl QueueStateMachine {
    pub fn new() -> QueueStateMachine {
        QueueStateMachine::default()
    }

    pub fn apply(&mut self, command: &Command) -> QueueReply {
        match command {
            Command::PutTopic { topic } => self.put_topic(topic),
            Command::GetTopics => QueueReply::Topics(self.topic_order.clone()),
            Command::PutMessage { topic, message } => match self.queues.get_mut(topic) {
                Some(queue) => {
                    queue.push_back(message.clone());
                    QueueReply::Done
                }
                None => QueueReply::Refused,
            },
            Command::GetMessage { topic } => match self.queues.get_mut(topic).and_then(|queue| queue.pop_front()) {
                Some(message) => QueueReply::Message(message),
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

    /// Every topic in creation order with its queued messages, oldest first.
    pub fn topics_with_messages(&self) -> impl Iterator<Item = (&str, &VecDeque<String>)> {
        self.topic_order.iter().map(|topic| (topic.as_str(), &self.queues[topic]))
    }

    /// Add a topic read from a snapshot, after those already restored.
    pub fn restore_topic(&mut self, topic: String, messages: VecDeque<String>) -> Result<(), String> {
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
}
