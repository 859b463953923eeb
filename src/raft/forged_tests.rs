//! Handler tests for messages a core must not trust (issue 11, "a core that
//! never trusts the wire"): each was a crash, a wrapped term or a silently
//! corrupted log before the core checked what it reads. Every case feeds
//! one forged but well-formed message and compares the effects emitted.

use super::tests::{
    append, classic_config, core, core_with_log, deliver, drain, elect, entry, heartbeat_from, install, sends,
    snapshot, success_response, vote_request,
};
use super::validation::{MAX_INDEX, MAX_TERM};
use super::*;

fn dropped(from: NodeId, reason: &'static str) -> Vec<Effect> {
    vec![Effect::MessageDropped { from, reason }]
}

/// Node `id` of 3, following leader 0 in `term` with a log of `terms`, the
/// first `committed` entries committed.
fn follower(id: NodeId, terms: &[Term], committed: LogIndex) -> RaftCore {
    let mut node = core_with_log(id, 3, terms);
    let term = node.term().max(1);
    let last = (node.log().last_index(), node.log().last_term());
    deliver(&mut node, 0, append(term, 0, last, vec![], committed));
    drain(&mut node);
    assert_eq!((node.leader(), node.commit_index()), (Some(0), committed));
    node
}

// Issue 11: an empty AppendEntries with term 2^64 - 1 put every node at that
// term, where `term + 1` wrapped and no leader was ever elected again.
#[test]
fn a_term_at_the_top_of_the_range_is_dropped_and_changes_nothing() {
    let mut node = follower(1, &[1], 0);
    deliver(&mut node, 0, append(u64::MAX, 0, (0, 0), vec![], 0));
    assert_eq!(drain(&mut node), dropped(0, "term above the ceiling of 2^62"));
    assert_eq!((node.term(), node.leader()), (1, Some(0)));
}

// Raft §5.1 still holds for any term a real leader could have: one that
// jumps by a million (a node that slept through a million elections) is
// adopted; one beyond CoreConfig::max_term_jump is dropped.
#[test]
fn a_term_jump_beyond_the_configured_bound_is_dropped() {
    let mut node = follower(1, &[1], 0);
    let too_far = 1 + (1 << 32) + 1;
    deliver(&mut node, 2, append(too_far, 2, (0, 0), vec![], 0));
    assert_eq!(drain(&mut node), dropped(2, "term too far above this node's (CoreConfig::max_term_jump)"));
    assert_eq!(node.term(), 1);
    deliver(&mut node, 2, append(1_000_001, 2, (1, 1), vec![], 0));
    assert_eq!((node.term(), node.leader()), (1_000_001, Some(2)));
    let effects = drain(&mut node);
    assert_eq!(
        effects[0],
        Effect::PersistHardState(HardState { current_term: 1_000_001, voted_for: None, ..Default::default() })
    );
    assert!(
        sends(&effects)
            .iter()
            .any(|(to, message)| *to == 2
                && *message == Message::AppendEntriesResponse(success_response(1_000_001, 1, 0)))
    );
}

// A term restored at the ceiling (persisted before terms were checked)
// never wraps to 0: the node does not campaign at all.
#[test]
fn a_node_at_the_term_ceiling_never_campaigns() {
    for pre_vote in [false, true] {
        let config = CoreConfig { pre_vote, ..CoreConfig::new(1, 3) };
        let mut node =
            RaftCore::new(config, HardState { current_term: MAX_TERM, voted_for: None, ..Default::default() }, vec![]);
        drain(&mut node);
        node.step(Event::ElectionTimeout);
        assert_eq!(drain(&mut node), vec![Effect::ResetElectionTimer]);
        assert_eq!((node.term(), node.role()), (MAX_TERM, Role::Follower));
    }
}

