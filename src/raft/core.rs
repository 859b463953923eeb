//! The consensus core: Raft Figure 2 as a state machine. Events in, effects
//! out; no sockets, clock or randomness, so every behaviour replays exactly.

use std::collections::BTreeMap;

use super::effect::Effect;
use super::event::Event;
use super::log::RaftLog;
use super::message::{Message, RequestVote, RequestVoteResponse};
use super::quorum::Quorum;
use super::role::{FollowerState, LeaderState, RoleState};
use super::types::{Entry, HardState, LogIndex, NodeId, Repair, Role, Snapshot, Term};
use super::validation::MAX_TERM;

/// Settings of one node's core. Build it with [`CoreConfig::new`] and change
/// the fields that differ from the defaults.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// This node's id: its position in the cluster's address list.
    pub id: NodeId,
    /// Number of voting members; ids run from 0 to `node_count - 1`.
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
    /// Payload bytes those retained entries may hold at most (default
    /// 16 MiB): without it, 4,096 large entries stayed in memory below every
    /// snapshot, after the queues they filled were drained.
    pub retained_bytes_after_snapshot: u64,
    /// A message whose term is more than this above ours is dropped
    /// (`Effect::MessageDropped`). Default 2^32. A term rises by one per
    /// election attempt, so a legitimate leader is this far above a member
    /// only after 2^32 elections, 20 years of one every 150 ms, that the
    /// member missed (a node restored from an old backup, or a new node at
    /// term 0, is far less behind). The bound stops one message from
    /// spending the term space: at most 2^32 per accepted message, against a
    /// ceiling of 2^62 (terms above it are always refused).
    pub max_term_jump: u64,
    /// Largest snapshot a follower accepts from a leader, in bytes. Default
    /// 1 GiB. A snapshot is received whole in memory before it is
    /// installed, so a chunk whose announced total exceeds this is dropped
    /// (`Effect::MessageDropped`). Set it above the largest snapshot the
    /// cluster's leaders will ever send, or followers that need one cannot
    /// catch up.
    pub max_snapshot_bytes: u64,
    /// Checks a snapshot received whole from a leader before it is
    /// installed (the shell sets the state machine's image check: its
    /// checksum and header). One that fails is discarded and asked for
    /// again from its first byte, rather than installed and found
    /// unreadable when nothing can be undone. Pure: no I/O. Default: any.
    pub snapshot_check: fn(&[u8]) -> Result<(), String>,
    /// Names this run of the node in the term questions it asks while it
    /// repairs a lost term (src/raft/repair.rs): the shell draws it at
    /// random at each start, so an answer to an earlier run's question is
    /// not taken for an answer to this one's. Default 0.
    pub repair_nonce: u64,
}

/// The default `snapshot_check`: every image is taken.
fn accept_any_snapshot(_image: &[u8]) -> Result<(), String> {
    Ok(())
}

impl CoreConfig {
    /// The defaults for node `id` of a cluster of `node_count` nodes.
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
            retained_bytes_after_snapshot: 16 << 20,
            max_term_jump: 1 << 32,
            max_snapshot_bytes: 1 << 30,
            snapshot_check: accept_any_snapshot,
            repair_nonce: 0,
        }
    }
}

/// Returned by `propose` and `read_index` on a node that cannot serve them:
/// it does not lead, or it is handing leadership over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotLeader {
    /// The leader this node knows of, for the client to retry there; None
    /// when it knows none, or when it is the leader but is handing over.
    pub leader: Option<NodeId>,
}

