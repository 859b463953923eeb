//! What a node knows only while it holds one role. Each role carries its own
//! state, so taking a new role starts from that role's fresh state: nothing
//! a leader tracked survives into its followership, and no candidate counts
//! votes from an earlier election.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::progress::Progress;
use super::snapshot::IncomingSnapshot;
use super::types::{LogIndex, NodeId, Role};

#[derive(Debug, Clone)]
pub(super) enum RoleState {
    Follower(FollowerState),
    /// Asking for pre-votes (Raft dissertation §9.6); holds the grants.
    PreCandidate(Votes),
    /// Asking for votes (Raft §5.2); holds the grants.
    Candidate(Votes),
    Leader(LeaderState),
}

impl RoleState {
    pub(super) fn role(&self) -> Role {
        match self {
            RoleState::Follower(_) => Role::Follower,
            RoleState::PreCandidate(_) => Role::PreCandidate,
            RoleState::Candidate(_) => Role::Candidate,
            RoleState::Leader(_) => Role::Leader,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub(super) struct FollowerState {
    /// The leader this follower counts on: set when it hears from the
    /// leader of its term, cleared when that leader has been silent for the
    /// shortest election timeout (`Event::LeaseTimeout`).
    pub(super) leader: Option<NodeId>,
    /// A snapshot the leader is streaming to this follower, partly received.
    pub(super) incoming_snapshot: Option<IncomingSnapshot>,
}

/// The nodes (this one included) that granted a vote or pre-vote.
#[derive(Debug, Clone)]
pub(super) struct Votes {
    pub(super) granted: BTreeSet<NodeId>,
}

impl Votes {
    /// An election this node just started: it votes for itself.
    pub(super) fn for_self(me: NodeId) -> Votes {
        Votes { granted: BTreeSet::from([me]) }
    }
}

/// A linearizable read waiting for a majority to confirm leadership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PendingRead {
    pub(super) round: u64,
    pub(super) read_index: LogIndex,
}

#[derive(Debug, Clone)]
pub(super) struct LeaderState {
    /// One entry per follower: every member of the cluster but this node.
    pub(super) progress: BTreeMap<NodeId, Progress>,
    /// ReadIndex rounds not yet confirmed by a majority, oldest first.
    pub(super) pending_reads: VecDeque<PendingRead>,
    /// The follower this leader is handing leadership to, if any.
    pub(super) transfer_target: Option<NodeId>,
    /// Index of the no-op this leader appended on taking office.
    pub(super) term_start_index: LogIndex,
}

impl LeaderState {
    /// A leader taking office with `next_index` as every follower's first guess.
    pub(super) fn new(peers: impl Iterator<Item = NodeId>, next_index: LogIndex) -> LeaderState {
        LeaderState {
            progress: peers.map(|peer| (peer, Progress::new(next_index))).collect(),
            pending_reads: VecDeque::new(),
            transfer_target: None,
            term_start_index: next_index,
        }
    }
}
