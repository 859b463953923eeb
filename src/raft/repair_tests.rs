//! Handler tests for protocol-aware recovery (repair.rs; docs/storage.md,
//! "Repair from the cluster"). Each cites the rule it checks.

use super::tests::{append, drain, entry, sends, vote_request};
use super::*;

const NONCE: u64 = 0xfeed;

fn repairing(id: NodeId, nodes: usize, hard_state: HardState) -> RaftCore {
    let config = CoreConfig { repair_nonce: NONCE, ..CoreConfig::new(id, nodes) };
    let mut node = RaftCore::new(config, hard_state, Vec::new());
    drain(&mut node);
    node
}

fn learning(id: NodeId, nodes: usize) -> RaftCore {
    repairing(id, nodes, HardState { repair: Repair::LearningTerm, ..Default::default() })
}

/// Catching up in `term`, as storage starts a node whose log was damaged
/// but whose term was kept: one above it, spoken for.
fn catching_up(id: NodeId, nodes: usize, term: Term) -> RaftCore {
    repairing(id, nodes, HardState { current_term: term, voted_for: Some(id), repair: Repair::CatchingUp })
}

fn deliver(node: &mut RaftCore, from: NodeId, message: Message) -> Vec<Effect> {
    node.step(Event::Message { from, message });
    drain(node)
}

/// The reply `sends` shows for a vote in `term`, granted or not.
fn vote_reply(to: NodeId, term: Term, vote_granted: bool) -> Vec<(NodeId, Message)> {
    vec![(to, Message::RequestVoteResponse(RequestVoteResponse { term, vote_granted }))]
}

/// The reply `sends` shows for a pre-vote in `term`, granted or not.
fn pre_vote_reply(to: NodeId, term: Term, vote_granted: bool) -> Vec<(NodeId, Message)> {
    vec![(to, Message::PreVoteResponse(RequestVoteResponse { term, vote_granted }))]
}

fn pre_vote(term: Term, candidate: NodeId, last_log_index: LogIndex, last_log_term: Term) -> Message {
    Message::PreVote(RequestVote { term, candidate, last_log_index, last_log_term, leadership_transfer: false })
}

fn answer(term: Term, nonce: u64, repairing: bool) -> Message {
    Message::TermAnswer(TermAnswer { term, nonce, repairing })
}

// repair.rs step 1: a node that lost its term and vote takes nothing that
// needs them; it only answers term questions, saying it is repairing.
#[test]
fn a_node_learning_its_term_answers_only_term_questions() {
    let mut node = learning(1, 3);
    assert!(deliver(&mut node, 0, vote_request(5, 0, 9, 5)).is_empty(), "no vote, no refusal");
    assert!(deliver(&mut node, 0, append(5, 0, (0, 0), vec![entry(1, 5)], 1)).is_empty(), "no acknowledgement");
    assert_eq!(node.term(), 0, "no term taken from a message");
    let effects = deliver(&mut node, 2, Message::TermQuery(TermQuery { term: 3, nonce: 7 }));
    assert_eq!(sends(&effects), vec![(2, answer(0, 7, true))]);
}

// repair.rs step 1: never campaigns; asks every member at each timeout.
#[test]
fn a_node_learning_its_term_asks_at_each_timeout_and_never_campaigns() {
    let mut node = learning(1, 3);
    node.step(Event::ElectionTimeout);
    let effects = drain(&mut node);
    let query = Message::TermQuery(TermQuery { term: 0, nonce: NONCE });
    assert_eq!(sends(&effects), vec![(0, query.clone()), (2, query)]);
    assert_eq!(node.role(), Role::Follower);
}

