//! The consensus core: Raft Figure 2 as a state machine. Events in, effects
//! out; no sockets, clock or randomness, so every behaviour replays exactly.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::effect::Effect;
use super::event::Event;
use super::log::RaftLog;
use super::message::{Message, RequestVoteResponse};
use super::progress::Progress;
use super::snapshot::IncomingSnapshot;
use super::types::{Entry, HardState, LogIndex, NodeId, Role, Snapshot, Term};

#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub id: NodeId,
    pub node_count: usize,
    /// Most entries one AppendEntries carries.
    pub max_entries_per_message: usize,
    /// Payload bytes after which an AppendEntries stops adding entries.
    pub max_bytes_per_message: usize,
    /// Unacknowledged AppendEntries allowed per follower in Replicate state.
    pub max_inflight_messages: usize,
    /// A leader that has not heard from a majority within an election
    /// timeout steps down (Raft dissertation §6.2, etcd's CheckQuorum), so an
    /// isolated leader stops claiming leadership.
    pub check_quorum: bool,
    /// Ask for pre-votes before raising the term (Raft dissertation §9.6),
    /// so a node that was cut off cannot depose a healthy leader on return.
    pub pre_vote: bool,
    /// Snapshot bytes per InstallSnapshot chunk.
    pub snapshot_chunk_bytes: usize,
    /// Entries kept in the leader's log below a new snapshot, so a follower
    /// that lags a little catches up from the log, not a whole snapshot
    /// (etcd's SnapshotCatchUpEntries).
    pub retained_entries_after_snapshot: u64,
}

impl CoreConfig {
    pub fn new(id: NodeId, node_count: usize) -> CoreConfig {
        CoreConfig {
            id,
            node_count,
            max_entries_per_message: 4096,
            max_bytes_per_message: 1 << 20,
            max_inflight_messages: 64,
            check_quorum: true,
            pre_vote: true,
            snapshot_chunk_bytes: 1 << 20,
            retained_entries_after_snapshot: 4096,
        }
    }
}

/// Returned by `propose` and `read_index` on a node that cannot serve them:
/// it does not lead, or it is handing leadership over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotLeader {
    pub leader: Option<NodeId>,
}

/// A linearizable read waiting for a majority to confirm leadership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PendingRead {
    pub round: u64,
    pub read_index: LogIndex,
}

pub struct RaftCore {
    pub(super) config: CoreConfig,
    pub(super) hard_state: HardState,
    pub(super) log: RaftLog,
    pub(super) role: Role,
    pub(super) leader: Option<NodeId>,
    pub(super) commit_index: LogIndex,
    /// Highest index handed to the shell in an `Apply` effect.
    pub(super) applied_index: LogIndex,
    /// Highest index this node's storage reported durable (`LogPersisted`).
    pub(super) persisted_index: LogIndex,
    pub(super) votes: BTreeSet<NodeId>,
    pub(super) progress: BTreeMap<NodeId, Progress>,
    /// The latest durable snapshot: what a leader streams to a follower
    /// that needs compacted entries.
    pub(super) snapshot: Option<Snapshot>,
    /// A follower's partly received snapshot.
    pub(super) incoming_snapshot: Option<IncomingSnapshot>,
    /// Index of the no-op this leader appended on taking office.
    pub(super) term_start_index: LogIndex,
    /// Latest ReadIndex round; every AppendEntries carries it.
    pub(super) read_round: u64,
    pub(super) pending_reads: VecDeque<PendingRead>,
    /// The follower this leader is handing leadership to, if any.
    pub(super) transfer_target: Option<NodeId>,
    pub(super) effects: Vec<Effect>,
}

impl RaftCore {
    /// A core restarted from what storage kept. Every restored entry counts as
    /// durable; nothing is known committed until a leader says so.
    pub fn new(config: CoreConfig, hard_state: HardState, entries: Vec<Entry>) -> RaftCore {
        RaftCore::restore(config, hard_state, None, entries)
    }

