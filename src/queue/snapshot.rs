//! The state machine's snapshot image: every topic in creation order with its
//! queued messages. Little-endian, length-prefixed, ending in a crc32c of
//! everything before it, so a damaged image is refused rather than restored.

use super::session::SessionRecord;
use super::state_machine::{QueueReply, QueueStateMachine};

const MAGIC: &[u8; 4] = b"RMQQ";
/// Version 2 adds client sessions after the topics; version 1 images (no
/// sessions) are still read.
const VERSION: u8 = 2;
const VERSION_WITHOUT_SESSIONS: u8 = 1;

const REPLY_DONE: u8 = 0;
const REPLY_REFUSED: u8 = 1;
const REPLY_TOPICS: u8 = 2;
const REPLY_MESSAGE: u8 = 3;
const REPLY_STALE: u8 = 4;

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
        out.extend_from_slice(&(self.sessions().len() as u64).to_le_bytes());
        for (client_id, record) in self.sessions().iter() {
            put_string(&mut out, client_id);
            out.extend_from_slice(&record.seq.to_le_bytes());
            out.extend_from_slice(&record.last_used_index.to_le_bytes());
            put_reply(&mut out, &record.reply);
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
        let version = body[4];
        if &body[..4] != MAGIC || !(version == VERSION || version == VERSION_WITHOUT_SESSIONS) {
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
        if version == VERSION {
            let session_count = reader.u64()?;
            for _ in 0..session_count {
                let client_id = reader.string()?;
                let seq = reader.u64()?;
                let last_used_index = reader.u64()?;
                let reply = reader.reply()?;
                machine.sessions_mut().restore(client_id, SessionRecord { seq, reply, last_used_index })?;
            }
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

fn put_reply(out: &mut Vec<u8>, reply: &QueueReply) {
    match reply {
        QueueReply::Done => out.push(REPLY_DONE),
        QueueReply::Refused => out.push(REPLY_REFUSED),
        QueueReply::Topics(topics) => {
            out.push(REPLY_TOPICS);
            out.extend_from_slice(&(topics.len() as u64).to_le_bytes());
            for topic in topics {
                put_string(out, topic);
            }
        }
        QueueReply::Message(message) => {
            out.push(REPLY_MESSAGE);
            put_string(out, message);
        }
        QueueReply::Stale { latest_seq } => {
            out.push(REPLY_STALE);
            out.extend_from_slice(&latest_seq.to_le_bytes());
        }
    }
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

    fn reply(&mut self) -> Result<QueueReply, String> {
        let tag = self.take(1)?[0];
        Ok(match tag {
            REPLY_DONE => QueueReply::Done,
            REPLY_REFUSED => QueueReply::Refused,
            REPLY_TOPICS => {
                let count = self.u64()?;
                let mut topics = Vec::new();
                for _ in 0..count {
                    topics.push(self.string()?);
                }
                QueueReply::Topics(topics)
            }
            REPLY_MESSAGE => QueueReply::Message(self.string()?),
            REPLY_STALE => QueueReply::Stale { latest_seq: self.u64()? },
            other => return Err(format!("queue snapshot holds an unknown reply tag {other}")),
        })
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
    use crate::queue::{Command, Session, SessionCommand};

    fn sample() -> QueueStateMachine {
        let mut machine = QueueStateMachine::new();
        for topic in ["b", "a", "empty"] {
            machine.apply(&Command::PutTopic { topic: topic.into() });
        }
        for message in ["one", "two", "ünïcode"] {
            machine.apply(&Command::PutMessage { topic: "a".into(), message: message.into() });
        }
        machine.apply(&Command::PutMessage { topic: "b".into(), message: "x".into() });
        let session = |client: &str, seq| Some(Session { client_id: client.into(), seq });
        let get_a =
            SessionCommand { session: session("reader", 4), command: Command::GetMessage { topic: "a".into() } };
        machine.apply_entry(10, &get_a.encode()).unwrap();
        let list = SessionCommand { session: session("lister", 1), command: Command::GetTopics };
        machine.apply_entry(11, &list.encode()).unwrap();
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
        assert_eq!(restored.queue_length("a"), Some(2));
        assert_eq!(restored.queue_length("empty"), Some(0));
        assert_eq!(restored.sessions().len(), 2);
        let first = restored.apply(&Command::GetMessage { topic: "a".into() });
        assert_eq!(first, QueueReply::Message("two".into()), "the session's get took \"one\" before the snapshot");
        let retry = SessionCommand {
            session: Some(Session { client_id: "reader".into(), seq: 4 }),
            command: Command::GetMessage { topic: "a".into() },
        };
        assert_eq!(restored.apply_entry(12, &retry.encode()), Ok(QueueReply::Message("one".into())));
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