/// One node's Raft state machine (Raft Figure 2). The shell feeds it events
/// with [`RaftCore::step`] and client work with [`RaftCore::propose`],
/// [`RaftCore::read_index`] and [`RaftCore::transfer_leadership`], then
/// takes the effects it produced with [`RaftCore::drain_effects`] and
/// carries them out (see [`Effect`] for the order that requires).
///
/// Nothing that arrives in a message can make the core panic or break its
/// own invariants: a message it cannot trust is refused with
/// `Effect::MessageDropped` and changes nothing.
pub struct RaftCore {
    pub(super) config: CoreConfig,
    pub(super) quorum: Quorum,
    pub(super) hard_state: HardState,
    /// The node known to lead `hard_state.current_term`, even after this
    /// node stopped counting on it: there is at most one (Raft §5.2), so a
    /// second claimant in the same term is refused. Cleared with the term.
    pub(super) term_leader: Option<NodeId>,
    pub(super) log: RaftLog,
    pub(super) role: RoleState,
    pub(super) commit_index: LogIndex,
    /// Highest index handed to the shell in an `Apply` effect.
    pub(super) applied_index: LogIndex,
    /// Highest index this node's storage reported durable (`LogPersisted`).
    pub(super) persisted_index: LogIndex,
    /// The latest durable snapshot: what a leader streams to a follower
    /// that needs compacted entries.
    pub(super) snapshot: Option<Snapshot>,
    /// Latest ReadIndex round; every AppendEntries carries it. It only
    /// grows, across terms, so a round number names one round for the shell.
    pub(super) read_round: u64,
    /// While learning its term (src/raft/repair.rs): the members that
    /// answered, with the highest term each named (None: it is repairing).
    pub(super) term_answers: BTreeMap<NodeId, Option<Term>>,
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
    ///
    /// Panics if `config` is inconsistent or the restored state is (a log
    /// with a gap, or a term above the hard state's): storage checks what it
    /// reads before it builds a core.
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
            quorum: Quorum::new(config.node_count),
            config,
            hard_state,
            term_leader: None,
            log,
            role: RoleState::Follower(FollowerState::default()),
            commit_index: offset,
            applied_index: offset,
            persisted_index,
            snapshot,
            read_round: 0,
            term_answers: BTreeMap::new(),
            effects: vec![Effect::ResetElectionTimer],
        }
    }

    /// Feed one event to the core. Its effects wait in the core until
    /// [`RaftCore::drain_effects`].
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
    /// first; the rest follow consecutively, all in the returned term. Every
    /// command must be non-empty (an empty entry is the leader's no-op).
    /// A command is committed once an `Effect::Apply` covers its index in
    /// the returned term; a different term at that index means it was lost.
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
        match &self.role {
            RoleState::Leader(leader) if leader.transfer_target.is_some() => Err(NotLeader { leader: None }),
            RoleState::Leader(_) => Ok(()),
            _ => Err(NotLeader { leader: self.leader() }),
        }
    }

    /// Move the effects produced so far into `out`, in emission order.
    pub fn drain_effects(&mut self, out: &mut Vec<Effect>) {
        out.append(&mut self.effects);
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.config.id
    }
    /// This node's role now.
    pub fn role(&self) -> Role {
        self.role.role()
    }
    /// This node's current term.
    pub fn term(&self) -> Term {
        self.hard_state.current_term
    }
    /// The leader this node counts on: itself when it leads, the leader it
    /// last heard from when it follows (until `Event::LeaseTimeout`), None
    /// while it campaigns.
    pub fn leader(&self) -> Option<NodeId> {
        match &self.role {
            RoleState::Leader(_) => Some(self.config.id),
            RoleState::Follower(follower) => follower.leader,
            RoleState::PreCandidate(_) | RoleState::Candidate(_) => None,
        }
    }
    /// Highest log index known committed.
    pub fn commit_index(&self) -> LogIndex {
        self.commit_index
    }
    /// The core's view of the log (entries after the latest snapshot).
    pub fn log(&self) -> &RaftLog {
        &self.log
    }
    /// Highest index this node's storage reported durable, in the current log.
    pub fn persisted_index(&self) -> LogIndex {
        self.persisted_index
    }
    /// The image of the latest durable snapshot, if any.
    pub fn snapshot_image(&self) -> Option<&std::sync::Arc<Vec<u8>>> {
        self.snapshot.as_ref().map(|snapshot| &snapshot.data)
    }

    /// Last index of the latest durable snapshot (0 if none).
    pub fn snapshot_index(&self) -> LogIndex {
        self.snapshot.as_ref().map_or(0, |snapshot| snapshot.last_index)
    }

    /// The term after ours, or None once ours is at the ceiling (a term
    /// restored from storage that an old, unchecked peer let grow there):
    /// this node then never campaigns, rather than wrap around to term 0.
    pub(super) fn next_term(&self) -> Option<Term> {
        self.hard_state.current_term.checked_add(1).filter(|&term| term <= MAX_TERM)
    }

    pub(super) fn peers(&self) -> impl Iterator<Item = NodeId> {
        let me = self.config.id;
        (0..self.config.node_count).filter(move |&peer| peer != me)
    }

    pub(super) fn send(&mut self, to: NodeId, message: Message) {
        assert_ne!(to, self.config.id, "a node never messages itself");
        self.effects.push(Effect::Send { to, message });
    }

    /// Refuse a message that cannot be trusted: it changes nothing, and the
    /// shell logs why (rate-limited).
    pub(super) fn drop_message(&mut self, from: NodeId, reason: &'static str) {
        self.effects.push(Effect::MessageDropped { from, reason });
    }

    fn on_message(&mut self, from: NodeId, message: Message) {
        if let Err(reason) = self.check_message(from, &message) {
            self.drop_message(from, reason);
            return;
        }
        if self.hard_state.repair == Repair::LearningTerm {
            self.on_message_while_learning_term(from, message);
            return;
        }
        if self.ignores_disruptive_vote(&message) {
            return;
        }
        // Raft §5.1: a higher term makes any node a follower of that term.
        // Pre-votes and term questions are the exception: they change no term.
        let changes_no_term = matches!(
            &message,
            Message::PreVote(_)
                | Message::PreVoteResponse(RequestVoteResponse { vote_granted: true, .. })
                | Message::TermQuery(_)
                | Message::TermAnswer(_)
        );
        if message.term() > self.hard_state.current_term && !changes_no_term {
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
            Message::TermQuery(query) => self.on_term_query(from, query),
            Message::TermAnswer(answer) => self.on_term_answer(from, answer),
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
            && self.leader().is_some()
            && !self.leader_asked_for(request)
    }

    /// Raft dissertation §3.10: an election that the leader of our term
    /// started with TimeoutNow is one term above ours and its candidate is
    /// not that leader; a leader knows whom it asked. Anything else that
    /// carries the transfer flag is a disruptive vote like any other.
    fn leader_asked_for(&self, request: &RequestVote) -> bool {
        if !request.leadership_transfer || Some(request.term) != self.next_term() {
            return false;
        }
        match &self.role {
            RoleState::Leader(leader) => leader.transfer_target == Some(request.candidate),
            _ => self.term_leader != Some(request.candidate),
        }
    }

    /// Enter `term`, which must not be below ours: a newer term clears the
    /// vote and the leader known for the old term.
    pub(super) fn set_term(&mut self, term: Term, voted_for: Option<NodeId>) {
        assert!(term >= self.hard_state.current_term, "terms never go back");
        if term > self.hard_state.current_term {
            self.term_leader = None;
        }
        // A repairing node is spoken for in every term it enters, so it
        // never votes in the term its repair ends in (src/raft/repair.rs).
        let repair = self.hard_state.repair;
        let voted_for = if repair == Repair::Intact { voted_for } else { Some(self.config.id) };
        self.hard_state = HardState { current_term: term, voted_for, repair };
        self.effects.push(Effect::PersistHardState(self.hard_state));
    }

    /// Become a follower in `term` (a newer term clears the vote) that
    /// counts on `leader`. A follower staying in its term keeps the snapshot
    /// it is receiving; any other change of role starts from nothing.
    pub(super) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        assert!(term >= self.hard_state.current_term, "terms never go back");
        let new_term = term > self.hard_state.current_term;
        if new_term {
            self.set_term(term, None);
        }
        if leader.is_some() {
            self.term_leader = leader;
        }
        let was_leader = matches!(self.role, RoleState::Leader(_));
        let changed = match &mut self.role {
            RoleState::Follower(follower) if !new_term => {
                let changed = follower.leader != leader;
                follower.leader = leader;
                changed
            }
            _ => {
                let changed = self.role() != Role::Follower || self.leader() != leader;
                self.role = RoleState::Follower(FollowerState { leader, incoming_snapshot: None });
                changed
            }
        };
        if was_leader {
            // The leader's election deadline was not being watched; start afresh
            // rather than campaigning the instant it steps down.
            self.effects.push(Effect::ResetElectionTimer);
        }
        if changed {
            self.announce_role();
        }
    }

    /// Take office (called by the election once a majority voted).
    pub(super) fn become_leader_state(&mut self, next_index: LogIndex) {
        let peers: Vec<NodeId> = self.peers().collect();
        self.role = RoleState::Leader(LeaderState::new(peers.into_iter(), next_index));
        self.term_leader = Some(self.config.id);
    }

    pub(super) fn announce_role(&mut self) {
        self.effects.push(Effect::RoleChanged {
            role: self.role(),
            term: self.hard_state.current_term,
            leader: self.leader(),
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