    /// A core restarted from a snapshot and the entries that follow it. The
    /// snapshot's entries are committed and already applied by the shell.
    pub fn restore(
        config: CoreConfig,
        hard_state: HardState,
        snapshot: Option<Snapshot>,
        entries: Vec<Entry>,
    ) -> RaftCore {
        assert!(config.id < config.node_count, "node id outside the cluster");
        assert!(config.max_entries_per_message > 0 && config.max_inflight_messages > 0);
        assert!(config.snapshot_chunk_bytes > 0, "snapshot chunks must carry bytes");
        let (offset, offset_term) =
            snapshot.as_ref().map_or((0, 0), |snapshot| (snapshot.last_index, snapshot.last_term));
        let log = RaftLog::after(offset, offset_term, entries);
        assert!(log.last_term() <= hard_state.current_term, "log holds a term from the future");
        let persisted_index = log.last_index();
        RaftCore {
            config,
            hard_state,
            log,
            role: Role::Follower,
            leader: None,
            commit_index: offset,
            applied_index: offset,
            persisted_index,
            votes: BTreeSet::new(),
            progress: BTreeMap::new(),
            snapshot,
            incoming_snapshot: None,
            term_start_index: 0,
            read_round: 0,
            pending_reads: VecDeque::new(),
            transfer_target: None,
            effects: vec![Effect::ResetElectionTimer],
        }
    }

    pub fn step(&mut self, event: Event) {
        match event {
            Event::Message { from, message } => self.on_message(from, message),
            Event::ElectionTimeout => self.on_election_timeout(),
            Event::HeartbeatTimeout => self.on_heartbeat_timeout(),
            Event::LeaseTimeout => self.on_lease_timeout(),
            Event::LogPersisted { index, term } => self.on_log_persisted(index, term),
            Event::SnapshotSaved { snapshot } => self.on_snapshot_saved(snapshot),
        }
    }

    /// Append client commands to the leader's log. Returns the index of the
    /// first; the rest follow consecutively, all in the returned term.
    pub fn propose(&mut self, commands: Vec<Vec<u8>>) -> Result<(LogIndex, Term), NotLeader> {
        self.check_serving()?;
        let term = self.hard_state.current_term;
        let first_index = self.log.last_index() + 1;
        if commands.is_empty() {
            return Ok((first_index, term));
        }
        let mut appended = Vec::with_capacity(commands.len());
        for data in commands {
            assert!(!data.is_empty(), "an empty command would read as a no-op");
            let entry = Entry { term, index: self.log.last_index() + 1, data };
            self.log.append(entry.clone());
            appended.push(entry);
        }
        self.effects.push(Effect::PersistEntries(appended));
        self.broadcast_append();
        Ok((first_index, term))
    }

    /// A leader refuses new work while it hands leadership over, so the
    /// target can catch up (etcd drops proposals then too).
    pub(super) fn check_serving(&self) -> Result<(), NotLeader> {
        if self.role != Role::Leader {
            return Err(NotLeader { leader: self.leader });
        }
        if self.transfer_target.is_some() {
            return Err(NotLeader { leader: None });
        }
        Ok(())
    }

    /// Move the effects produced so far into `out`, in emission order.
    pub fn drain_effects(&mut self, out: &mut Vec<Effect>) {
        out.append(&mut self.effects);
    }