// Raft §5.2 (Election Safety) / issue 11: an AppendEntries at the leader's
// own term claiming another leader made the leader exit on "two leaders in
// term 1" (replication.rs:81). It is dropped; the leader keeps leading.
#[test]
fn an_append_from_a_second_leader_of_the_term_is_dropped_by_the_leader() {
    let mut node = core(0, 3);
    elect(&mut node);
    deliver(&mut node, 2, append(1, 2, (0, 0), vec![], 0));
    assert_eq!(drain(&mut node), dropped(2, "a second leader in this node's own term"));
    assert_eq!(node.role(), Role::Leader);
    let chunk = install(1, 2, &snapshot(5, 1, b"image"), 0, 5);
    deliver(&mut node, 2, chunk);
    assert_eq!(drain(&mut node), dropped(2, "a second leader in this node's own term"));
}

// Raft §5.2: a follower that knows its term's leader refuses another
// claimant, even after it stopped counting on the first (LeaseTimeout).
#[test]
fn an_append_from_a_second_leader_of_the_term_is_dropped_by_a_follower() {
    let mut node = follower(1, &[1], 0);
    node.step(Event::LeaseTimeout);
    drain(&mut node);
    deliver(&mut node, 2, append(1, 2, (1, 1), vec![entry(2, 1)], 0));
    assert_eq!(drain(&mut node), dropped(2, "a second leader in a term whose leader is known"));
    assert_eq!((node.log().last_index(), node.leader()), (1, None));
    deliver(&mut node, 0, append(1, 0, (1, 1), vec![], 0));
    assert_eq!(node.leader(), Some(0), "the term's leader is heard again");
}

// Raft §5.3: the leader names itself; a message whose leader field is
// another node than the sender cannot be honest.
#[test]
fn a_leader_field_other_than_the_sender_is_dropped() {
    let mut node = follower(1, &[1], 0);
    deliver(&mut node, 2, append(1, 0, (1, 1), vec![entry(2, 1)], 0));
    assert_eq!(drain(&mut node), dropped(2, "AppendEntries names a leader other than its sender"));
    deliver(&mut node, 2, append(5, 0, (1, 1), vec![], 0));
    assert_eq!(drain(&mut node), dropped(2, "AppendEntries names a leader other than its sender"));
    assert_eq!(node.term(), 1, "the term of a dropped message is not adopted");
}

// Raft §5.4.3 (Leader Completeness) / issue 11: an AppendEntries that would
// overwrite a committed entry made a follower exit (replication.rs:123).
#[test]
fn an_append_that_would_overwrite_a_committed_entry_is_dropped() {
    let mut node = follower(1, &[1, 1, 1], 2);
    deliver(&mut node, 0, append(2, 0, (1, 1), vec![entry(2, 2), entry(3, 2)], 3));
    assert_eq!(drain(&mut node), dropped(0, "AppendEntries would overwrite a committed entry"));
    assert_eq!(node.term(), 1, "checked before its term is adopted");
    assert_eq!((node.log().last_index(), node.log().term_at(2), node.commit_index()), (3, Some(1), 2));
    // The uncommitted entry 3 may still be replaced (Raft §5.3).
    deliver(&mut node, 0, append(2, 0, (2, 1), vec![entry(3, 2)], 2));
    assert!(drain(&mut node).contains(&Effect::PersistEntries(vec![entry(3, 2)])));
}

// Raft §5.1: a deposed leader's delayed AppendEntries may conflict with
// entries committed since; it is stale, not untrusted, and is answered with
// our term (found by the simulator, seed 4 of the isolated-leader scenario).
#[test]
fn a_stale_append_that_conflicts_with_committed_entries_is_rejected_not_dropped() {
    let mut node = follower(1, &[2, 2], 2);
    deliver(&mut node, 2, append(1, 2, (0, 0), vec![entry(1, 1)], 0));
    let rejection = AppendEntriesResponse {
        term: 2,
        success: false,
        index: 0,
        conflict_index: 0,
        conflict_term: None,
        read_round: 0,
    };
    assert_eq!(drain(&mut node), vec![Effect::Send { to: 2, message: Message::AppendEntriesResponse(rejection) }]);
}

