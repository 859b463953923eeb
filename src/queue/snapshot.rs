//! The state machine's snapshot image: every topic in creation order with its
//! queued messages, then the client sessions. Little-endian, length-prefixed
//! (src/binary.rs), ending in a crc32c of everything before it, so a damaged
//! image is refused rather than restored.

use std::sync::Arc;

use super::session::SessionRecord;
use super::state_machine::{MessageQueue, QueueReply, QueueStateMachine};
use crate::binary::{Reader, Writer};

const MAGIC: &[u8; 4] = b"RMQQ";
/// Version 4 adds the replies of the state's limits (`QueueFull`,
/// `TooManyTopics`, `TopicNameTooLong`). Version 3 added the `ReplyDropped`
/// reply of a session whose reply was dropped to respect the session byte
/// limit. Version 2 added the sessions after the topics. Images of versions
/// 1 to 3 are still read.
const VERSION: u8 = 4;
const VERSION_WITHOUT_LIMIT_REPLIES: u8 = 3;
const VERSION_WITHOUT_DROPPED_REPLIES: u8 = 2;
const VERSION_WITHOUT_SESSIONS: u8 = 1;

const REPLY_DONE: u8 = 0;
const REPLY_REFUSED: u8 = 1;
const REPLY_TOPICS: u8 = 2;
const REPLY_MESSAGE: u8 = 3;
const REPLY_STALE: u8 = 4;
const REPLY_DROPPED: u8 = 5;
const REPLY_QUEUE_FULL: u8 = 6;
const REPLY_TOO_MANY_TOPICS: u8 = 7;
const REPLY_TOPIC_NAME_TOO_LONG: u8 = 8;
/// Never kept by a session (the request opened none), so never written;
/// read for completeness.
const REPLY_TOO_MANY_SESSIONS: u8 = 9;

/// A string has no limit of its own: it is bounded by the image, which the
/// reader checks before taking it.
const STRING_LIMIT_BYTES: usize = u32::MAX as usize;
/// Smallest encodings, to check counts against the bytes left: a string is
/// its u32 length; a topic also has its u64 message count; a session has its
/// client id, seq, last use and reply tag.
const STRING_MIN_BYTES: usize = 4;
const TOPIC_MIN_BYTES: usize = 4 + 8;
const SESSION_MIN_BYTES: usize = 4 + 8 + 8 + 1;

impl QueueStateMachine {
    /// The snapshot image of the whole state: magic and version, the digest,
    /// every topic with its messages, every session, then a crc32c of all
    /// that. [`QueueStateMachine::decode_snapshot`] reads it back.
    pub fn encode_snapshot(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        let mut writer = Writer::new(&mut out);
        for &byte in MAGIC {
            writer.u8(byte);
        }
        writer.u8(VERSION);
        writer.u64(self.digest());
        writer.u64(self.topics().len() as u64);
        for (topic, messages) in self.topics_with_messages() {
            writer.string(topic);
            writer.u64(messages.len() as u64);
            for message in messages {
                writer.string(message);
            }
        }
        writer.u64(self.sessions().len() as u64);
        for (client_id, record) in self.sessions().iter() {
            writer.string(client_id);
            writer.u64(record.seq);
            writer.u64(record.last_used_index);
            put_reply(&mut writer, &record.reply);
        }
        let checksum = crc32c::crc32c(&out);
        Writer::new(&mut out).u32(checksum);
        out
    }

    /// The cheap part of `decode_snapshot`: length, checksum, header. A
    /// follower runs it on a snapshot received from a leader before taking
    /// it (`CoreConfig::snapshot_check`).
    pub fn check_snapshot_image(bytes: &[u8]) -> Result<(), String> {
        if bytes.len() < MAGIC.len() + 1 + 8 + 8 + 4 {
            return Err(format!("queue snapshot of {} bytes is too short", bytes.len()));
        }
        let (body, checksum) = bytes.split_at(bytes.len() - 4);
        if crc32c::crc32c(body) != u32::from_le_bytes(checksum.try_into().expect("4 bytes")) {
            return Err("queue snapshot checksum mismatch".into());
        }
        let version = body[4];
        if &body[..4] != MAGIC || !(VERSION_WITHOUT_SESSIONS..=VERSION).contains(&version) {
            return Err("not a queue snapshot of a known version".into());
        }
        Ok(())
    }

