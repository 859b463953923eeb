//! The state machine's snapshot image: every topic in creation order with its
//! queued messages. Little-endian, length-prefixed, ending in a crc32c of
//! everything before it, so a damaged image is refused rather than restored.

use super::state_machine::QueueStateMachine;

const MAGIC: &[u8; 4] = b"RMQQ";
const VERSION: u8 = 1;

impl QueueStateMachine {
    pub fn encode_snapshot(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.digest().to_le_bytes());
        out.extend_from_slice(&(self.topics().len() as u64).to_le_bytes());
        for (topic, messages) in self.topics_with_messages() {
            put_string(&mut out, topic);
            out.extend_from_slice(&(messages.len() as u64).to_le_bytes());
            for message in messages {
                put_string(&mut out, message);
            }
        }
        let checksum = crc32c::crc32c(&out);
        out.extend_from_slice(&checksum.to_le_bytes());
        out
    }

    pub fn decode_snapshot(bytes: &[u8]) -> Result<QueueStateMachine, String> {
        if bytes.len() < MAGIC.len() + 1 + 8 + 8 + 4 {
            return Err(format!("queue snapshot of {} bytes is too short", bytes.len()));
        }
        let (body, checksum) = bytes.split_at(bytes.len() - 4);
        if crc32c::crc32c(body) != u32::from_le_bytes(checksum.try_into().expect("4 bytes")) {
            return Err("queue snapshot checksum mismatch".into());
        }
        if &body[..4] != MAGIC || body[4] != VERSION {
            return Err("not a queue snapshot of a known version".into());
        }
        let mut reader = Reader { rest: &body[5..] };
        let mut machine = QueueStateMachine::new();
        machine.restore_digest(reader.u64()?);
        let topic_count = reader.u64()?;
        for _ in 0..topic_count {
            let topic = reader.string()?;
            let message_count = reader.u64()?;
            let mut messages = std::collections::VecDeque::new();
            for _ in 0..message_count {
                messages.push_back(std::sync::Arc::from(reader.string()?));
            }
            machine.restore_topic(topic, messages)?;
        }
        if !reader.rest.is_empty() {
            return Err(format!("queue snapshot has {} trailing bytes", reader.rest.len()));
        }
        Ok(machine)
    }
}

fn put_string(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u32).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], String> {
        if self.rest.len() < count {
            return Err("queue snapshot is cut short".into());
        }
        let (taken, rest) = self.rest.split_at(count);
        self.rest = rest;
        Ok(taken)
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    fn string(&mut self) -> Result<String, String> {
        let length = u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")) as usize;
        let bytes = self.take(length)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| "queue snapshot holds text that is not UTF-8".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::Command;

    fn sample() -> QueueStateMachine {
        let mut machine = QueueStateMachine::new();
        for topic in ["b", "a", "empty"] {
            machine.apply(&Command::PutTopic { topic: topic.into() });
        }
        for message in ["one", "two", "ünïcode"] {
            machine.apply(&Command::PutMessage { topic: "a".into(), message: message.into() });
        }
        machine.apply(&Command::PutMessage { topic: "b".into(), message: "x".into() });
        machine
    }

    #[test]
    fn a_snapshot_restores_topics_in_order_with_their_queues() {
        let machine = sample();
        let image = machine.encode_snapshot();
        let mut restored = QueueStateMachine::decode_snapshot(&image).unwrap();
        assert_eq!(restored.encode_snapshot(), image, "restoring and encoding again gives the same bytes");
        assert_eq!(restored.topics(), machine.topics());
        assert_eq!(restored.digest(), machine.digest());
        assert_eq!(restored.queue_length("a"), Some(3));
        assert_eq!(restored.queue_length("empty"), Some(0));
        let first = restored.apply(&Command::GetMessage { topic: "a".into() });
        assert_eq!(first, crate::queue::QueueReply::Message("one".into()));
    }

    #[test]
    fn every_damaged_or_cut_image_is_refused() {
        let image = sample().encode_snapshot();
        for cut in 0..image.len() {
            assert!(QueueStateMachine::decode_snapshot(&image[..cut]).is_err(), "cut at {cut}");
        }
        for position in 0..image.len() {
            let mut damaged = image.clone();
            damaged[position] ^= 0x40;
            assert!(QueueStateMachine::decode_snapshot(&damaged).is_err(), "flip at {position}");
        }
    }
}
