//! Client sessions for exactly-once requests (Raft dissertation §6.3). The
//! state machine remembers, per client, the latest sequence number it applied
//! and that request's reply; a retry of it gets the same reply without being
//! applied again. Sessions expire by the log, never by a clock, so every
//! replica drops the same sessions at the same entry.
//!
//! Memory is bounded by bytes as well as by count: a `get_message` reply may
//! be a megabyte, and a hundred clients that each took one would otherwise
//! keep a hundred megabytes in every replica and snapshot after the queues
//! are empty. Beyond `SessionLimits::max_bytes`, the least recently used
//! replies larger than `SMALL_REPLY_BYTES` are dropped first (the session
//! keeps its seq, and a retry gets `ReplyDropped`, never a second apply);
//! only if that is not enough do whole sessions go.
//!
//! A session used within the last `SessionLimits::protected_entries`
//! entries is never dropped to make room: a flood of requests under fresh
//! client ids would otherwise push out a live client's session, and that
//! client's retry would be applied a second time. When every session that
//! could go is that recent, a request that would open a new session is
//! refused instead (`TooManySessions`, not applied), until older sessions
//! age out of the window.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::state_machine::QueueReply;

/// Log index, as the state machine sees it: only an ordering.
pub type EntryIndex = u64;

/// How many sessions are kept, how many bytes they may hold together, and
/// after how many log entries without a request a session is dropped. Part
/// of the replicated state's definition: every node of a cluster must use
/// the same limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// At most this many sessions are kept; beyond it the least recently used
    /// go first (unless protected).
    pub max_sessions: usize,
    /// A session with no request for this many log entries is dropped.
    pub idle_entries: u64,
    /// Bytes all sessions may take, counted as their size in the snapshot
    /// image (`session_bytes`), which is also what they cost in memory
    /// apart from the maps' own overhead.
    pub max_bytes: usize,
    /// A session used within this many entries is not dropped to make
    /// room for others (the module docs say why).
    pub protected_entries: u64,
}

impl Default for SessionLimits {
    fn default() -> SessionLimits {
        // 16M entries is minutes at full load and days at a light one: far
        // longer than any client keeps retrying one request. 16 MiB holds
        // the latest reply of 100,000 clients whose replies are small (a
        // uuid client id and an acknowledgement take 53 bytes), or sixteen
        // 1 MiB messages besides them.
        // 2^20 entries protect a session for about 20 s at full load, and
        // longer at any lighter one: far longer than a client takes to
        // retry after a lost reply.
        SessionLimits { max_sessions: 100_000, idle_entries: 1 << 24, max_bytes: 16 << 20, protected_entries: 1 << 20 }
    }
}

/// Replies of at most this many bytes (beyond their tag, in the snapshot
/// image) are kept as long as their session: acknowledgements, refusals and
/// short messages. Larger ones may be dropped to respect `max_bytes`.
pub const SMALL_REPLY_BYTES: usize = 64;

/// The most a new session for `client_id` can add that dropping large
/// replies could not take back: its id and a small reply.
fn new_session_bytes(client_id: &str) -> usize {
    4 + client_id.len() + 8 + 8 + 1 + SMALL_REPLY_BYTES
}

/// A session's size in the snapshot image: client id (u32 length and bytes),
/// seq, last use, and the reply (a tag and its payload).
pub fn session_bytes(client_id: &str, reply: &QueueReply) -> usize {
    4 + client_id.len() + 8 + 8 + 1 + reply_payload_bytes(reply)
}

/// A reply's size in the snapshot image after its tag.
pub fn reply_payload_bytes(reply: &QueueReply) -> usize {
    match reply {
        QueueReply::Done
        | QueueReply::Refused
        | QueueReply::ReplyDropped
        | QueueReply::QueueFull
        | QueueReply::TooManyTopics
        | QueueReply::TooManySessions
        | QueueReply::TopicNameTooLong => 0,
        QueueReply::Stale { .. } => 8,
        QueueReply::Message(message) => 4 + message.len(),
        QueueReply::Topics(topics) => 8 + topics.iter().map(|topic| 4 + topic.len()).sum::<usize>(),
    }
}

