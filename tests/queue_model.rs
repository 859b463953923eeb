//! The queue state machine against a deliberately naive reference model
//! (a list of (topic, messages) searched linearly), over seeded random
//! command sequences: every reply and the final state must agree. Commands
//! go through the production path: encoded as log entries, `apply_entry`.

use std::collections::VecDeque;

use raftmq::queue::{Command, QueueReply, QueueStateMachine};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

#[derive(Default)]
struct Model {
    topics: Vec<(String, VecDeque<String>)>,
}

impl Model {
    fn apply(&mut self, command: &Command) -> QueueReply {
        let position =
            |topics: &Vec<(String, VecDeque<String>)>, topic: &str| topics.iter().position(|(name, _)| name == topic);
        match command {
            Command::PutTopic { topic } => match position(&self.topics, topic) {
                Some(_) => QueueReply::Refused,
                None => {
                    self.topics.push((topic.clone(), VecDeque::new()));
                    QueueReply::Done
                }
            },
            Command::GetTopics => QueueReply::Topics(self.topics.iter().map(|(name, _)| name.clone()).collect()),
            Command::PutMessage { topic, message } => match position(&self.topics, topic) {
                Some(index) => {
                    self.topics[index].1.push_back(message.clone());
                    QueueReply::Done
                }
                None => QueueReply::Refused,
            },
            Command::GetMessage { topic } => {
                match position(&self.topics, topic).and_then(|index| self.topics[index].1.pop_front()) {
                    Some(message) => QueueReply::Message(message),
                    None => QueueReply::Refused,
                }
            }
        }
    }
}

fn random_command(rng: &mut SmallRng, serial: usize) -> Command {
    // Few topic names, so creates collide and gets find something.
    let topic = ["a", "b", "c", "d", "é"][rng.gen_range(0..5)].to_string();
    match rng.gen_range(0..10) {
        0 => Command::PutTopic { topic },
        1 => Command::GetTopics,
        2..=5 => Command::PutMessage { topic, message: format!("m{serial}") },
        _ => Command::GetMessage { topic },
    }
}

#[test]
fn state_machine_agrees_with_the_reference_model() {
    for seed in 0..200 {
        let mut rng = SmallRng::seed_from_u64(seed);
        let (mut queues, mut model) = (QueueStateMachine::new(), Model::default());
        for serial in 0..500 {
            let command = random_command(&mut rng, serial);
            let reply = queues.apply_entry(serial as u64 + 1, &command.encode()).expect("a valid entry");
            assert_eq!(reply, model.apply(&command), "seed {seed}, step {serial}: {command:?}");
        }
        let model_topics: Vec<String> = model.topics.iter().map(|(name, _)| name.clone()).collect();
        assert_eq!(queues.topics(), model_topics.as_slice(), "seed {seed}");
        for (name, messages) in &model.topics {
            assert_eq!(queues.queue_length(name), Some(messages.len()), "seed {seed}, topic {name}");
        }
    }
}
