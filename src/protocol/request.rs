//! Decoding a client's request frame. Every malformed input becomes a
//! `RequestError` naming what is wrong; nothing here panics.

use serde_json::{Map, Value};

use super::reply::ErrorCode;
use crate::queue::{Command, Session, MAX_CLIENT_ID_BYTES, MAX_TOPIC_NAME_BYTES};

/// What a request asks for: its `"op"` field, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    /// `{"op":"status"}`: the node's status report, answered by any node at once.
    Status,
    /// A queue operation, served by the leader: `get_topics` as a read
    /// (ReadIndex), the others as entries of its log.
    Queue(Command),
    /// Hand leadership to the node at this index in the config.
    TransferLeader {
        /// The target's node id; not yet checked against the cluster size
        /// (the node answers `bad_request` for one outside it).
        to: usize,
    },
}

/// A request frame that parsed: what to do, and how to answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientRequest {
    /// Echoed unchanged in the reply, whatever JSON value it is.
    pub id: Option<Value>,
    /// (client_id, seq) when the client asked for exactly-once execution.
    pub session: Option<Session>,
    /// What the request asks for.
    pub operation: Operation,
}

/// A request frame that could not be parsed; the node sends it back as an
/// error reply at once.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestError {
    /// The request's `"id"` when the frame was a JSON object that had one, so
    /// the error reply can echo it.
    pub id: Option<Value>,
    /// [`ErrorCode::TooLarge`] for a frame over the byte limit, otherwise
    /// [`ErrorCode::BadRequest`].
    pub code: ErrorCode,
    /// What is wrong, for a human: the field at fault and why.
    pub detail: String,
}

/// Parse one request frame; `max_bytes` is checked before any parsing.
pub fn parse_request(frame: &[u8], max_bytes: usize) -> Result<ClientRequest, RequestError> {
    if frame.len() > max_bytes {
        return Err(RequestError {
            id: None,
            code: ErrorCode::TooLarge,
            detail: format!("request of {} bytes exceeds the limit of {max_bytes} bytes", frame.len()),
        });
    }
    let bad = |id: Option<Value>, detail: String| RequestError { id, code: ErrorCode::BadRequest, detail };
    let text = std::str::from_utf8(frame).map_err(|_| bad(None, "request is not valid UTF-8".into()))?;
    let value: Value =
        serde_json::from_str(text).map_err(|error| bad(None, format!("request is not JSON: {error}")))?;
    let Value::Object(fields) = value else {
        return Err(bad(None, "request must be a JSON object".into()));
    };
    let id = fields.get("id").cloned();
    let operation = parse_operation(&fields).map_err(|detail| bad(id.clone(), detail))?;
    let session = parse_session(&fields).map_err(|detail| bad(id.clone(), detail))?;
    Ok(ClientRequest { id, session, operation })
}

/// `client_id` and `seq` come together or not at all.
fn parse_session(fields: &Map<String, Value>) -> Result<Option<Session>, String> {
    match (fields.get("client_id"), fields.get("seq")) {
        (None, None) => Ok(None),
        (Some(Value::String(client_id)), Some(seq)) => {
            if client_id.is_empty() || client_id.len() > MAX_CLIENT_ID_BYTES {
                return Err(format!("field \"client_id\" must be 1 to {MAX_CLIENT_ID_BYTES} bytes"));
            }
            let seq = seq.as_u64().ok_or("field \"seq\" must be a non-negative integer")?;
            Ok(Some(Session { client_id: client_id.clone(), seq }))
        }
        (Some(Value::String(_)), None) => Err("field \"client_id\" needs a \"seq\"".into()),
        (None, Some(_)) => Err("field \"seq\" needs a \"client_id\"".into()),
        (Some(_), _) => Err("field \"client_id\" must be a string".into()),
    }
}

fn parse_operation(fields: &Map<String, Value>) -> Result<Operation, String> {
    let op = match fields.get("op") {
        None => return Err("missing field \"op\"".into()),
        Some(Value::String(op)) => op.as_str(),
        Some(_) => return Err("field \"op\" must be a string".into()),
    };
    let command = match op {
        "status" => return Ok(Operation::Status),
        "transfer_leader" => {
            let to = fields.get("to").and_then(Value::as_u64).ok_or("field \"to\" must be a node index")?;
            let to = usize::try_from(to).map_err(|_| "field \"to\" is out of range".to_string())?;
            return Ok(Operation::TransferLeader { to });
        }
        "put_topic" => Command::PutTopic { topic: topic_field(fields)? },
        "get_topics" => Command::GetTopics,
        "put_message" => Command::PutMessage { topic: topic_field(fields)?, message: string_field(fields, "message")? },
        "get_message" => Command::GetMessage { topic: topic_field(fields)? },
        other => return Err(format!("unknown op {other:?}")),
    };
    Ok(Operation::Queue(command))
}

fn string_field(fields: &Map<String, Value>, name: &str) -> Result<String, String> {
    match fields.get(name) {
        None => Err(format!("missing field {name:?}")),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(_) => Err(format!("field {name:?} must be a string")),
    }
}

