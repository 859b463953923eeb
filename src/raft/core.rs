//! The consensus core: Raft Figure 2 as a state machine. Events in, effects
//! out; no sockets, clock or randomness, so every behaviour replays exactly.

use std::collections::{BTreeMap, BTreeSet};

use super::effect::Effect;
use super::event::Event;
use super::log::RaftLog;
use super::message::Message;
use super::progress::Progress;
use super::types::{Entry, HardState, LogIndex, NodeId, Role, Term};

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
        }
    }
}

/// Returned by `propose` on a node that cannot accept writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotLeader {
    pub leader: Option<NodeId>,
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
    pub(super) effects: Vec<Effect>,
}

impl RaftCore {
    /// A core restarted from what storage kept. Every restored entry counts as
    /// durable; nothing is known committed until a leader says so.
    pub fn new(config: CoreConfig, hard_state: HardState, entries: Vec<Entry>) -> RaftCore {
        assert!(config.id < config.node_count, "node id outside the cluster");
        assert!(config.max_entries_per_message > 0 && config.max_inflight_messages > 0);
        let log = RaftLog::from_entries(entries);
        assert!(log.last_term() <= hard_state.current_term, "log holds a term from the future");
        let persisted_index = log.last_index();
        RaftCore {
            config,
            hard_state,
            log,
            role: Role::Follower,
            leader: None,
            commit_index: 0,
            applied_index: 0,
            persisted_index,
            votes: BTreeSet::new(),
            progress: BTreeMap::new(),
            effects: vec![Effect::ResetElectionTimer],
        }
    }

    pub fn step(&mut self, event: Event) {
        match event {
            Event::Message { from, message } => self.on_message(from, message),
            Event::ElectionTimeout => self.on_election_timeout(),
            Event::HeartbeatTimeout => self.on_heartbeat_timeout(),
            Event::LogPersisted { index, term } => self.on_log_persisted(index, term),
        }
    }

    /// Append client commands to the leader's log. Returns the index of the
    /// first; the rest follow consecutively, all in the returned term.
    pub fn propose(&mut self, commands: Vec<Vec<u8>>) -> Result<(LogIndex, Term), NotLeader> {
        if self.role != Role::Leader {
            return Err(NotLeader { leader: self.leader });
        }
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
        // Raft §5.1: a higher term makes any node a follower of that term.
        if message.term() > self.hard_state.current_term {
            let leader = match &message {
                Message::AppendEntries(append) => Some(append.leader),
                _ => None,
            };
            self.become_follower(message.term(), leader);
        }
        match message {
            Message::RequestVote(request) => self.on_request_vote(from, request),
            Message::RequestVoteResponse(response) => self.on_request_vote_response(from, response),
            Message::AppendEntries(request) => self.on_append_entries(from, request),
            Message::AppendEntriesResponse(response) => self.on_append_entries_response(from, response),
        }
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
