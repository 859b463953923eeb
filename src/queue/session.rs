//! Client sessions for exactly-once requests (Raft dissertation §6.3). The
//! state machine remembers, per client, the latest sequence number it applied
//! and that request's reply; a retry of it gets the same reply without being
//! applied again. Sessions expire by the log, never by a clock, so every
//! replica drops the same sessions at the same entry.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::state_machine::QueueReply;

/// Log index, as the state machine sees it: only an ordering.
pub type EntryIndex = u64;

/// How many sessions are kept, and after how many log entries without a
/// request a session is dropped. Part of the replicated state's definition:
/// every node of a cluster must use the same limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    pub max_sessions: usize,
    pub idle_entries: u64,
}

impl Default for SessionLimits {
    fn default() -> SessionLimits {
        // 100,000 sessions of a few hundred bytes each is tens of MB at most;
        // 16M entries is minutes at full load and days at a light one: far
        // longer than any client keeps retrying one request.
        SessionLimits { max_sessions: 100_000, idle_entries: 1 << 24 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub seq: u64,
    pub reply: QueueReply,
    /// Index of the entry that last used this session.
    pub last_used_index: EntryIndex,
}

/// What to do with a request carrying (client_id, seq).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionCheck {
    /// Not seen before: apply it.
    New,
    /// A retry of the latest request: answer with its reply, apply nothing.
    Duplicate(QueueReply),
    /// Older than the latest request; its reply is gone. Not applied.
    Stale { latest_seq: u64 },
}

#[derive(Debug, Clone, Default)]
pub struct SessionTable {
    limits: SessionLimits,
    by_client: HashMap<Arc<str>, SessionRecord>,
    /// Sessions by last use, oldest first: expiry pops from the front.
    by_last_use: BTreeMap<EntryIndex, Arc<str>>,
}

impl SessionTable {
    pub fn with_limits(limits: SessionLimits) -> SessionTable {
        assert!(limits.max_sessions > 0, "a session table that keeps nothing cannot deduplicate");
        SessionTable { limits, ..SessionTable::default() }
    }

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
            Some((key, record)) => {
                self.by_last_use.remove(&record.last_used_index);
                key.clone()
            }
            None => Arc::from(client_id),
        };
        self.by_last_use.insert(index, key.clone());
        self.by_client.insert(key, SessionRecord { seq, reply, last_used_index: index });
    }

    /// Drop sessions idle for longer than the limit as of entry `index`, and
    /// the least recently used beyond the count limit.
    pub fn expire(&mut self, index: EntryIndex) {
        while let Some((&last_used, _)) = self.by_last_use.first_key_value() {
            let idle = index.saturating_sub(last_used) > self.limits.idle_entries;
            if !idle && self.by_client.len() <= self.limits.max_sessions {
                break;
            }
            let (_, client) = self.by_last_use.pop_first().expect("just seen");
            self.by_client.remove(&client);
        }
        assert_eq!(self.by_client.len(), self.by_last_use.len(), "the two indexes of sessions agree");
    }

    pub fn len(&self) -> usize {
        self.by_client.len()
    }

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
        let key: Arc<str> = Arc::from(client_id);
        self.by_last_use.insert(record.last_used_index, key.clone());
        self.by_client.insert(key, record);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(max_sessions: usize, idle_entries: u64) -> SessionTable {
        SessionTable::with_limits(SessionLimits { max_sessions, idle_entries })
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
}