fn topic_field(fields: &Map<String, Value>) -> Result<String, String> {
    let topic = string_field(fields, "topic")?;
    if topic.is_empty() {
        return Err("field \"topic\" must not be empty".into());
    }
    if topic.len() > MAX_TOPIC_NAME_BYTES {
        return Err(format!("field \"topic\" must be at most {MAX_TOPIC_NAME_BYTES} bytes, not {}", topic.len()));
    }
    Ok(topic)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ClientRequest, RequestError> {
        parse_request(text.as_bytes(), 1024)
    }

    #[test]
    fn parses_every_operation() {
        let put = parse(r#"{"op":"put_message","topic":"t","message":"m","id":7}"#).unwrap();
        assert_eq!(put.id, Some(Value::from(7)));
        assert_eq!(put.operation, Operation::Queue(Command::PutMessage { topic: "t".into(), message: "m".into() }));
        assert_eq!(parse(r#"{"op":"status"}"#).unwrap().operation, Operation::Status);
        assert_eq!(parse(r#"{"op":"transfer_leader","to":2}"#).unwrap().operation, Operation::TransferLeader { to: 2 });
        assert_eq!(parse(r#"{"op":"get_topics"}"#).unwrap().operation, Operation::Queue(Command::GetTopics));
        assert_eq!(
            parse(r#"{"op":"get_message","topic":"t"}"#).unwrap().operation,
            Operation::Queue(Command::GetMessage { topic: "t".into() })
        );
        assert_eq!(
            parse(r#"{"op":"put_topic","topic":"t"}"#).unwrap().operation,
            Operation::Queue(Command::PutTopic { topic: "t".into() })
        );
    }

    #[test]
    fn every_malformed_request_is_a_bad_request_with_a_reason() {
        let cases = [
            ("not json", "not JSON"),
            ("[1,2]", "JSON object"),
            ("{}", "missing field \"op\""),
            (r#"{"op":5}"#, "must be a string"),
            (r#"{"op":"fly"}"#, "unknown op"),
            (r#"{"op":"put_topic"}"#, "missing field \"topic\""),
            (r#"{"op":"put_topic","topic":3}"#, "\"topic\" must be a string"),
            (r#"{"op":"put_topic","topic":""}"#, "must not be empty"),
            (r#"{"op":"put_message","topic":"t"}"#, "missing field \"message\""),
            (r#"{"op":"put_message","topic":"t","message":null}"#, "\"message\" must be a string"),
            (r#"{"op":"transfer_leader"}"#, "\"to\" must be a node index"),
            (r#"{"op":"transfer_leader","to":-1}"#, "\"to\" must be a node index"),
        ];
        for (input, reason) in cases {
            let error = parse(input).unwrap_err();
            assert_eq!(error.code, ErrorCode::BadRequest, "{input}");
            assert!(error.detail.contains(reason), "{input}: {}", error.detail);
        }
        let invalid_utf8 = parse_request(&[0xff, 0xfe], 1024).unwrap_err();
        assert_eq!(invalid_utf8.code, ErrorCode::BadRequest);
    }

    #[test]
    fn a_session_is_client_id_and_seq_together() {
        let request = parse(r#"{"op":"get_message","topic":"t","client_id":"c1","seq":42}"#).unwrap();
        assert_eq!(request.session, Some(Session { client_id: "c1".into(), seq: 42 }));
        assert_eq!(parse(r#"{"op":"get_topics"}"#).unwrap().session, None);
        let cases = [
            (r#"{"op":"get_topics","client_id":"c"}"#, "needs a \"seq\""),
            (r#"{"op":"get_topics","seq":1}"#, "needs a \"client_id\""),
            (r#"{"op":"get_topics","client_id":7,"seq":1}"#, "must be a string"),
            (r#"{"op":"get_topics","client_id":"","seq":1}"#, "1 to 256 bytes"),
            (r#"{"op":"get_topics","client_id":"c","seq":-1}"#, "non-negative integer"),
            (r#"{"op":"get_topics","client_id":"c","seq":1.5}"#, "non-negative integer"),
            (r#"{"op":"get_topics","client_id":"c","seq":"1"}"#, "non-negative integer"),
        ];
        for (input, reason) in cases {
            let error = parse(input).unwrap_err();
            assert_eq!(error.code, ErrorCode::BadRequest, "{input}");
            assert!(error.detail.contains(reason), "{input}: {}", error.detail);
        }
        let long = format!(r#"{{"op":"get_topics","client_id":"{}","seq":1}}"#, "x".repeat(257));
        assert!(parse_request(long.as_bytes(), 4096).is_err());
    }

    #[test]
    fn a_topic_name_is_at_most_256_bytes_in_every_operation() {
        let longest = "é".repeat(128);
        let request = format!(r#"{{"op":"put_topic","topic":"{longest}"}}"#);
        assert_eq!(parse(&request).unwrap().operation, Operation::Queue(Command::PutTopic { topic: longest }));
        let too_long = "é".repeat(128) + "x";
        for op in ["put_topic", "get_message", r#"put_message","message":"m"#] {
            let request = format!(r#"{{"op":"{op}","topic":"{too_long}"}}"#);
            let error = parse(&request).unwrap_err();
            assert_eq!(error.code, ErrorCode::BadRequest, "{request}");
            assert!(error.detail.contains("at most 256 bytes, not 257"), "{}", error.detail);
        }
    }

    #[test]
    fn bad_request_still_echoes_the_id() {
        let error = parse(r#"{"op":"fly","id":"abc"}"#).unwrap_err();
        assert_eq!(error.id, Some(Value::from("abc")));
    }

    #[test]
    fn size_is_checked_before_parsing() {
        let error = parse_request(&vec![b'x'; 2000], 1024).unwrap_err();
        assert_eq!(error.code, ErrorCode::TooLarge);
    }
}
