//! Encoding replies. Success and plain-failure bodies carry exactly the keys
//! the protocol names (plus an echoed id), so clients can compare them whole.

use serde_json::{Map, Value};

use crate::queue::{QueueReply, MAX_QUEUED_MESSAGE_BYTES, MAX_TOPICS, MAX_TOPIC_NAME_BYTES};

/// The `"error"` of a failed reply; docs/protocol.md's table says what each
/// means and whether the request may have taken effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The frame is not a valid request (not JSON, unknown op, missing or
    /// mistyped field, a topic name over its limit). Never took effect.
    BadRequest,
    /// This node is not the leader, or the request's entry was replaced by a
    /// newer leader's. Not applied; safe to retry at the leader named.
    NotLeader,
    /// The request was appended, but this node lost leadership (or its storage
    /// failed) before it committed: it may still commit.
    LeaderChanged,
    /// The request did not commit (a read: was not confirmed; a transfer:
    /// leadership did not move) in time. A write may still commit later.
    Timeout,
    /// The frame is larger than `--max-request-bytes`; checked before parsing.
    TooLarge,
    /// The leader is at capacity and refused the request before proposing it;
    /// back off and retry.
    Busy,
    /// The node's storage failed; it takes no writes until it works again.
    StorageFailed,
    /// The queues hold `MAX_QUEUED_MESSAGE_BYTES`: a `put_message` refused.
    QueueFull,
    /// `MAX_TOPICS` exist: a `put_topic` of a new one refused.
    TooManyTopics,
    /// An admin operation from a client not allowed to make it.
    Forbidden,
    /// A request that would open a session while the sessions are full of
    /// recently used ones.
    TooManySessions,
}

impl ErrorCode {
    /// The code as it appears on the wire (`"not_leader"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::NotLeader => "not_leader",
            ErrorCode::LeaderChanged => "leader_changed",
            ErrorCode::Timeout => "timeout",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::Busy => "busy",
            ErrorCode::StorageFailed => "storage_failed",
            ErrorCode::QueueFull => "queue_full",
            ErrorCode::TooManyTopics => "too_many_topics",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::TooManySessions => "too_many_sessions",
        }
    }
}

/// What `{"op":"status"}` answers: one node's view of the cluster and its
/// own progress, as docs/protocol.md ("status") describes field by field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    /// `"Leader"`, `"Follower"` or `"Candidate"`; a pre-candidate and a node
    /// whose storage failed report `"Follower"`.
    pub role: &'static str,
    /// The node's current term.
    pub term: u64,
    /// The node id of the leader this node knows for its term, if any.
    pub leader: Option<usize>,
    /// The highest log index this node knows committed.
    pub commit_index: u64,
    /// The highest log index applied to this node's queue state.
    pub last_applied: u64,
    /// The index of the node's last log entry.
    pub log_size: u64,
    /// First index still held in the log; earlier ones are in the snapshot.
    pub first_index: u64,
    /// The last index the node's latest durable snapshot covers (0: none yet).
    pub snapshot_index: u64,
    /// Bytes the data directory's log, snapshot and term file occupy.
    pub disk_bytes: u64,
    /// fdatasyncs done since start; writes per sync is group commit's gain.
    pub disk_syncs: u64,
    /// None while storage works; else why writes are refused.
    pub storage_error: Option<String>,
    /// Checksum of every command applied so far: replicas with the same
    /// `last_applied` must agree on it.
    pub state_digest: u64,
    /// `"intact"`, or how far the node got repairing lost or damaged
    /// state from the cluster: `"learning the term"`, `"catching up"`
    /// (docs/storage.md, "Repair from the cluster").
    pub repair: &'static str,
}

impl StatusReport {
    /// What `status` answers before the event loop publishes its first
    /// report: a follower in term 0 with an empty log.
    pub fn starting() -> StatusReport {
        StatusReport {
            role: "Follower",
            term: 0,
            leader: None,
            commit_index: 0,
            last_applied: 0,
            log_size: 0,
            first_index: 1,
            snapshot_index: 0,
            disk_bytes: 0,
            disk_syncs: 0,
            storage_error: None,
            state_digest: 0,
            repair: "intact",
        }
    }
}

