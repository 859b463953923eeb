//! Limits on what the replicated state holds. They are constants, not node
//! options: a limit that depends on the state is enforced when a command is
//! applied, and every replica must give the same answer (docs/protocol.md,
//! "Limits").

/// Longest topic name, in UTF-8 bytes. With `MAX_TOPICS` it bounds the
/// `get_topics` reply.
pub const MAX_TOPIC_NAME_BYTES: usize = 256;

/// Most topics a cluster holds; `put_topic` beyond it is refused.
pub const MAX_TOPICS: usize = 10_000;

/// Most message bytes (UTF-8, summed over every topic's queue) a cluster
/// holds; `put_message` beyond it is refused until messages are taken.
pub const MAX_QUEUED_MESSAGE_BYTES: u64 = 1 << 30;

/// Longest client_id accepted (checked when a request is parsed): sessions
/// live in every replica's memory.
pub const MAX_CLIENT_ID_BYTES: usize = 256;