    pub fn id(&self) -> NodeId {
        self.config.id
    }
    pub fn role(&self) -> Role {
        self.role
    }
    pub fn term(&self) -> Term {
        self.hard_state.current_term
    }
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }
    pub fn commit_index(&self) -> LogIndex {
        self.commit_index
    }
    pub fn log(&self) -> &RaftLog {
        &self.log
    }
    /// Highest index this node's storage reported durable, in the current log.
    pub fn persisted_index(&self) -> LogIndex {
        self.persisted_index
    }
    /// Last index of the latest durable snapshot (0 if none).
    pub fn snapshot_index(&self) -> LogIndex {
        self.snapshot.as_ref().map_or(0, |snapshot| snapshot.last_index)
    }

    pub(super) fn quorum(&self) -> usize {
        self.config.node_count / 2 + 1
    }

    pub(super) fn peers(&self) -> impl Iterator<Item = NodeId> {
        let me = self.config.id;
        (0..self.config.node_count).filter(move |&peer| peer != me)
    }

    pub(super) fn send(&mut self, to: NodeId, message: Message) {
        assert_ne!(to, self.config.id, "a node never messages itself");
        self.effects.push(Effect::Send { to, message });
    }

    fn on_message(&mut self, from: NodeId, message: Message) {
        if from >= self.config.node_count || from == self.config.id {
            return; // not a member: ignore rather than trust it
        }
        if self.ignores_disruptive_vote(&message) {
            return;
        }
        // Raft §5.1: a higher term makes any node a follower of that term.
        // Pre-votes are the exception: asking or granting one changes no term.
        let pre_vote = matches!(
            &message,
            Message::PreVote(_) | Message::PreVoteResponse(RequestVoteResponse { vote_granted: true, .. })
        );
        if message.term() > self.hard_state.current_term && !pre_vote {
            let leader = match &message {
                Message::AppendEntries(append) => Some(append.leader),
                Message::InstallSnapshot(install) => Some(install.leader),
                _ => None,
            };
            self.become_follower(message.term(), leader);
        }
        match message {
            Message::RequestVote(request) => self.on_request_vote(from, request),
            Message::RequestVoteResponse(response) => self.on_request_vote_response(from, response),
            Message::AppendEntries(request) => self.on_append_entries(from, request),
            Message::AppendEntriesResponse(response) => self.on_append_entries_response(from, response),
            Message::InstallSnapshot(request) => self.on_install_snapshot(from, request),
            Message::InstallSnapshotResponse(response) => self.on_install_snapshot_response(from, response),
            Message::PreVote(request) => self.on_pre_vote(from, request),
            Message::PreVoteResponse(response) => self.on_pre_vote_response(from, response),
            Message::TimeoutNow(request) => self.on_timeout_now(from, request),
        }
    }

    /// Leader stickiness (Raft dissertation §4.2.3, etcd's lease check):
    /// with CheckQuorum on, a node that heard from a leader within the
    /// shortest election timeout, or that leads, ignores a vote request for a
    /// higher term, unless the leader itself asked for that election.
    fn ignores_disruptive_vote(&self, message: &Message) -> bool {
        let Message::RequestVote(request) = message else {
            return false;
        };
        self.config.check_quorum
            && request.term > self.hard_state.current_term
            && self.leader.is_some()
            && !request.leadership_transfer
    }

    /// Become a follower in `term` (a newer term clears the vote).
    pub(super) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        assert!(term >= self.hard_state.current_term, "terms never go back");
        let was_leader = self.role == Role::Leader;
        if term > self.hard_state.current_term {
            self.hard_state = HardState { current_term: term, voted_for: None };
            self.effects.push(Effect::PersistHardState(self.hard_state));
        }
        let changed = self.role != Role::Follower || self.leader != leader;
        self.role = Role::Follower;
        self.leader = leader;
        self.votes.clear();
        self.progress.clear();
        self.pending_reads.clear();
        self.transfer_target = None;
        if was_leader {
            // The leader's election deadline was not being watched; start afresh
            // rather than campaigning the instant it steps down.
            self.effects.push(Effect::ResetElectionTimer);
        }
        if changed {
            self.announce_role();
        }
    }

    pub(super) fn announce_role(&mut self) {
        self.effects.push(Effect::RoleChanged {
            role: self.role,
            term: self.hard_state.current_term,
            leader: self.leader,
        });
    }

    /// Hand newly committed entries to the shell, in order.
    pub(super) fn set_commit_index(&mut self, commit_index: LogIndex) {
        assert!(commit_index <= self.log.last_index(), "commit beyond the log");
        if commit_index <= self.commit_index {
            return;
        }
        self.commit_index = commit_index;
        self.effects.push(Effect::Apply { first_index: self.applied_index + 1, last_index: commit_index });
        self.applied_index = commit_index;
    }
}