/// The body of one reply frame, before the request's id is added.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyBody {
    /// The queue's answer to an applied (or refused) command.
    Queue(QueueReply),
    /// The answer to `status`.
    Status(StatusReport),
    /// `leader` is the leader's client address; only `not_leader` carries it.
    Error {
        /// Which failure; its wire text is [`ErrorCode::as_str`].
        code: ErrorCode,
        /// What went wrong, for a human.
        detail: String,
        /// `None`: no `"leader"` key. `Some(None)`: `"leader": null` (not known).
        /// `Some(Some(address))`: the leader's client address.
        leader: Option<Option<String>>,
    },
}

impl ReplyBody {
    /// An error reply without a `"leader"` key. For `not_leader` and
    /// `leader_changed`, use [`ReplyBody::redirect`].
    pub fn error(code: ErrorCode, detail: impl Into<String>) -> ReplyBody {
        ReplyBody::Error { code, detail: detail.into(), leader: None }
    }

    /// `not_leader` or `leader_changed`: an error naming where the leader is
    /// (its client address, or null when unknown).
    pub fn redirect(code: ErrorCode, leader_address: Option<String>, detail: impl Into<String>) -> ReplyBody {
        assert!(matches!(code, ErrorCode::NotLeader | ErrorCode::LeaderChanged), "only redirects name a leader");
        ReplyBody::Error { code, detail: detail.into(), leader: Some(leader_address) }
    }

    /// The reply frame, echoing the request's id if it had one.
    pub fn encode(&self, id: Option<&Value>) -> Vec<u8> {
        let mut object = self.to_object();
        if let Some(id) = id {
            object.insert("id".into(), id.clone());
        }
        serde_json::to_vec(&Value::Object(object)).expect("a JSON map always serializes")
    }

    fn to_object(&self) -> Map<String, Value> {
        let mut object = Map::new();
        match self {
            ReplyBody::Queue(reply) => {
                let refusal = queue_refusal(reply);
                let success = refusal.is_none() && *reply != QueueReply::Refused;
                object.insert("success".into(), Value::Bool(success));
                match reply {
                    QueueReply::Topics(topics) => {
                        object.insert("topics".into(), topics.iter().cloned().map(Value::String).collect());
                    }
                    QueueReply::Message(message) => {
                        object.insert("message".into(), Value::String(message.clone()));
                    }
                    _ => {}
                }
                if let Some((code, detail)) = refusal {
                    object.insert("error".into(), code.into());
                    object.insert("detail".into(), detail.into());
                }
            }
            ReplyBody::Status(status) => {
                object.insert("role".into(), status.role.into());
                object.insert("term".into(), status.term.into());
                object.insert("leader".into(), status.leader.map_or(Value::Null, Value::from));
                object.insert("commit_index".into(), status.commit_index.into());
                object.insert("last_applied".into(), status.last_applied.into());
                object.insert("log_size".into(), status.log_size.into());
                object.insert("first_index".into(), status.first_index.into());
                object.insert("snapshot_index".into(), status.snapshot_index.into());
                object.insert("disk_bytes".into(), status.disk_bytes.into());
                object.insert("disk_syncs".into(), status.disk_syncs.into());
                let storage =
                    status.storage_error.as_ref().map_or("ok".to_string(), |error| format!("failed: {error}"));
                object.insert("storage".into(), storage.into());
                object.insert("state_digest".into(), format!("{:016x}", status.state_digest).into());
                object.insert("repair".into(), status.repair.into());
            }
            ReplyBody::Error { code, detail, leader } => {
                object.insert("success".into(), Value::Bool(false));
                object.insert("error".into(), code.as_str().into());
                object.insert("detail".into(), detail.clone().into());
                if let Some(leader) = leader {
                    object.insert("leader".into(), leader.clone().map_or(Value::Null, Value::String));
                }
            }
        }
        object
    }
}

