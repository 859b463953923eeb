//! Decoding a client's request frame. Every malformed input becomes a
//! `RequestError` naming what is wrong; nothing here panics.

use serde_json::{Map, Value};

use super::reply::ErrorCode;
use crate::queue::Command;

#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    Status,
    Queue(Command),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClientRequest {
    /// Echoed unchanged in the reply, whatever JSON value it is.
    pub id: Option<Value>,
    pub operation: Operation,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RequestError {
    pub id: Option<Value>,
    pub code: ErrorCode,
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
    Ok(ClientRequest { id, operation })
}

fn parse_operation(fields: &Map<String, Value>) -> Result<Operation, String> {
    let op = match fields.get("op") {
        None => return Err("missing field \"op\"".into()),
        Some(Value::String(op)) => op.as_str(),
        Some(_) => return Err("field \"op\" must be a string".into()),
    };
    let command = match op {
        "status" => return Ok(Operation::Status),
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