fn is_droppable(reply: &QueueReply) -> bool {
    reply_payload_bytes(reply) > SMALL_REPLY_BYTES
}

/// What a session remembers of its client's latest request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The client's latest applied seq.
    pub seq: u64,
    /// `QueueReply::ReplyDropped` once dropped to respect `max_bytes`.
    pub reply: QueueReply,
    /// Index of the entry that last used this session.
    pub last_used_index: EntryIndex,
}

/// What to do with a request carrying (client_id, seq).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionCheck {
    /// Not seen before: apply it.
    New,
    /// A retry of the latest request: answer with its reply (or
    /// `ReplyDropped` if it was dropped), apply nothing.
    Duplicate(QueueReply),
    /// Older than the latest request; its reply is gone. Not applied.
    Stale {
        /// The latest seq the client has had applied.
        latest_seq: u64,
    },
}

/// The sessions of every client, keyed by client id, with the indexes that
/// let them expire and shed bytes in log order (deterministic on every
/// replica).
#[derive(Debug, Clone, Default)]
pub struct SessionTable {
    limits: SessionLimits,
    by_client: HashMap<Arc<str>, SessionRecord>,
    /// Sessions by last use, oldest first: expiry pops from the front.
    by_last_use: BTreeMap<EntryIndex, Arc<str>>,
    /// The sessions of `by_last_use` whose reply is larger than
    /// `SMALL_REPLY_BYTES`: the first to give their reply up.
    large_replies_by_last_use: BTreeMap<EntryIndex, Arc<str>>,
    /// The sum of `session_bytes` over every session.
    bytes: usize,
    /// The part of `bytes` that large replies take, which dropping them
    /// would free.
    droppable_bytes: usize,
}

impl SessionTable {
    /// An empty table. Panics if `limits` keep nothing (a zero count or byte
    /// limit): that is a programming error, not input.
    pub fn with_limits(limits: SessionLimits) -> SessionTable {
        assert!(
            limits.max_sessions > 0 && limits.max_bytes > 0,
            "a session table that keeps nothing cannot deduplicate"
        );
        SessionTable { limits, ..SessionTable::default() }
    }

    /// Whether a request at entry `index` may open a session for a client
    /// that has none: yes while there is room, or while the least recently
    /// used session is old enough to give its place.
    pub fn admits_new_session(&self, client_id: &str, index: EntryIndex) -> bool {
        let Some((&least_recent, _)) = self.by_last_use.first_key_value() else {
            return true; // an empty table has room for one, whatever its size
        };
        let kept_bytes = self.bytes - self.droppable_bytes;
        let full = self.by_client.len() >= self.limits.max_sessions
            || kept_bytes + new_session_bytes(client_id) > self.limits.max_bytes;
        !full || !self.is_protected(least_recent, index)
    }

    fn is_protected(&self, last_used: EntryIndex, index: EntryIndex) -> bool {
        index.saturating_sub(last_used) <= self.limits.protected_entries
    }

    /// Whether `client_id` has a session.
    pub fn contains(&self, client_id: &str) -> bool {
        self.by_client.contains_key(client_id)
    }

    /// How a request (`client_id`, `seq`) relates to the client's session;
    /// changes nothing.
    pub fn check(&self, client_id: &str, seq: u64) -> SessionCheck {
        match self.by_client.get(client_id) {
            None => SessionCheck::New,
            Some(record) if seq > record.seq => SessionCheck::New,
            Some(record) if seq == record.seq => SessionCheck::Duplicate(record.reply.clone()),
            Some(record) => SessionCheck::Stale { latest_seq: record.seq },
        }
    }

    /// Remember `reply` as the client's latest, used at log entry `index`.
    /// Indices only grow: each entry is applied once, in order.
    pub fn record(&mut self, client_id: &str, seq: u64, reply: QueueReply, index: EntryIndex) {
        assert!(self.by_last_use.last_key_value().is_none_or(|(last, _)| *last < index), "entries apply in order");
        let key: Arc<str> = match self.by_client.get_key_value(client_id) {
            Some((key, _)) => {
                let key = key.clone();
                self.forget(&key);
                key
            }
            None => Arc::from(client_id),
        };
        self.insert(key, SessionRecord { seq, reply, last_used_index: index });
    }