// repair.rs step 1: every other member must answer this run's question;
// a repairing member counts as answered but its term does not; then one
// term above the highest answer, spoken for.
#[test]
fn every_other_member_answers_before_the_term_above_any_promise_is_taken() {
    let mut node = learning(0, 5);
    assert!(deliver(&mut node, 1, answer(40, NONCE + 1, false)).is_empty(), "another run's question");
    assert!(deliver(&mut node, 2, answer(90, NONCE, true)).is_empty(), "a repairing member's term");
    assert!(deliver(&mut node, 1, answer(7, NONCE, false)).is_empty());
    assert!(deliver(&mut node, 1, answer(8, NONCE, false)).is_empty(), "one member counts once");
    assert!(deliver(&mut node, 3, answer(6, NONCE, false)).is_empty());
    assert_eq!(node.repair(), Repair::LearningTerm, "node 4 has not answered");
    let effects = deliver(&mut node, 4, answer(5, NONCE, false));
    let expected = HardState { current_term: 9, voted_for: Some(0), repair: Repair::CatchingUp };
    assert_eq!(effects[0], Effect::PersistHardState(expected));
    assert_eq!(effects[1], Effect::RepairChanged { repair: Repair::CatchingUp, term: 9 });
    assert_eq!(node.repair(), Repair::CatchingUp);
}

// repair.rs step 1, Raft §5.2 (Election Safety), the case a majority of the
// others does not cover (found in review): node 0 had voted for node 1 in
// term 12, and node 1, stalled, may still count that vote; nodes 2, 3 and 4
// never heard of term 12. Their answers are not enough: node 1's is needed,
// and it names term 12, so the node never votes in 12 again.
#[test]
fn a_candidate_still_counting_a_lost_vote_is_heard_before_the_term_is_taken() {
    let mut node = learning(0, 5);
    node.step(Event::ElectionTimeout);
    drain(&mut node);
    for from in [2, 3, 4] {
        deliver(&mut node, from, answer(10, NONCE, false));
    }
    assert_eq!(node.repair(), Repair::LearningTerm, "three of the four others are not enough");
    deliver(&mut node, 1, answer(12, NONCE, false));
    assert_eq!((node.term(), node.repair()), (13, Repair::CatchingUp));
}

// repair.rs step 2: a node catching up is spoken for in every term it
// enters, so once repaired it does not vote in the term its repair ended
// in (where it may have voted before its loss, if that term was learned
// too low), only in later ones.
#[test]
fn a_node_catching_up_stays_spoken_for_in_each_term_it_enters() {
    let mut node = catching_up(1, 3, 4);
    deliver(&mut node, 0, append(6, 0, (0, 0), vec![entry(1, 6)], 1));
    node.step(Event::LogPersisted { index: 1, term: 6 });
    let effects = drain(&mut node);
    let expected = HardState { current_term: 6, voted_for: Some(1), repair: Repair::Intact };
    assert_eq!(effects[0], Effect::PersistHardState(expected));
    node.step(Event::LeaseTimeout);
    drain(&mut node);
    let pre_vote = pre_vote(6, 2, 1, 6);
    let effects = deliver(&mut node, 2, pre_vote);
    assert_eq!(sends(&effects), pre_vote_reply(2, 6, false));
    let effects = deliver(&mut node, 2, vote_request(6, 2, 1, 6));
    assert_eq!(sends(&effects), vote_reply(2, 6, false));
    let effects = deliver(&mut node, 2, vote_request(7, 2, 1, 6));
    assert_eq!(sends(&effects), vote_reply(2, 7, true));
}

// repair.rs step 2, Raft §5.4.1: a node catching up may lack entries it
// acknowledged, so it grants no vote and no pre-vote, even to a candidate
// whose log is up to date, and never campaigns.
#[test]
fn a_node_catching_up_never_votes_or_campaigns() {
    let mut node = catching_up(1, 3, 4);
    let effects = deliver(&mut node, 0, vote_request(5, 0, 10, 4));
    assert_eq!(sends(&effects), vote_reply(0, 5, false));
    let pre_vote = pre_vote(6, 2, 10, 5);
    let effects = deliver(&mut node, 2, pre_vote);
    assert_eq!(sends(&effects), pre_vote_reply(2, 5, false));
    node.step(Event::ElectionTimeout);
    assert_eq!(drain(&mut node), vec![Effect::ResetElectionTimer]);
    assert_eq!(node.role(), Role::Follower);
    deliver(&mut node, 0, append(5, 0, (0, 0), vec![], 0));
    let effects = deliver(&mut node, 0, Message::TimeoutNow(TimeoutNow { term: 5, leader: 0 }));
    assert!(effects.is_empty(), "a transfer to it times out: {effects:?}");
}

