//! Plain data shared by the consensus core, its storage and its messages.

/// A node's position in `config.json`'s address list.
pub type NodeId = usize;
/// A Raft term (Raft §5.1). Term 0 is the term before any election.
pub type Term = u64;
/// A position in the replicated log. Index 0 is the empty prefix; the first entry is 1.
pub type LogIndex = u64;

/// A node's role (Raft §5.1, with PreVote's pre-candidate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Follows a leader, or waits to hear from one.
    Follower,
    /// A follower asking for pre-votes: its term and vote are unchanged.
    PreCandidate,
    /// Campaigning in its own term, having voted for itself.
    Candidate,
    /// Leads its term.
    Leader,
}

impl Role {
    /// The role's name, as logs and the status reply show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Follower => "Follower",
            Role::PreCandidate => "PreCandidate",
            Role::Candidate => "Candidate",
            Role::Leader => "Leader",
        }
    }
}

/// One log entry. Empty `data` is the no-op a new leader appends to commit
/// entries of earlier terms (Raft §5.4.2, §8); the state machine skips it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The term of the leader that created it.
    pub term: Term,
    /// Its position in the log.
    pub index: LogIndex,
    /// The command, opaque to the core; empty for the no-op.
    pub data: Vec<u8>,
}

impl Entry {
    /// The leader's no-op, which the state machine skips.
    pub fn is_noop(&self) -> bool {
        self.data.is_empty()
    }
}

/// The part of a node's state that must survive a crash apart from its log
/// (Raft Figure 2, "persistent state on all servers").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HardState {
    /// The latest term this node has seen.
    pub current_term: Term,
    /// The candidate it voted for in `current_term`, if any.
    pub voted_for: Option<NodeId>,
    /// Whether this node is repairing lost or damaged state from the
    /// cluster, and how far it got (src/raft/repair.rs). Kept with the
    /// term, so a crash during a repair restarts the repair.
    pub repair: Repair,
}

/// Protocol-aware recovery (Alagappan et al., FAST 2018): a node whose
/// durable state was damaged or lost has broken promises it made (a vote,
/// acknowledgements counted toward commits), so it takes no part in
/// elections until the cluster has given it back what it may have promised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Repair {
    /// Nothing lost: a node like any other.
    #[default]
    Intact,
    /// The term and vote are lost. The node asks the other members for their
    /// terms, answers nothing else, and moves on once a majority of them
    /// (not counting itself) answered.
    LearningTerm,
    /// The node is in a term above any it may have voted or acknowledged
    /// entries in. It follows a leader and acknowledges what it truly holds,
    /// but never votes or campaigns until it durably holds the leader's log
    /// through an entry the leader committed in its own term.
    CatchingUp,
}

impl Repair {
    /// The state's name, as logs and the status reply show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Repair::Intact => "intact",
            Repair::LearningTerm => "learning the term",
            Repair::CatchingUp => "catching up",
        }
    }
}

/// A state machine image covering every entry up to `last_index` (Raft §7).
/// The data is shared, not copied, between the core, the shell and the disk
/// thread; only its chunks are copied onto the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Last log index the image covers.
    pub last_index: LogIndex,
    /// Term of the entry at `last_index`.
    pub last_term: Term,
    /// The state machine's image, opaque to the core.
    pub data: std::sync::Arc<Vec<u8>>,
}