/// The error code and detail of a queue reply that refuses with a reason;
/// None for success and for the plain `{"success":false}`.
fn queue_refusal(reply: &QueueReply) -> Option<(&'static str, String)> {
    match reply {
        QueueReply::Stale { latest_seq } => Some((
            "stale_seq",
            format!(
                "seq is below this client's latest applied seq {latest_seq}; that request's reply is no longer \
                 kept, and this one was not applied"
            ),
        )),
        QueueReply::ReplyDropped => Some((
            "reply_dropped",
            "this seq was applied, but its reply is no longer kept (the session memory limit dropped it); it was \
             not applied again"
                .into(),
        )),
        QueueReply::QueueFull => Some((
            ErrorCode::QueueFull.as_str(),
            format!("the queues hold {MAX_QUEUED_MESSAGE_BYTES} message bytes at most; take messages first"),
        )),
        QueueReply::TooManyTopics => {
            Some((ErrorCode::TooManyTopics.as_str(), format!("the cluster holds {MAX_TOPICS} topics at most")))
        }
        QueueReply::TopicNameTooLong => Some((
            ErrorCode::BadRequest.as_str(),
            format!("field \"topic\" must be at most {MAX_TOPIC_NAME_BYTES} bytes"),
        )),
        QueueReply::TooManySessions => Some((
            ErrorCode::TooManySessions.as_str(),
            "the cluster keeps a session for each of its recent clients and has no room for a new one; \
             retry later (sessions of clients gone quiet make room)"
                .into(),
        )),
        QueueReply::Done | QueueReply::Refused | QueueReply::Topics(_) | QueueReply::Message(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decode(bytes: Vec<u8>) -> Value {
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn queue_replies_carry_only_their_keys() {
        assert_eq!(decode(ReplyBody::Queue(QueueReply::Done).encode(None)), json!({"success": true}));
        assert_eq!(decode(ReplyBody::Queue(QueueReply::Refused).encode(None)), json!({"success": false}));
        let topics = ReplyBody::Queue(QueueReply::Topics(vec!["a".into()])).encode(Some(&json!("r1")));
        assert_eq!(decode(topics), json!({"success": true, "topics": ["a"], "id": "r1"}));
        let message = ReplyBody::Queue(QueueReply::Message("m".into())).encode(None);
        assert_eq!(decode(message), json!({"success": true, "message": "m"}));
    }

    #[test]
    fn session_refusals_are_errors_with_their_codes() {
        let stale = decode(ReplyBody::Queue(QueueReply::Stale { latest_seq: 4 }).encode(None));
        assert_eq!((&stale["success"], &stale["error"]), (&json!(false), &json!("stale_seq")));
        let dropped = decode(ReplyBody::Queue(QueueReply::ReplyDropped).encode(None));
        assert_eq!((&dropped["success"], &dropped["error"]), (&json!(false), &json!("reply_dropped")));
        assert!(dropped["detail"].as_str().unwrap().contains("not applied again"));
    }

    #[test]
    fn limit_refusals_are_errors_naming_the_limit() {
        let cases = [
            (QueueReply::QueueFull, "queue_full", "1073741824 message bytes"),
            (QueueReply::TooManyTopics, "too_many_topics", "10000 topics"),
            (QueueReply::TopicNameTooLong, "bad_request", "at most 256 bytes"),
        ];
        for (reply, code, limit) in cases {
            let body = decode(ReplyBody::Queue(reply).encode(None));
            assert_eq!((&body["success"], &body["error"]), (&json!(false), &json!(code)));
            assert!(body["detail"].as_str().unwrap().contains(limit), "{body}");
        }
    }

    #[test]
    fn redirects_name_the_leader_or_null() {
        let known = ReplyBody::redirect(ErrorCode::NotLeader, Some("tcp://127.0.0.1:5550".into()), "x").encode(None);
        assert_eq!(decode(known)["leader"], json!("tcp://127.0.0.1:5550"));
        let unknown = decode(ReplyBody::redirect(ErrorCode::NotLeader, None, "x").encode(None));
        assert_eq!(unknown["leader"], Value::Null);
        assert_eq!(unknown["error"], json!("not_leader"));
    }

    #[test]
    fn status_has_the_documented_shape() {
        let status = StatusReport {
            role: "Leader",
            term: 3,
            leader: Some(1),
            commit_index: 9,
            last_applied: 9,
            log_size: 10,
            first_index: 4,
            snapshot_index: 5,
            disk_bytes: 300,
            disk_syncs: 7,
            storage_error: None,
            state_digest: 255,
            repair: "intact",
        };
        let expected = json!({"role":"Leader","term":3,"leader":1,"commit_index":9,"last_applied":9,"log_size":10,
            "first_index":4,"snapshot_index":5,"disk_bytes":300,"disk_syncs":7,"storage":"ok","state_digest":"00000000000000ff",
            "repair":"intact"});
        assert_eq!(decode(ReplyBody::Status(status).encode(None)), expected);
    }
}
