//! A queue command as stored in a log entry: one tag byte, then each string
//! as a little-endian u32 length and its UTF-8 bytes. Compact, and cheap to
//! encode on the hot path (no JSON in the log).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    PutTopic { topic: String },
    GetTopics,
    PutMessage { topic: String, message: String },
    GetMessage { topic: String },
}

const TAG_PUT_TOPIC: u8 = 1;
const TAG_GET_TOPICS: u8 = 2;
const TAG_PUT_MESSAGE: u8 = 3;
const TAG_GET_MESSAGE: u8 = 4;
/// Prefix of a command that carries the client's session.
const TAG_SESSION: u8 = 16;

/// A client's exactly-once identity for one request (Raft dissertation §6.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub client_id: String,
    /// Increases with each new request of this client; a retry reuses it.
    pub seq: u64,
}

/// What one log entry holds: a command, and the session it was sent in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCommand {
    pub session: Option<Session>,
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
        out.push(TAG_SESSION);
        put_string(&mut out, &session.client_id);
        out.extend_from_slice(&session.seq.to_le_bytes());
        command.encode_into(&mut out);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<SessionCommand, DecodeError> {
        let Some((&TAG_SESSION, mut rest)) = bytes.split_first() else {
            return Ok(SessionCommand { session: None, command: Command::decode(bytes)? });
        };
        let client_id = take_string(&mut rest)?;
        if rest.len() < 8 {
            return Err(DecodeError("truncated session sequence number".into()));
        }
        let (seq_bytes, command_bytes) = rest.split_at(8);
        let seq = u64::from_le_bytes(seq_bytes.try_into().expect("8 bytes"));
        let command = Command::decode(command_bytes)?;
        Ok(SessionCommand { session: Some(Session { client_id, seq }), command })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "undecodable command: {}", self.0)
    }
}

impl Command {
    /// Never empty: an empty entry is the leader's no-op.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.payload_len());
        self.encode_into(&mut out);
        out
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Command::PutTopic { topic } => {
                out.push(TAG_PUT_TOPIC);
                put_string(out, topic);
            }
            Command::GetTopics => out.push(TAG_GET_TOPICS),
            Command::PutMessage { topic, message } => {
                out.push(TAG_PUT_MESSAGE);
                put_string(out, topic);
                put_string(out, message);
            }
            Command::GetMessage { topic } => {
                out.push(TAG_GET_MESSAGE);
                put_string(out, topic);
            }
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<Command, DecodeError> {
        let (&tag, mut rest) = bytes.split_first().ok_or_else(|| DecodeError("empty".into()))?;
        let command = match tag {
            TAG_PUT_TOPIC => Command::PutTopic { topic: take_string(&mut rest)? },
            TAG_GET_TOPICS => Command::GetTopics,
            TAG_PUT_MESSAGE => {
                let topic = take_string(&mut rest)?;
                Command::PutMessage { topic, message: take_string(&mut rest)? }
            }
            TAG_GET_MESSAGE => Command::GetMessage { topic: take_string(&mut rest)? },
            other => return Err(DecodeError(format!("unknown tag {other}"))),
        };
        if !rest.is_empty() {
            return Err(DecodeError(format!("{} trailing bytes", rest.len())));
        }
        Ok(command)
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

fn put_string(out: &mut Vec<u8>, text: &str) {
    let length = u32::try_from(text.len()).expect("request size limit keeps strings under 4 GiB");
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

fn take_string(rest: &mut &[u8]) -> Result<String, DecodeError> {
    if rest.len() < 4 {
        return Err(DecodeError("truncated length".into()));
    }
    let (length_bytes, tail) = rest.split_at(4);
    let length = u32::from_le_bytes(length_bytes.try_into().expect("4 bytes")) as usize;
    if tail.len() < length {
        return Err(DecodeError(format!("string of {length} bytes truncated to {}", tail.len())));
    }
    let (text, tail) = tail.split_at(length);
    *rest = tail;
    String::from_utf8(text.to_vec()).map_err(|_| DecodeError("string is not UTF-8".into()))
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