// Raft §5.3 (Log Matching) / issue 11: a forged AppendEntries "from the
// leader" carrying a command at the next index made the follower skip the
// leader's real entry there (same index and term: "already have it") and
// acknowledge it. The core cannot tell which of two different entries with
// the same index and term is genuine; it can refuse to acknowledge the
// second, so the leader never counts this follower for it.
#[test]
fn an_entry_that_differs_from_the_held_one_at_the_same_index_and_term_is_not_acknowledged() {
    let mut node = follower(1, &[1], 1);
    let forged = Entry { term: 1, index: 2, data: b"forged".to_vec() };
    let real = Entry { term: 1, index: 2, data: b"real".to_vec() };
    deliver(&mut node, 0, append(1, 0, (1, 1), vec![forged.clone()], 1));
    drain(&mut node);
    deliver(&mut node, 0, append(1, 0, (1, 1), vec![real, entry(3, 1)], 1));
    assert_eq!(drain(&mut node), dropped(0, "an entry differs from the one held at the same index and term"));
    assert_eq!((node.log().entry(2), node.log().last_index()), (Some(&forged), 2));
    // An identical resend is acknowledged as before.
    deliver(&mut node, 0, append(1, 0, (1, 1), vec![forged], 1));
    let acknowledged = Message::AppendEntriesResponse(success_response(1, 2, 0));
    assert_eq!(sends(&drain(&mut node)), vec![(0, acknowledged)]);
}

// Raft §5.3: a leader's entries follow prev_log_index one by one, in terms
// that never decrease and never pass its own. Anything else used to panic
// in RaftLog::append ("log append must be contiguous").
#[test]
fn entries_that_are_not_a_run_of_a_leaders_log_are_dropped() {
    let cases = [
        (vec![entry(3, 1)], "AppendEntries entries are not contiguous after prev_log_index"),
        (vec![entry(2, 1), entry(2, 1)], "AppendEntries entries are not contiguous after prev_log_index"),
        (vec![entry(2, 2), entry(3, 1)], "AppendEntries entry terms decrease (or are 0)"),
        (vec![entry(2, 0)], "AppendEntries entry terms decrease (or are 0)"),
        (vec![entry(2, 9)], "AppendEntries entry term after the leader's term"),
    ];
    for (entries, reason) in cases {
        let mut node = follower(1, &[1], 1);
        deliver(&mut node, 0, append(2, 0, (1, 1), entries, 9));
        assert_eq!(drain(&mut node), dropped(0, reason));
        assert_eq!((node.term(), node.log().last_index()), (1, 1));
    }
    let mut node = follower(1, &[1], 1);
    deliver(&mut node, 0, append(1, 0, (u64::MAX, 1), vec![entry(0, 1)], 0));
    assert_eq!(drain(&mut node), dropped(0, "AppendEntries prev_log_index above the ceiling of 2^62"));
    deliver(&mut node, 0, append(1, 0, (MAX_INDEX, 1), vec![], u64::MAX));
    let effects = drain(&mut node);
    assert!(matches!(&sends(&effects)[..], [(0, Message::AppendEntriesResponse(r))] if !r.success));
}

// Issue 11: an InstallSnapshot announcing 2^40 bytes grew a follower's
// memory without bound. The announced size is checked against
// CoreConfig::max_snapshot_bytes, and each chunk against the announced size.
#[test]
fn a_snapshot_larger_than_the_configured_maximum_is_dropped() {
    let mut node = follower(1, &[1], 1);
    let mut huge = InstallSnapshot {
        term: 1,
        leader: 0,
        last_index: 9,
        last_term: 1,
        offset: 0,
        total_bytes: 1 << 40,
        data: vec![0; 16],
    };
    deliver(&mut node, 0, Message::InstallSnapshot(huge.clone()));
    assert_eq!(drain(&mut node), dropped(0, "snapshot larger than CoreConfig::max_snapshot_bytes"));
    huge.total_bytes = 8;
    deliver(&mut node, 0, Message::InstallSnapshot(huge.clone()));
    assert_eq!(drain(&mut node), dropped(0, "snapshot chunk reaches past the snapshot's announced size"));
    huge.offset = u64::MAX;
    deliver(&mut node, 0, Message::InstallSnapshot(huge));
    assert_eq!(drain(&mut node), dropped(0, "snapshot chunk reaches past the snapshot's announced size"));
}

