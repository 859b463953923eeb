//! A queue command as stored in a log entry: one tag byte, then each string
//! as a little-endian u32 length and its UTF-8 bytes (src/binary.rs).
//! Compact, and cheap to encode on the hot path (no JSON in the log).

use std::fmt;

use crate::binary::{ReadError, Reader, Writer};

/// A queue operation as the state machine applies it; the same four ops as
/// the client protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Create a topic; refused if it exists, is empty or is over its limits.
    PutTopic {
        /// The new topic's name: non-empty, at most `MAX_TOPIC_NAME_BYTES`.
        topic: String,
    },
    /// List every topic in creation order; changes nothing.
    GetTopics,
    /// Append `message` to the end of `topic`'s queue.
    PutMessage {
        /// The topic to append to; it must exist.
        topic: String,
        /// The message, any UTF-8 text.
        message: String,
    },
    /// Take the oldest message of `topic`; refused if the queue is empty or the
    /// topic does not exist.
    GetMessage {
        /// The topic to take from.
        topic: String,
    },
}

const TAG_PUT_TOPIC: u8 = 1;
const TAG_GET_TOPICS: u8 = 2;
const TAG_PUT_MESSAGE: u8 = 3;
const TAG_GET_MESSAGE: u8 = 4;
/// Prefix of a command that carries the client's session.
const TAG_SESSION: u8 = 16;
/// A string has no limit of its own: it is bounded by the entry that holds
/// it (and a request by `--max-request-bytes`), which the reader checks first.
const STRING_LIMIT_BYTES: usize = u32::MAX as usize;

/// A client's exactly-once identity for one request (Raft dissertation §6.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Chosen by the client; at most `MAX_CLIENT_ID_BYTES` (checked when the
    /// request is parsed).
    pub client_id: String,
    /// Increases with each new request of this client; a retry reuses it.
    pub seq: u64,
}

/// What one log entry holds: a command, and the session it was sent in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCommand {
    /// The client's session, when it asked for exactly-once execution.
    pub session: Option<Session>,
    /// The operation itself.
    pub command: Command,
}

impl SessionCommand {
    /// The entry's bytes: `[16][client_id][seq u64]` before the command
    /// when there is a session, the bare command otherwise.
    pub fn encode(&self) -> Vec<u8> {
        SessionCommand::encode_parts(self.session.as_ref(), &self.command)
    }

    /// `encode` for a command and session held apart.
    pub fn encode_parts(session: Option<&Session>, command: &Command) -> Vec<u8> {
        let Some(session) = session else {
            return command.encode();
        };
        let mut out = Vec::with_capacity(32 + session.client_id.len() + command.payload_len());
        let mut writer = Writer::new(&mut out);
        writer.u8(TAG_SESSION);
        writer.string(&session.client_id);
        writer.u64(session.seq);
        command.write(&mut writer);
        out
    }

    /// Decodes an entry's bytes, the inverse of [`SessionCommand::encode`].
    /// Any input is safe: a [`DecodeError`] for an empty entry, an unknown
    /// tag, a truncated or non-UTF-8 string, or trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<SessionCommand, DecodeError> {
        let mut reader = Reader::new(bytes);
        let session = match bytes.first() {
            Some(&TAG_SESSION) => {
                reader.u8()?;
                Some(Session { client_id: reader.string(STRING_LIMIT_BYTES)?, seq: reader.u64()? })
            }
            _ => None,
        };
        let command = Command::read(&mut reader)?;
        reader.finish()?;
        Ok(SessionCommand { session, command })
    }
}

/// Why a log entry's bytes are not a command. Every replica skips such an
/// entry alike (state and digest unchanged), and its client gets
/// `bad_request` with this text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "undecodable command: {}", self.0)
    }
}

impl From<ReadError> for DecodeError {
    fn from(error: ReadError) -> DecodeError {
        DecodeError(error.to_string())
    }
}