    /// Restores a state from its snapshot image. Returns an error (text naming
    /// the problem) for a short image, a checksum mismatch, an unknown magic or
    /// version, a malformed or repeated topic or session, or trailing bytes;
    /// never panics on any input.
    pub fn decode_snapshot(bytes: &[u8]) -> Result<QueueStateMachine, String> {
        QueueStateMachine::check_snapshot_image(bytes)?;
        let body = &bytes[..bytes.len() - 4];
        let version = body[4];
        let mut reader = Reader::new(&body[5..]);
        let mut machine = QueueStateMachine::new();
        read_topics(&mut reader, &mut machine).map_err(|problem| format!("queue snapshot: {problem}"))?;
        if version >= VERSION_WITHOUT_DROPPED_REPLIES {
            read_sessions(&mut reader, &mut machine, version)
                .map_err(|problem| format!("queue snapshot: {problem}"))?;
        }
        reader.finish().map_err(|problem| format!("queue snapshot: {problem}"))?;
        Ok(machine)
    }
}

fn read_topics(reader: &mut Reader<'_>, machine: &mut QueueStateMachine) -> Result<(), String> {
    machine.restore_digest(reader.u64()?);
    let topic_count = reader.count_u64(TOPIC_MIN_BYTES)?;
    for _ in 0..topic_count {
        let topic = reader.string(STRING_LIMIT_BYTES)?;
        let message_count = reader.count_u64(STRING_MIN_BYTES)?;
        let mut messages = MessageQueue::new();
        for _ in 0..message_count {
            messages.push_back(Arc::from(reader.string(STRING_LIMIT_BYTES)?));
        }
        machine.restore_topic(topic, messages)?;
    }
    Ok(())
}

fn read_sessions(reader: &mut Reader<'_>, machine: &mut QueueStateMachine, version: u8) -> Result<(), String> {
    let session_count = reader.count_u64(SESSION_MIN_BYTES)?;
    for _ in 0..session_count {
        let client_id = reader.string(STRING_LIMIT_BYTES)?;
        let seq = reader.u64()?;
        let last_used_index = reader.u64()?;
        let reply = read_reply(reader, version)?;
        machine.sessions_mut().restore(client_id, SessionRecord { seq, reply, last_used_index })?;
    }
    Ok(())
}

fn put_reply(writer: &mut Writer<'_>, reply: &QueueReply) {
    match reply {
        QueueReply::Done => writer.u8(REPLY_DONE),
        QueueReply::Refused => writer.u8(REPLY_REFUSED),
        QueueReply::Topics(topics) => {
            writer.u8(REPLY_TOPICS);
            writer.u64(topics.len() as u64);
            for topic in topics {
                writer.string(topic);
            }
        }
        QueueReply::Message(message) => {
            writer.u8(REPLY_MESSAGE);
            writer.string(message);
        }
        QueueReply::Stale { latest_seq } => {
            writer.u8(REPLY_STALE);
            writer.u64(*latest_seq);
        }
        QueueReply::ReplyDropped => writer.u8(REPLY_DROPPED),
        QueueReply::QueueFull => writer.u8(REPLY_QUEUE_FULL),
        QueueReply::TooManyTopics => writer.u8(REPLY_TOO_MANY_TOPICS),
        QueueReply::TopicNameTooLong => writer.u8(REPLY_TOPIC_NAME_TOO_LONG),
        QueueReply::TooManySessions => writer.u8(REPLY_TOO_MANY_SESSIONS),
    }
}