// Raft §7: a chunk that does not continue the bytes held is not taken (no
// hole, nothing held twice); the reply names the bytes held, so an honest
// leader resends from there.
#[test]
fn a_chunk_at_another_offset_than_the_bytes_held_is_not_taken() {
    let mut node = follower(1, &[1], 1);
    let image = snapshot(4, 1, b"abcdef");
    deliver(&mut node, 0, install(1, 0, &image, 0, 2));
    drain(&mut node);
    for offset in [0, 1, 4] {
        deliver(&mut node, 0, install(1, 0, &image, offset, 2));
        let reply = InstallSnapshotResponse { term: 1, last_index: 4, received_bytes: 2, done: false };
        assert_eq!(sends(&drain(&mut node)), vec![(0, Message::InstallSnapshotResponse(reply))]);
    }
    deliver(&mut node, 0, install(1, 0, &image, 2, 4));
    assert!(drain(&mut node).contains(&Effect::InstallSnapshot { snapshot: image, log_kept: false }));
}

// Raft §5.4: a leader's log never has a term that decreases, so a snapshot
// past our commit index cannot end in a term older than our committed entry.
#[test]
fn a_snapshot_older_than_the_committed_entries_is_dropped() {
    let mut node = follower(1, &[1, 2, 2], 3);
    let image = snapshot(5, 1, b"old");
    deliver(&mut node, 0, install(2, 0, &image, 0, 3));
    assert_eq!(drain(&mut node), dropped(0, "snapshot ends in a term older than entries committed here"));
    assert_eq!((node.commit_index(), node.snapshot_index()), (3, 0));
}

// Raft dissertation §3.10 / issue 11: a forged TimeoutNow moved leadership.
// Only the leader of our term may tell us to campaign.
#[test]
fn a_timeout_now_not_from_the_leader_of_the_term_is_dropped() {
    let mut node = follower(1, &[1, 2], 0);
    deliver(&mut node, 2, Message::TimeoutNow(TimeoutNow { term: 2, leader: 2 }));
    assert_eq!(drain(&mut node), dropped(2, "TimeoutNow from a node not known to lead this term"));
    deliver(&mut node, 2, Message::TimeoutNow(TimeoutNow { term: 2, leader: 0 }));
    assert_eq!(drain(&mut node), dropped(2, "TimeoutNow names a leader other than its sender"));
    deliver(&mut node, 0, Message::TimeoutNow(TimeoutNow { term: 1, leader: 0 }));
    assert!(drain(&mut node).is_empty(), "a stale TimeoutNow is ignored");
    assert_eq!((node.role(), node.term()), (Role::Follower, 2));
    let mut leader = core(0, 3);
    elect(&mut leader);
    deliver(&mut leader, 1, Message::TimeoutNow(TimeoutNow { term: 1, leader: 1 }));
    assert_eq!(drain(&mut leader), dropped(1, "TimeoutNow from a node not known to lead this term"));
    assert_eq!(leader.role(), Role::Leader);
}

// Raft dissertation §3.10: the checks keep an honest transfer working for
// a target that stopped counting on its leader (LeaseTimeout) in the term:
// it still knows who leads the term.
#[test]
fn a_timeout_now_from_the_leader_of_the_term_is_obeyed_after_a_lease_timeout() {
    let mut node = follower(1, &[1], 0);
    node.step(Event::LeaseTimeout);
    drain(&mut node);
    assert_eq!(node.leader(), None);
    deliver(&mut node, 0, Message::TimeoutNow(TimeoutNow { term: 1, leader: 0 }));
    assert_eq!((node.role(), node.term()), (Role::Candidate, 2));
    let request = sends(&drain(&mut node));
    assert!(matches!(&request[0].1, Message::RequestVote(vote) if vote.leadership_transfer));
}

fn transfer_vote(term: Term, candidate: NodeId) -> Message {
    Message::RequestVote(RequestVote {
        term,
        candidate,
        last_log_index: 9,
        last_log_term: 1,
        leadership_transfer: true,
    })
}