impl Command {
    /// Never empty: an empty entry is the leader's no-op.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.payload_len());
        self.write(&mut Writer::new(&mut out));
        out
    }

    fn write(&self, writer: &mut Writer<'_>) {
        match self {
            Command::PutTopic { topic } => {
                writer.u8(TAG_PUT_TOPIC);
                writer.string(topic);
            }
            Command::GetTopics => writer.u8(TAG_GET_TOPICS),
            Command::PutMessage { topic, message } => {
                writer.u8(TAG_PUT_MESSAGE);
                writer.string(topic);
                writer.string(message);
            }
            Command::GetMessage { topic } => {
                writer.u8(TAG_GET_MESSAGE);
                writer.string(topic);
            }
        }
    }

    /// Decodes a bare command (no session prefix), the inverse of
    /// [`Command::encode`]; errors as [`SessionCommand::decode`].
    pub fn decode(bytes: &[u8]) -> Result<Command, DecodeError> {
        let mut reader = Reader::new(bytes);
        let command = Command::read(&mut reader)?;
        reader.finish()?;
        Ok(command)
    }

    fn read(reader: &mut Reader<'_>) -> Result<Command, DecodeError> {
        if reader.remaining() == 0 {
            return Err(DecodeError("empty".into()));
        }
        Ok(match reader.u8()? {
            TAG_PUT_TOPIC => Command::PutTopic { topic: reader.string(STRING_LIMIT_BYTES)? },
            TAG_GET_TOPICS => Command::GetTopics,
            TAG_PUT_MESSAGE => {
                let topic = reader.string(STRING_LIMIT_BYTES)?;
                Command::PutMessage { topic, message: reader.string(STRING_LIMIT_BYTES)? }
            }
            TAG_GET_MESSAGE => Command::GetMessage { topic: reader.string(STRING_LIMIT_BYTES)? },
            other => return Err(DecodeError(format!("unknown tag {other}"))),
        })
    }

    /// Changes nothing: the leader answers it by ReadIndex, not through the
    /// log (`QueueStateMachine::query` answers exactly these).
    pub fn is_read_only(&self) -> bool {
        matches!(self, Command::GetTopics)
    }

    fn payload_len(&self) -> usize {
        match self {
            Command::PutTopic { topic } | Command::GetMessage { topic } => topic.len(),
            Command::GetTopics => 0,
            Command::PutMessage { topic, message } => topic.len() + message.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_round_trips() {
        let commands = [
            Command::PutTopic { topic: "t".into() },
            Command::GetTopics,
            Command::PutMessage { topic: "émoji 🦀".into(), message: String::new() },
            Command::GetMessage { topic: "x".repeat(300) },
        ];
        for command in commands {
            let bytes = command.encode();
            assert!(!bytes.is_empty());
            assert_eq!(Command::decode(&bytes), Ok(command));
        }
    }

    #[test]
    fn truncated_or_trailing_bytes_are_errors() {
        let bytes = Command::PutMessage { topic: "ab".into(), message: "cd".into() }.encode();
        for cut in 0..bytes.len() {
            assert!(Command::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut extended = bytes.clone();
        extended.push(0);
        assert!(Command::decode(&extended).is_err());
        assert!(Command::decode(&[99]).is_err());
    }

    #[test]
    fn session_commands_round_trip_and_refuse_every_cut() {
        let with_session = SessionCommand {
            session: Some(Session { client_id: "client-ü".into(), seq: u64::MAX }),
            command: Command::PutMessage { topic: "t".into(), message: "m".into() },
        };
        let without = SessionCommand { session: None, command: Command::GetTopics };
        for entry in [with_session.clone(), without] {
            assert_eq!(SessionCommand::decode(&entry.encode()), Ok(entry));
        }
        let bytes = with_session.encode();
        for cut in 0..bytes.len() {
            assert!(SessionCommand::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}