// repair.rs step 2, Raft §5.1: a leader of the term in which this node's
// lost acknowledgements were given hears the higher term and steps down.
#[test]
fn a_node_catching_up_answers_a_leader_of_its_old_term_with_the_higher_term() {
    let mut node = catching_up(1, 3, 4);
    let effects = deliver(&mut node, 0, append(3, 0, (0, 0), vec![entry(1, 3)], 1));
    let Some((0, Message::AppendEntriesResponse(response))) = sends(&effects).pop() else {
        panic!("a rejection: {effects:?}");
    };
    assert!(!response.success);
    assert_eq!(response.term, 4);
    assert_eq!(node.log().last_index(), 0, "nothing taken from the old term");
}

// repair.rs step 2's end, Raft §5.4 (Leader Completeness): repair ends when
// the log durably holds the leader's through an entry committed in the
// leader's own term, not before: an entry of an earlier term at the commit
// index may not cover everything committed, and an entry not yet durable
// could be lost again.
#[test]
fn catching_up_ends_once_an_entry_of_the_leaders_term_is_committed_and_durable() {
    let mut node = catching_up(1, 3, 4);
    let entries = vec![entry(1, 2), entry(2, 2), entry(3, 5)];
    deliver(&mut node, 0, append(5, 0, (0, 0), entries, 2));
    node.step(Event::LogPersisted { index: 3, term: 5 });
    assert!(!drain(&mut node).iter().any(|e| matches!(e, Effect::RepairChanged { .. })), "index 2 is of term 2");
    assert_eq!(node.repair(), Repair::CatchingUp);
    deliver(&mut node, 0, append(5, 0, (3, 5), vec![entry(4, 5)], 4));
    assert_eq!(node.repair(), Repair::CatchingUp, "index 4 is committed but not durable here");
    node.step(Event::LogPersisted { index: 4, term: 5 });
    let effects = drain(&mut node);
    let expected = HardState { current_term: 5, voted_for: Some(1), repair: Repair::Intact };
    assert_eq!(effects[0], Effect::PersistHardState(expected));
    assert_eq!(effects[1], Effect::RepairChanged { repair: Repair::Intact, term: 5 });
    node.step(Event::LeaseTimeout); // the leader went quiet: votes are considered
    drain(&mut node);
    let effects = deliver(&mut node, 2, vote_request(6, 2, 4, 5));
    assert_eq!(sends(&effects), vote_reply(2, 6, true));
}

// repair.rs step 2's end by a snapshot (Raft §7): a snapshot of the
// leader's term is written before any later hard state, so it ends repair.
#[test]
fn catching_up_ends_with_a_snapshot_of_the_leaders_term() {
    let mut node = catching_up(1, 3, 4);
    let image = b"image".to_vec();
    let chunk = InstallSnapshot {
        term: 5,
        leader: 0,
        last_index: 30,
        last_term: 5,
        offset: 0,
        total_bytes: image.len() as u64,
        data: image,
    };
    let effects = deliver(&mut node, 0, Message::InstallSnapshot(chunk));
    let install = effects.iter().position(|e| matches!(e, Effect::InstallSnapshot { .. })).expect("installed");
    let repaired =
        effects.iter().position(|e| matches!(e, Effect::PersistHardState(HardState { repair: Repair::Intact, .. })));
    assert!(repaired.is_some_and(|at| at > install), "{effects:?}");
    assert_eq!(node.repair(), Repair::Intact);
}