// Raft dissertation §3.10, §4.2.3 / issue 11: a forged RequestVote with the
// transfer flag moved leadership. The flag lifts leader stickiness only for
// an election one term above ours, by a candidate other than our leader;
// a leader honours it only from the target it chose.
#[test]
fn a_transfer_flag_the_leader_did_not_ask_for_does_not_lift_stickiness() {
    let mut node = CoreConfig::new(1, 3);
    node.pre_vote = true;
    let mut node = RaftCore::new(node, HardState::default(), vec![]);
    deliver(&mut node, 0, heartbeat_from(0, 1));
    drain(&mut node);
    deliver(&mut node, 2, transfer_vote(5, 2));
    assert!(drain(&mut node).is_empty(), "a transfer is one term up");
    deliver(&mut node, 0, transfer_vote(2, 0));
    assert!(drain(&mut node).is_empty(), "the leader does not transfer to itself");
    assert_eq!(node.term(), 1);
    let mut leader = core(0, 3);
    elect(&mut leader);
    deliver(&mut leader, 2, transfer_vote(2, 2));
    assert!(drain(&mut leader).is_empty(), "this leader started no transfer");
    assert_eq!((leader.role(), leader.term()), (Role::Leader, 1));
    leader.transfer_leadership(2).expect("leader");
    drain(&mut leader);
    deliver(&mut leader, 2, transfer_vote(2, 2));
    assert_eq!((leader.role(), leader.term()), (Role::Follower, 2), "the target it chose is heard");
}

// Raft §5.2: a candidate asks for itself; only members speak.
#[test]
fn a_sender_outside_the_cluster_or_a_vote_for_someone_else_is_dropped() {
    let mut node = core(1, 3);
    deliver(&mut node, 3, vote_request(1, 3, 0, 0));
    assert_eq!(drain(&mut node), dropped(3, "sender is not a member of the cluster"));
    deliver(&mut node, 1, vote_request(1, 1, 0, 0));
    assert_eq!(drain(&mut node), dropped(1, "message claims to come from this node"));
    deliver(&mut node, 2, vote_request(1, 0, 0, 0));
    assert_eq!(drain(&mut node), dropped(2, "vote request names a candidate other than its sender"));
    assert_eq!((node.term(), node.hard_state.voted_for), (0, None));
}

// Issue 11: forged acknowledgements let a lone leader count followers that
// never had the entries. Those that claim what this leader never held (or
// snapshot bytes it never had) are dropped; one that is plausible cannot be
// told from a real one here: only authenticated senders stop those.
#[test]
fn acknowledgements_of_what_the_leader_never_had_are_dropped() {
    let mut node = core(0, 3);
    elect(&mut node);
    deliver(&mut node, 1, Message::AppendEntriesResponse(success_response(1, 7, 0)));
    assert_eq!(drain(&mut node), dropped(1, "acknowledges entries this leader does not hold"));
    assert_eq!(node.commit_index(), 0);

    let mut config = classic_config(0, 3);
    config.snapshot_chunk_bytes = 4;
    let base = snapshot(5, 1, b"0123456789");
    let hard_state = HardState { current_term: 1, voted_for: None, ..Default::default() };
    let mut leader = RaftCore::restore(config, hard_state, Some(base), vec![entry(6, 1)]);
    drain(&mut leader);
    elect(&mut leader);
    let behind = AppendEntriesResponse {
        term: 2,
        success: false,
        index: 6,
        conflict_index: 1,
        conflict_term: None,
        read_round: 0,
    };
    deliver(&mut leader, 1, Message::AppendEntriesResponse(behind));
    drain(&mut leader);
    for (received_bytes, done) in [(11, false), (4, true)] {
        let reply = InstallSnapshotResponse { term: 2, last_index: 5, received_bytes, done };
        deliver(&mut leader, 1, Message::InstallSnapshotResponse(reply));
        assert_eq!(drain(&mut leader), dropped(1, "InstallSnapshotResponse counts bytes the snapshot does not have"));
    }
    assert_eq!(leader.commit_index(), 5, "only the snapshot restored here is committed");
}
