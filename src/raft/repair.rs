//! Protocol-aware recovery (Alagappan et al., FAST 2018, "Protocol-Aware
//! Recovery for Consensus-Based Storage"): a node whose durable state was
//! damaged or lost heals from the cluster instead of refusing to start, and
//! keeps Raft's safety while it does.
//!
//! A node's durable state holds two kinds of promise (Raft Figure 2): its
//! vote in its term, and the entries it acknowledged, which a leader may
//! have counted toward a commit. Storage that lost either starts the node in
//! a repair state (`HardState::repair`, kept durably with the term, so a
//! crash during a repair restarts it):
//!
//! 1. **Learning the term** (the term and vote are lost). The node answers
//!    nothing but questions about terms, and at each election timeout asks
//!    every member for its term (`TermQuery`, with a nonce that only this
//!    run of the node uses, so every answer counted was sent after the
//!    question). Once **every** other member has answered, it moves to the
//!    term one above the highest answer of those not repairing themselves,
//!    having voted for itself in it. Why that is above every term T it can
//!    have voted in: the candidate it voted for entered T before asking, so
//!    if that candidate is not repairing its answer names T or more, whether
//!    its election is won, lost or still counting (no timing is assumed: a
//!    stalled candidate may count a vote long after it was given). A
//!    repairing member is no candidate (a restart ends a candidacy); if the
//!    candidate won and has since been damaged, the others that elected it
//!    were in T, and they are not all repairing while fewer than a majority
//!    of the cluster repairs. Asking only a majority of the others is not
//!    enough with five nodes or more: that majority need not include the
//!    candidate, which may still win T with this node's lost vote.
//! 2. **Catching up** (its term is known, its log is not to be trusted).
//!    The node is in a term above any it voted or acknowledged in (storage
//!    raises the kept term by one, also for a node damaged again while
//!    catching up, which may have acknowledged entries of its term since),
//!    and it stays spoken for (voted for itself) in every term it enters
//!    while it repairs, so it never votes in the term its repair ends in. No
//!    leader holds its old acknowledgements (a leader counts acknowledgements
//!    of its own term only); a leader of the old term learns the higher
//!    term from its answers and steps down. The node follows a leader and
//!    acknowledges what it truly holds, but never votes, grants a pre-vote
//!    or campaigns (even when asked by TimeoutNow). It becomes a member like
//!    any other once it durably holds the leader's log through an entry that
//!    leader committed in its own term: every entry committed before is at a
//!    lower index (Raft §5.4, Leader Completeness), so the node now holds
//!    every entry it may have acknowledged, and its vote is safe again.
//!
//! Safety while it repairs: an entry committed with this node's lost
//! acknowledgement is held by the rest of the majority that acknowledged
//! it, and a leader elected without this node's vote is elected by a
//! majority of the others, which meets that rest (sizes of at least a
//! majority minus one and a majority among n - 1 nodes): §5.4.1's argument
//! holds without this node. With several nodes repairing at once the same
//! count holds among the intact ones; when fewer than a majority are intact
//! no leader can be elected, and the cluster waits rather than lose an entry.

use super::core::RaftCore;
use super::effect::Effect;
use super::message::{Message, TermAnswer, TermQuery};
use super::role::RoleState;
use super::types::{NodeId, Repair};
use super::validation::MAX_TERM;

impl RaftCore {
    /// Whether this node is repairing, and how far it got.
    pub fn repair(&self) -> Repair {
        self.hard_state.repair
    }

    /// While learning its term: the members whose answer it still waits
    /// for (every other member must answer). Empty otherwise.
    pub fn repair_waiting_for(&self) -> Vec<NodeId> {
        if self.hard_state.repair != Repair::LearningTerm {
            return Vec::new();
        }
        self.peers().filter(|peer| !self.term_answers.contains_key(peer)).collect()
    }

    /// A node learning its term takes only term questions and answers:
    /// anything else may need a term or vote it does not have.
    pub(super) fn on_message_while_learning_term(&mut self, from: NodeId, message: Message) {
        match message {
            Message::TermQuery(query) => self.on_term_query(from, query),
            Message::TermAnswer(answer) => self.on_term_answer(from, answer),
            _ => {}
        }
    }

    pub(super) fn on_term_query(&mut self, from: NodeId, query: TermQuery) {
        let answer = TermAnswer {
            term: self.hard_state.current_term,
            nonce: query.nonce,
            repairing: self.hard_state.repair != Repair::Intact,
        };
        self.send(from, Message::TermAnswer(answer));
    }

    pub(super) fn on_term_answer(&mut self, from: NodeId, answer: TermAnswer) {
        if self.hard_state.repair != Repair::LearningTerm || answer.nonce != self.config.repair_nonce {
            return;
        }
        // A repairing member's term may be lost: it counts as answered (it
        // is no candidate), but its term does not.
        let term = if answer.repairing { None } else { Some(answer.term) };
        let known = self.term_answers.entry(from).or_insert(term);
        *known = (*known).max(term);
        if self.term_answers.len() + 1 < self.config.node_count {
            return;
        }
        let highest = self.term_answers.values().flatten().copied().max().unwrap_or(0);
        let Some(term) = highest.checked_add(1).filter(|&term| term <= MAX_TERM) else {
            return; // at the term ceiling: stay out rather than wrap around
        };
        let term = term.max(self.hard_state.current_term);
        self.term_answers.clear();
        // set_term keeps a repairing node spoken for in its new term.
        self.hard_state.repair = Repair::CatchingUp;
        self.set_term(term, None);
        self.effects.push(Effect::RepairChanged { repair: Repair::CatchingUp, term });
        self.effects.push(Effect::ResetElectionTimer);
        self.announce_role();
    }

    /// A repairing node never campaigns. One learning its term asks at
    /// each timeout (answers may have been lost, members may be down).
    pub(super) fn on_election_timeout_while_repairing(&mut self) {
        assert!(self.hard_state.repair != Repair::Intact, "only a repairing node waits out its timeouts");
        self.effects.push(Effect::ResetElectionTimer);
        if self.hard_state.repair != Repair::LearningTerm {
            return;
        }
        let query = TermQuery { term: self.hard_state.current_term, nonce: self.config.repair_nonce };
        let peers: Vec<NodeId> = self.peers().collect();
        for peer in peers {
            self.send(peer, Message::TermQuery(query.clone()));
        }
    }

    /// Step 2's end: the log durably holds the leader's log through an
    /// entry that leader committed in its own term (this node's term: it
    /// follows that leader). Called wherever the commit index or the durable
    /// index grows.
    pub(super) fn maybe_finish_repair(&mut self) {
        if self.hard_state.repair != Repair::CatchingUp {
            return;
        }
        let RoleState::Follower(follower) = &self.role else {
            return;
        };
        let term = self.hard_state.current_term;
        let commit_index = self.commit_index;
        // Index 0 is of term 0, which no leader has: it never ends a repair.
        if follower.leader.is_none()
            || commit_index > self.persisted_index
            || self.log.term_at(commit_index) != Some(term)
        {
            return;
        }
        self.hard_state.repair = Repair::Intact;
        self.effects.push(Effect::PersistHardState(self.hard_state));
        self.effects.push(Effect::RepairChanged { repair: Repair::Intact, term });
    }
}
