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
        match self {
            Command::PutTopic { topic } => {
                out.push(TAG_PUT_TOPIC);
                put_string(&mut out, topic);
            }
            Command::GetTopics => out.push(TAG_GET_TOPICS),
            Command::PutMessage { topic, message } => {
                out.push(TAG_PUT_MESSAGE);
                put_string(&mut out, topic);
                put_string(&mut out, message);
            }
            Command::GetMessage { topic } => {
                out.push(TAG_GET_MESSAGE);
                put_string(&mut out, topic);
            }
        }
        out
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
}