    /// Drop sessions idle for longer than the limit as of entry `index` and
    /// the least recently used beyond the count limit; then, while the
    /// sessions take more than `max_bytes`, the least recently used large
    /// replies, and as a last resort whole sessions.
    /// Recent sessions (`protected_entries`) are never dropped for room:
    /// the table may then stay above its limits until they age, which new
    /// sessions cannot make worse (`admits_new_session` refuses them).
    pub fn expire(&mut self, index: EntryIndex) {
        while let Some((&last_used, _)) = self.by_last_use.first_key_value() {
            let idle = index.saturating_sub(last_used) > self.limits.idle_entries;
            let over = self.by_client.len() > self.limits.max_sessions;
            let may_go_for_room = over && !self.is_protected(last_used, index);
            if !idle && !may_go_for_room {
                break;
            }
            self.drop_least_recently_used();
        }
        while self.bytes > self.limits.max_bytes {
            match self.large_replies_by_last_use.first_key_value() {
                Some((_, client)) => self.drop_reply(client.clone()),
                None => match self.by_last_use.first_key_value() {
                    Some((&last_used, _)) if !self.is_protected(last_used, index) => self.drop_least_recently_used(),
                    _ => break,
                },
            }
        }
        assert_eq!(self.by_client.len(), self.by_last_use.len(), "the two indexes of sessions agree");
    }

    fn drop_least_recently_used(&mut self) {
        let (_, client) = self.by_last_use.first_key_value().expect("called with sessions left");
        let client = client.clone();
        self.forget(&client);
    }

    /// Keep the session and its seq, without the reply.
    fn drop_reply(&mut self, client: Arc<str>) {
        let mut record = self.forget(&client);
        record.reply = QueueReply::ReplyDropped;
        self.insert(client, record);
    }

    fn insert(&mut self, client: Arc<str>, record: SessionRecord) {
        self.bytes += session_bytes(&client, &record.reply);
        if is_droppable(&record.reply) {
            self.droppable_bytes += reply_payload_bytes(&record.reply);
            self.large_replies_by_last_use.insert(record.last_used_index, client.clone());
        }
        self.by_last_use.insert(record.last_used_index, client.clone());
        self.by_client.insert(client, record);
    }

    /// Remove a session from every index; it must exist.
    fn forget(&mut self, client: &str) -> SessionRecord {
        let record = self.by_client.remove(client).expect("only known sessions are forgotten");
        self.by_last_use.remove(&record.last_used_index);
        self.large_replies_by_last_use.remove(&record.last_used_index);
        self.bytes -= session_bytes(client, &record.reply);
        if is_droppable(&record.reply) {
            self.droppable_bytes -= reply_payload_bytes(&record.reply);
        }
        record
    }

    /// What the sessions take, as `session_bytes` counts it.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// How many sessions are kept.
    pub fn len(&self) -> usize {
        self.by_client.len()
    }

    /// Whether no session is kept.
    pub fn is_empty(&self) -> bool {
        self.by_client.is_empty()
    }