fn read_reply(reader: &mut Reader<'_>, version: u8) -> Result<QueueReply, String> {
    Ok(match reader.u8()? {
        REPLY_DONE => QueueReply::Done,
        REPLY_REFUSED => QueueReply::Refused,
        REPLY_TOPICS => {
            let count = reader.count_u64(STRING_MIN_BYTES)?;
            let mut topics = Vec::with_capacity(count);
            for _ in 0..count {
                topics.push(reader.string(STRING_LIMIT_BYTES)?);
            }
            QueueReply::Topics(topics)
        }
        REPLY_MESSAGE => QueueReply::Message(reader.string(STRING_LIMIT_BYTES)?),
        REPLY_STALE => QueueReply::Stale { latest_seq: reader.u64()? },
        REPLY_DROPPED if version > VERSION_WITHOUT_DROPPED_REPLIES => QueueReply::ReplyDropped,
        REPLY_QUEUE_FULL if version > VERSION_WITHOUT_LIMIT_REPLIES => QueueReply::QueueFull,
        REPLY_TOO_MANY_TOPICS if version > VERSION_WITHOUT_LIMIT_REPLIES => QueueReply::TooManyTopics,
        REPLY_TOPIC_NAME_TOO_LONG if version > VERSION_WITHOUT_LIMIT_REPLIES => QueueReply::TopicNameTooLong,
        REPLY_TOO_MANY_SESSIONS if version > VERSION_WITHOUT_LIMIT_REPLIES => QueueReply::TooManySessions,
        other => return Err(format!("an unknown reply tag {other} in a version {version} image")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{Command, Session, SessionCommand, SessionLimits};

    fn entry(client: Option<&str>, seq: u64, command: Command) -> Vec<u8> {
        SessionCommand { session: client.map(|client_id| Session { client_id: client_id.into(), seq }), command }
            .encode()
    }

    fn sample() -> QueueStateMachine {
        let mut machine = QueueStateMachine::new();
        let put = |topic: &str, message: &str| Command::PutMessage { topic: topic.into(), message: message.into() };
        let mut entries = vec![];
        for topic in ["b", "a", "empty"] {
            entries.push(entry(None, 0, Command::PutTopic { topic: topic.into() }));
        }
        for message in ["one", "two", "ünïcode"] {
            entries.push(entry(None, 0, put("a", message)));
        }
        entries.push(entry(None, 0, put("b", "x")));
        entries.push(entry(Some("reader"), 4, Command::GetMessage { topic: "a".into() }));
        entries.push(entry(Some("lister"), 1, Command::GetTopics));
        for (index, data) in entries.iter().enumerate() {
            machine.apply_entry(index as u64 + 1, data).unwrap();
        }
        machine
    }

    /// `image` with another version byte and its checksum redone.
    fn as_version(image: &[u8], version: u8) -> Vec<u8> {
        let mut body = image[..image.len() - 4].to_vec();
        body[4] = version;
        let checksum = crc32c::crc32c(&body);
        body.extend_from_slice(&checksum.to_le_bytes());
        body
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
        assert_eq!(restored.sessions().bytes(), machine.sessions().bytes());
        assert_eq!(machine.queued_message_bytes(), "two".len() as u64 + "ünïcode".len() as u64 + 1);
        assert_eq!(restored.queued_message_bytes(), machine.queued_message_bytes(), "restored with the messages");
        let first = restored.apply_entry(20, &entry(None, 0, Command::GetMessage { topic: "a".into() }));
        assert_eq!(first, Ok(QueueReply::Message("two".into())), "the session's get took \"one\" before the snapshot");
        let retry = entry(Some("reader"), 4, Command::GetMessage { topic: "a".into() });
        assert_eq!(restored.apply_entry(21, &retry), Ok(QueueReply::Message("one".into())));
    }

    #[test]
    fn the_session_bytes_are_the_sessions_share_of_the_image() {
        let machine = sample();
        let mut without_sessions = QueueStateMachine::new();
        without_sessions.restore_digest(machine.digest());
        for (topic, messages) in machine.topics_with_messages() {
            without_sessions.restore_topic(topic.to_string(), messages.clone()).unwrap();
        }
        let difference = machine.encode_snapshot().len() - without_sessions.encode_snapshot().len();
        assert_eq!(difference, machine.sessions().bytes());
    }

    #[test]
    fn a_dropped_reply_survives_a_snapshot() {
        let limits = SessionLimits { max_bytes: 200, protected_entries: 0, ..SessionLimits::default() };
        let mut machine = QueueStateMachine::with_session_limits(limits);
        machine.apply_entry(1, &entry(None, 0, Command::PutTopic { topic: "t".into() })).unwrap();
        machine
            .apply_entry(2, &entry(None, 0, Command::PutMessage { topic: "t".into(), message: "m".repeat(300) }))
            .unwrap();
        let get = entry(Some("c"), 1, Command::GetMessage { topic: "t".into() });
        assert_eq!(machine.apply_entry(3, &get), Ok(QueueReply::Message("m".repeat(300))));
        let mut restored = QueueStateMachine::decode_snapshot(&machine.encode_snapshot()).unwrap();
        assert_eq!(restored.apply_entry(4, &get), Ok(QueueReply::ReplyDropped));
    }

    #[test]
    fn limit_replies_survive_a_snapshot_and_older_versions_refuse_them() {
        let mut machine = QueueStateMachine::new();
        let long_topic = "n".repeat(crate::queue::MAX_TOPIC_NAME_BYTES + 1);
        machine.apply_entry(1, &entry(Some("c"), 1, Command::PutTopic { topic: long_topic.clone() })).unwrap();
        let image = machine.encode_snapshot();
        let mut restored = QueueStateMachine::decode_snapshot(&image).unwrap();
        let retry = entry(Some("c"), 1, Command::PutTopic { topic: long_topic });
        assert_eq!(restored.apply_entry(2, &retry), Ok(QueueReply::TopicNameTooLong));
        let error = QueueStateMachine::decode_snapshot(&as_version(&image, 3)).unwrap_err();
        assert!(error.contains("unknown reply tag 8"), "{error}");
    }

    #[test]
    fn images_of_older_versions_still_load() {
        let image = sample().encode_snapshot();
        let version_two = QueueStateMachine::decode_snapshot(&as_version(&image, 2)).unwrap();
        assert_eq!(version_two.encode_snapshot(), image, "version 2 is version 4 without dropped or limit replies");
        let version_three = QueueStateMachine::decode_snapshot(&as_version(&image, 3)).unwrap();
        assert_eq!(version_three.encode_snapshot(), image, "version 3 is version 4 without limit replies");
        // Version 1: the digest and the topics, no sessions.
        let mut body = b"RMQQ\x01".to_vec();
        body.extend_from_slice(&7u64.to_le_bytes());
        body.extend_from_slice(&1u64.to_le_bytes());
        body.extend_from_slice(&1u32.to_le_bytes());
        body.push(b't');
        body.extend_from_slice(&1u64.to_le_bytes());
        body.extend_from_slice(&2u32.to_le_bytes());
        body.extend_from_slice(b"hi");
        let checksum = crc32c::crc32c(&body);
        body.extend_from_slice(&checksum.to_le_bytes());
        let version_one = QueueStateMachine::decode_snapshot(&body).unwrap();
        assert_eq!((version_one.digest(), version_one.topics()), (7, ["t".to_string()].as_slice()));
        assert_eq!(version_one.queue_length("t"), Some(1));
        assert!(version_one.sessions().is_empty());
    }

    #[test]
    fn a_dropped_reply_in_a_version_two_image_is_refused() {
        let limits = SessionLimits { max_bytes: 30, protected_entries: 0, ..SessionLimits::default() };
        let mut machine = QueueStateMachine::with_session_limits(limits);
        machine.apply_entry(1, &entry(None, 0, Command::PutTopic { topic: "t".into() })).unwrap();
        machine
            .apply_entry(2, &entry(None, 0, Command::PutMessage { topic: "t".into(), message: "m".repeat(100) }))
            .unwrap();
        machine.apply_entry(3, &entry(Some("c"), 1, Command::GetMessage { topic: "t".into() })).unwrap();
        let image = machine.encode_snapshot();
        assert!(QueueStateMachine::decode_snapshot(&image).is_ok());
        let error = QueueStateMachine::decode_snapshot(&as_version(&image, 2)).unwrap_err();
        assert!(error.contains("unknown reply tag 5"), "{error}");
        assert!(QueueStateMachine::decode_snapshot(&as_version(&image, 5)).is_err(), "a future version is refused");
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

    #[test]
    fn a_huge_count_is_refused_before_allocating() {
        let mut body = b"RMQQ\x04".to_vec();
        body.extend_from_slice(&0u64.to_le_bytes());
        body.extend_from_slice(&u64::MAX.to_le_bytes());
        let checksum = crc32c::crc32c(&body);
        body.extend_from_slice(&checksum.to_le_bytes());
        let error = QueueStateMachine::decode_snapshot(&body).unwrap_err();
        assert!(error.contains("cannot fit"), "{error}");
    }
}