    /// Every session, least recently used first (the snapshot order).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &SessionRecord)> {
        self.by_last_use.values().map(|client| (client.as_ref(), &self.by_client[client]))
    }

    /// Add a session read from a snapshot, after those already restored.
    pub fn restore(&mut self, client_id: String, record: SessionRecord) -> Result<(), String> {
        let in_order = self.by_last_use.last_key_value().is_none_or(|(last, _)| *last < record.last_used_index);
        if client_id.is_empty() || self.by_client.contains_key(client_id.as_str()) || !in_order {
            return Err(format!("snapshot holds an empty, repeated or out-of-order session {client_id:?}"));
        }
        self.insert(Arc::from(client_id), record);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(max_sessions: usize, idle_entries: u64) -> SessionTable {
        SessionTable::with_limits(SessionLimits {
            max_sessions,
            idle_entries,
            protected_entries: 0,
            ..SessionLimits::default()
        })
    }

    fn protected_table(max_sessions: usize, protected_entries: u64) -> SessionTable {
        SessionTable::with_limits(SessionLimits { max_sessions, protected_entries, ..SessionLimits::default() })
    }

    // The attack of issue 11: requests under fresh client ids used to push a
    // live client's session out, and its retry was then applied twice.
    #[test]
    fn a_recently_used_session_is_never_pushed_out_by_new_ones() {
        let mut sessions = protected_table(3, 100);
        sessions.record("victim", 7, QueueReply::Done, 1);
        sessions.record("a", 1, QueueReply::Done, 2);
        sessions.record("b", 1, QueueReply::Done, 3);
        for index in 4..50 {
            assert!(!sessions.admits_new_session("fresh", index), "full of sessions used within 100 entries");
            sessions.expire(index);
        }
        assert_eq!(sessions.check("victim", 7), SessionCheck::Duplicate(QueueReply::Done));
        assert!(sessions.admits_new_session("new", 102), "the victim's session is 101 entries old: it may go");
        sessions.record("new", 1, QueueReply::Done, 102);
        sessions.expire(102);
        assert_eq!(sessions.len(), 3);
        assert_eq!(sessions.check("victim", 7), SessionCheck::New, "the least recently used went");
    }

    #[test]
    fn large_replies_that_could_be_dropped_do_not_keep_new_sessions_out() {
        // "reader" takes 931 bytes, 904 of them its reply; "writer" 27 more.
        let mut sessions = SessionTable::with_limits(SessionLimits { max_bytes: 940, ..SessionLimits::default() });
        sessions.record("reader", 1, message(900), 1);
        assert!(sessions.admits_new_session("writer", 2), "the 900-byte reply can be dropped to make room");
        sessions.record("writer", 1, QueueReply::Done, 2);
        sessions.expire(2);
        assert_eq!(sessions.check("reader", 1), SessionCheck::Duplicate(QueueReply::ReplyDropped));
        assert_eq!(sessions.check("writer", 1), SessionCheck::Duplicate(QueueReply::Done));
    }

    fn table_of_bytes(max_bytes: usize) -> SessionTable {
        SessionTable::with_limits(SessionLimits { max_bytes, protected_entries: 0, ..SessionLimits::default() })
    }

    fn message(bytes: usize) -> QueueReply {
        QueueReply::Message("x".repeat(bytes))
    }

    #[test]
    fn the_latest_request_is_a_duplicate_and_older_ones_are_stale() {
        let mut sessions = table(10, 100);
        assert_eq!(sessions.check("c", 1), SessionCheck::New);
        sessions.record("c", 1, QueueReply::Done, 5);
        assert_eq!(sessions.check("c", 1), SessionCheck::Duplicate(QueueReply::Done));
        assert_eq!(sessions.check("c", 2), SessionCheck::New);
        sessions.record("c", 2, QueueReply::Message("m".into()), 6);
        assert_eq!(sessions.check("c", 2), SessionCheck::Duplicate(QueueReply::Message("m".into())));
        assert_eq!(sessions.check("c", 1), SessionCheck::Stale { latest_seq: 2 });
        assert_eq!(sessions.check("other", 1), SessionCheck::New);
        assert_eq!(sessions.len(), 1);
    }

    #[test]
    fn idle_sessions_expire_by_log_index() {
        let mut sessions = table(10, 100);
        sessions.record("old", 1, QueueReply::Done, 1);
        sessions.record("recent", 1, QueueReply::Done, 50);
        sessions.expire(101);
        assert_eq!(sessions.len(), 2, "idle for exactly the limit is kept");
        sessions.expire(102);
        assert_eq!(sessions.check("old", 1), SessionCheck::New, "expired");
        assert_eq!(sessions.check("recent", 1), SessionCheck::Duplicate(QueueReply::Done));
    }

    #[test]
    fn beyond_the_count_limit_the_least_recently_used_goes() {
        let mut sessions = table(2, 1000);
        sessions.record("a", 1, QueueReply::Done, 1);
        sessions.record("b", 1, QueueReply::Done, 2);
        sessions.record("a", 2, QueueReply::Done, 3); // a is now the most recent
        sessions.record("c", 1, QueueReply::Done, 4);
        sessions.expire(4);
        assert_eq!(sessions.len(), 2);
        assert_eq!(sessions.check("b", 1), SessionCheck::New, "b was least recently used");
        let order: Vec<&str> = sessions.iter().map(|(client, _)| client).collect();
        assert_eq!(order, ["a", "c"]);
    }

    #[test]
    fn restore_refuses_repeats_and_disorder() {
        let mut sessions = SessionTable::default();
        let record = |index| SessionRecord { seq: 1, reply: QueueReply::Done, last_used_index: index };
        assert!(sessions.restore("a".into(), record(3)).is_ok());
        assert!(sessions.restore("a".into(), record(4)).is_err());
        assert!(sessions.restore("b".into(), record(2)).is_err());
        assert!(sessions.restore(String::new(), record(9)).is_err());
    }

    #[test]
    fn bytes_count_every_session_and_follow_replacements() {
        let mut sessions = table_of_bytes(1 << 20);
        sessions.record("ab", 1, QueueReply::Done, 1);
        assert_eq!(sessions.bytes(), 4 + 2 + 8 + 8 + 1);
        sessions.record("ab", 2, message(100), 2);
        assert_eq!(sessions.bytes(), 4 + 2 + 8 + 8 + 1 + 4 + 100);
        sessions.record("c", 1, QueueReply::Stale { latest_seq: 3 }, 3);
        assert_eq!(sessions.bytes(), session_bytes("ab", &message(100)) + 4 + 1 + 8 + 8 + 1 + 8);
        sessions.expire(3);
        let recount: usize = sessions.iter().map(|(client, record)| session_bytes(client, &record.reply)).sum();
        assert_eq!(sessions.bytes(), recount);
    }

    #[test]
    fn over_the_byte_limit_the_least_recently_used_large_replies_go_first() {
        let one = session_bytes("a", &message(1000));
        let mut sessions = table_of_bytes(2 * one + 100);
        sessions.record("a", 1, message(1000), 1);
        sessions.record("small", 1, QueueReply::Message("short".into()), 2);
        sessions.record("b", 1, message(1000), 3);
        sessions.record("c", 1, message(1000), 4);
        sessions.expire(4);
        assert!(sessions.bytes() <= 2 * one + 100);
        assert_eq!(sessions.check("a", 1), SessionCheck::Duplicate(QueueReply::ReplyDropped), "oldest large reply");
        assert_eq!(sessions.check("small", 1), SessionCheck::Duplicate(QueueReply::Message("short".into())));
        assert_eq!(sessions.check("b", 1), SessionCheck::Duplicate(message(1000)));
        assert_eq!(sessions.check("c", 1), SessionCheck::Duplicate(message(1000)));
        assert_eq!(sessions.check("a", 0), SessionCheck::Stale { latest_seq: 1 }, "the dropped reply's seq stays");
        assert_eq!(sessions.len(), 4);
    }

    #[test]
    fn small_replies_are_kept_and_whole_sessions_go_only_as_a_last_resort() {
        let small = session_bytes("a", &QueueReply::Done);
        let mut sessions = table_of_bytes(2 * small);
        sessions.record("a", 1, QueueReply::Done, 1);
        sessions.record("b", 1, QueueReply::Done, 2);
        sessions.record("c", 1, message(SMALL_REPLY_BYTES + 1), 3);
        sessions.expire(3);
        assert_eq!(sessions.check("c", 1), SessionCheck::Duplicate(QueueReply::ReplyDropped));
        assert_eq!(sessions.check("a", 1), SessionCheck::New, "a was least recently used");
        assert_eq!(sessions.len(), 2);
        assert!(sessions.bytes() <= 2 * small);
    }
}
