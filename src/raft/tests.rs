//! Handler tests: feed one event, compare the effects emitted.

use super::*;

/// The Figure 2 rules are tested without PreVote, which only adds a round
/// before them; the PreVote tests turn it on.
pub(super) fn classic_config(id: NodeId, nodes: usize) -> CoreConfig {
    CoreConfig { pre_vote: false, ..CoreConfig::new(id, nodes) }
}

pub(super) fn core(id: NodeId, nodes: usize) -> RaftCore {
    let mut core = RaftCore::new(classic_config(id, nodes), HardState::default(), Vec::new());
    drain(&mut core);
    core
}

pub(super) fn drain(core: &mut RaftCore) -> Vec<Effect> {
    let mut effects = Vec::new();
    core.drain_effects(&mut effects);
    effects
}

pub(super) fn entry(index: LogIndex, term: Term) -> Entry {
    Entry { term, index, data: vec![b'x', index as u8] }
}

pub(super) fn core_with_log(id: NodeId, nodes: usize, terms: &[Term]) -> RaftCore {
    let entries: Vec<Entry> = terms.iter().enumerate().map(|(i, &t)| entry(i as LogIndex + 1, t)).collect();
    let hard_state =
        HardState { current_term: terms.last().copied().unwrap_or(0), voted_for: None, ..Default::default() };
    let mut core = RaftCore::new(classic_config(id, nodes), hard_state, entries);
    drain(&mut core);
    core
}

pub(super) fn deliver(node: &mut RaftCore, from: NodeId, message: Message) {
    node.step(Event::Message { from, message });
}

/// An AppendEntries from `leader` after `prev` (index, term), with no ReadIndex round.
pub(super) fn append(
    term: Term,
    leader: NodeId,
    prev: (LogIndex, Term),
    entries: Vec<Entry>,
    commit: LogIndex,
) -> Message {
    Message::AppendEntries(AppendEntries {
        term,
        leader,
        prev_log_index: prev.0,
        prev_log_term: prev.1,
        entries,
        leader_commit: commit,
        read_round: 0,
    })
}

pub(super) fn vote_request(term: Term, candidate: NodeId, last_log_index: LogIndex, last_log_term: Term) -> Message {
    Message::RequestVote(RequestVote { term, candidate, last_log_index, last_log_term, leadership_transfer: false })
}

pub(super) fn vote_response(term: Term, vote_granted: bool) -> Message {
    Message::RequestVoteResponse(RequestVoteResponse { term, vote_granted })
}

/// A follower's success reply, matching up to `index`, for ReadIndex round `read_round`.
pub(super) fn success_response(term: Term, index: LogIndex, read_round: u64) -> AppendEntriesResponse {
    AppendEntriesResponse { term, success: true, index, conflict_index: 0, conflict_term: None, read_round }
}

/// A follower's refusal of the AppendEntries whose prev_log_index was `index`.
pub(super) fn rejection_response(
    term: Term,
    index: LogIndex,
    conflict_index: LogIndex,
    conflict_term: Option<Term>,
) -> AppendEntriesResponse {
    AppendEntriesResponse { term, success: false, index, conflict_index, conflict_term, read_round: 0 }
}

pub(super) fn sends(effects: &[Effect]) -> Vec<(NodeId, Message)> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Send { to, message } => Some((*to, message.clone())),
            _ => None,
        })
        .collect()
}

pub(super) fn elect(core: &mut RaftCore) {
    core.step(Event::ElectionTimeout);
    let term = core.term();
    let peers: Vec<NodeId> = (0..core.config.node_count).filter(|&p| p != core.id()).collect();
    for peer in peers {
        deliver(core, peer, vote_response(term, true));
    }
    assert_eq!(core.role(), Role::Leader);
    let last = core.log().last_index();
    core.step(Event::LogPersisted { index: last, term });
    drain(core);
}

// Raft §5.2: on election timeout a follower becomes candidate, votes for
// itself, persists that before asking, and asks every peer.
#[test]
fn election_timeout_starts_election_and_persists_vote_first() {
    let mut node = core(1, 3);
    node.step(Event::ElectionTimeout);
    let effects = drain(&mut node);
    assert_eq!(
        effects[0],
        Effect::PersistHardState(HardState { current_term: 1, voted_for: Some(1), ..Default::default() })
    );
    assert_eq!(effects[1], Effect::ResetElectionTimer);
    assert_eq!(effects[2], Effect::RoleChanged { role: Role::Candidate, term: 1, leader: None });
    assert_eq!(sends(&effects), vec![(0, vote_request(1, 1, 0, 0)), (2, vote_request(1, 1, 0, 0))]);
    assert_eq!(effects.len(), 5);
}

// Raft §5.2: a single node wins its own election at once.
#[test]
fn single_node_becomes_leader_and_commits_its_noop_once_persisted() {
    let mut node = core(0, 1);
    node.step(Event::ElectionTimeout);
    let effects = drain(&mut node);
    assert_eq!(node.role(), Role::Leader);
    assert!(effects.contains(&Effect::PersistEntries(vec![Entry { term: 1, index: 1, data: vec![] }])));
    assert_eq!(node.commit_index(), 0, "nothing commits before it is durable");
    node.step(Event::LogPersisted { index: 1, term: 1 });
    assert_eq!(drain(&mut node), vec![Effect::Apply { first_index: 1, last_index: 1 }]);
}

// Raft §5.2: one vote per term.
#[test]
fn grants_one_vote_per_term() {
    let mut node = core(0, 3);
    deliver(&mut node, 1, vote_request(1, 1, 0, 0));
    let effects = drain(&mut node);
    assert_eq!(
        effects[0],
        Effect::PersistHardState(HardState { current_term: 1, voted_for: None, ..Default::default() })
    );
    assert!(effects.contains(&Effect::PersistHardState(HardState {
        current_term: 1,
        voted_for: Some(1),
        ..Default::default()
    })));
    assert_eq!(sends(&effects), vec![(1, vote_response(1, true))]);
    deliver(&mut node, 2, vote_request(1, 2, 0, 0));
    assert_eq!(sends(&drain(&mut node)), vec![(2, vote_response(1, false))]);
    // A repeated request from the one we voted for is granted again (lost reply).
    deliver(&mut node, 1, vote_request(1, 1, 0, 0));
    assert_eq!(sends(&drain(&mut node)), vec![(1, vote_response(1, true))]);
}

// Raft §5.4.1: refuse a candidate whose log is less up to date.
#[test]
fn refuses_vote_to_candidate_with_stale_log() {
    let mut node = core_with_log(0, 3, &[1, 2]);
    deliver(&mut node, 1, vote_request(3, 1, 5, 1)); // longer log, older last term
    assert_eq!(sends(&drain(&mut node)), vec![(1, vote_response(3, false))]);
    deliver(&mut node, 2, vote_request(3, 2, 1, 2)); // same last term, shorter
    assert_eq!(sends(&drain(&mut node)), vec![(2, vote_response(3, false))]);
    deliver(&mut node, 2, vote_request(3, 2, 2, 2)); // equal: up to date
    assert_eq!(sends(&drain(&mut node)), vec![(2, vote_response(3, true))]);
}

// Raft §5.1: a higher term in any message turns a leader into a follower.
#[test]
fn leader_steps_down_on_higher_term() {
    let mut node = core(0, 3);
    elect(&mut node);
    let response = rejection_response(5, 0, 0, None);
    node.step(Event::Message { from: 2, message: Message::AppendEntriesResponse(response) });
    let effects = drain(&mut node);
    assert_eq!(node.role(), Role::Follower);
    assert_eq!(
        effects[0],
        Effect::PersistHardState(HardState { current_term: 5, voted_for: None, ..Default::default() })
    );
    assert!(effects.contains(&Effect::RoleChanged { role: Role::Follower, term: 5, leader: None }));
}

// Raft §5.3: reject when the log does not contain prev_log_index, with the
// fast-backtracking hint (log too short: last index + 1).
#[test]
fn rejects_append_with_missing_prev_and_hints_log_end() {
    let mut node = core_with_log(1, 3, &[1, 1]);
    let append = AppendEntries {
        term: 1,
        leader: 0,
        prev_log_index: 5,
        prev_log_term: 1,
        entries: vec![],
        leader_commit: 0,
        read_round: 0,
    };
    node.step(Event::Message { from: 0, message: Message::AppendEntries(append) });
    let response = rejection_response(1, 5, 3, None);
    assert_eq!(sends(&drain(&mut node)), vec![(0, Message::AppendEntriesResponse(response))]);
}

// Raft §5.3 with the conflict-term hint: first index of the conflicting term.
#[test]
fn rejects_append_with_term_mismatch_and_hints_first_index_of_term() {
    let mut node = core_with_log(1, 3, &[1, 2, 2, 2]);
    let append = AppendEntries {
        term: 3,
        leader: 0,
        prev_log_index: 4,
        prev_log_term: 3,
        entries: vec![],
        leader_commit: 0,
        read_round: 0,
    };
    node.step(Event::Message { from: 0, message: Message::AppendEntries(append) });
    let response = rejection_response(3, 4, 2, Some(2));
    assert_eq!(sends(&drain(&mut node)).last().unwrap().1, Message::AppendEntriesResponse(response));
}

// Raft §5.3: a conflicting suffix is deleted and replaced; persisted before
// the acknowledgement; the commit index follows min(leaderCommit, last new).
#[test]
fn overwrites_conflicting_suffix_then_acknowledges() {
    let mut node = core_with_log(1, 3, &[1, 1, 2, 2]);
    let entries = vec![entry(3, 3), entry(4, 3), entry(5, 3)];
    let append = AppendEntries {
        term: 3,
        leader: 0,
        prev_log_index: 2,
        prev_log_term: 1,
        entries: entries.clone(),
        leader_commit: 9,
        read_round: 0,
    };
    node.step(Event::Message { from: 0, message: Message::AppendEntries(append) });
    let effects = drain(&mut node);
    let persist_at = effects.iter().position(|e| *e == Effect::PersistEntries(entries.clone())).unwrap();
    let response = success_response(3, 5, 0);
    let send_at = effects
        .iter()
        .position(|e| *e == Effect::Send { to: 0, message: Message::AppendEntriesResponse(response.clone()) })
        .unwrap();
    assert!(persist_at < send_at, "acknowledge only after persisting");
    assert!(effects.contains(&Effect::Apply { first_index: 1, last_index: 5 }));
    assert_eq!(node.log().last_term(), 3);
    assert_eq!(node.log().last_index(), 5);
}

// Raft §5.3: a duplicate or reordered AppendEntries never truncates entries
// the follower already holds.
#[test]
fn stale_append_does_not_truncate_matching_entries() {
    let mut node = core_with_log(1, 3, &[1, 1, 1]);
    let append = AppendEntries {
        term: 1,
        leader: 0,
        prev_log_index: 0,
        prev_log_term: 0,
        entries: vec![entry(1, 1)],
        leader_commit: 0,
        read_round: 0,
    };
    node.step(Event::Message { from: 0, message: Message::AppendEntries(append) });
    let effects = drain(&mut node);
    assert_eq!(node.log().last_index(), 3);
    assert!(!effects.iter().any(|e| matches!(e, Effect::PersistEntries(_))));
}

// Raft §5.4.2 / Figure 8: a leader does not commit an entry of an earlier
// term by counting replicas; it commits once an entry of its own term does.
#[test]
fn leader_commits_earlier_term_entries_only_through_its_own() {
    let mut node = core_with_log(0, 3, &[1, 2]);
    elect(&mut node); // term 3, no-op at index 3
    let ack = |index| success_response(3, index, 0);
    node.step(Event::Message { from: 1, message: Message::AppendEntriesResponse(ack(2)) });
    assert_eq!(node.commit_index(), 0, "index 2 is from term 2: replicas alone do not commit it");
    node.step(Event::Message { from: 1, message: Message::AppendEntriesResponse(ack(3)) });
    assert_eq!(node.commit_index(), 3);
    assert!(drain(&mut node).contains(&Effect::Apply { first_index: 1, last_index: 3 }));
}

// Pipelining: proposals go out without waiting for replies, up to the window.
#[test]
fn leader_pipelines_up_to_the_inflight_window() {
    let mut config = classic_config(0, 2);
    config.max_inflight_messages = 2;
    let mut node = RaftCore::new(config, HardState::default(), Vec::new());
    elect(&mut node);
    // The no-op probe is out; acknowledge it to enter Replicate.
    let ack = success_response(1, 1, 0);
    node.step(Event::Message { from: 1, message: Message::AppendEntriesResponse(ack) });
    drain(&mut node);
    for round in 0..3 {
        node.propose(vec![vec![b'a' + round]]).unwrap();
    }
    let sent = sends(&drain(&mut node));
    assert_eq!(sent.len(), 2, "third proposal waits for the window");
    let Message::AppendEntries(second) = &sent[1].1 else { panic!("expected AppendEntries") };
    assert_eq!(second.prev_log_index, 2);
    assert_eq!(second.entries.len(), 1);
}

// Raft §5.3: a leader backs off using the follower's hint and resends.
#[test]
fn leader_backtracks_with_conflict_hint() {
    let mut node = core_with_log(0, 2, &[1, 1, 1, 4, 4]);
    elect(&mut node); // term 5, no-op at 6, probe at prev 5
    let reject = rejection_response(5, 5, 4, Some(3));
    node.step(Event::Message { from: 1, message: Message::AppendEntriesResponse(reject) });
    let sent = sends(&drain(&mut node));
    let Message::AppendEntries(retry) = &sent[0].1 else { panic!("expected AppendEntries") };
    assert_eq!(retry.prev_log_index, 3, "term 3 unknown to leader: resend from the hinted index");
    assert_eq!(retry.entries.first().map(|e| e.index), Some(4));
}

// A non-leader refuses proposals and names the leader it knows.
#[test]
fn follower_refuses_proposal_with_leader_hint() {
    let mut node = core(1, 3);
    let append = AppendEntries {
        term: 1,
        leader: 2,
        prev_log_index: 0,
        prev_log_term: 0,
        entries: vec![],
        leader_commit: 0,
        read_round: 0,
    };
    node.step(Event::Message { from: 2, message: Message::AppendEntries(append) });
    assert_eq!(node.propose(vec![b"x".to_vec()]), Err(NotLeader { leader: Some(2) }));
}

// Raft dissertation §6.2 (CheckQuorum): a leader that hears from no majority
// within an election timeout steps down; one that does stays.
#[test]
fn leader_without_majority_contact_steps_down() {
    let mut node = core(0, 3);
    elect(&mut node);
    let ack = success_response(1, 1, 0);
    node.step(Event::Message { from: 1, message: Message::AppendEntriesResponse(ack) });
    node.step(Event::ElectionTimeout);
    assert_eq!(node.role(), Role::Leader, "one follower plus itself is a majority of 3");
    assert_eq!(drain(&mut node).last(), Some(&Effect::ResetElectionTimer));
    node.step(Event::ElectionTimeout);
    assert_eq!(node.role(), Role::Follower, "nobody replied during the last timeout");
    let effects = drain(&mut node);
    assert!(effects.contains(&Effect::RoleChanged { role: Role::Follower, term: 1, leader: None }));
    assert_eq!(node.term(), 1, "stepping down does not raise the term");
}

#[test]
fn check_quorum_can_be_turned_off() {
    let mut config = classic_config(0, 3);
    config.check_quorum = false;
    let mut node = RaftCore::new(config, HardState::default(), Vec::new());
    elect(&mut node);
    node.step(Event::ElectionTimeout);
    node.step(Event::ElectionTimeout);
    assert_eq!(node.role(), Role::Leader);
}

pub(super) fn snapshot(last_index: LogIndex, last_term: Term, data: &[u8]) -> Snapshot {
    Snapshot { last_index, last_term, data: std::sync::Arc::new(data.to_vec()) }
}

pub(super) fn install(term: Term, leader: NodeId, snapshot: &Snapshot, offset: usize, length: usize) -> Message {
    Message::InstallSnapshot(InstallSnapshot {
        term,
        leader,
        last_index: snapshot.last_index,
        last_term: snapshot.last_term,
        offset: offset as u64,
        total_bytes: snapshot.data.len() as u64,
        data: snapshot.data[offset..offset + length].to_vec(),
    })
}

pub(super) fn install_response(term: Term, last_index: LogIndex, received_bytes: u64, done: bool) -> Message {
    Message::InstallSnapshotResponse(InstallSnapshotResponse { term, last_index, received_bytes, done })
}

// Raft §7: a leader whose log no longer holds what a follower needs sends
// its snapshot in chunks, each after the previous one is acknowledged, then
// replicates from the entry after the snapshot.
#[test]
fn leader_streams_its_snapshot_to_a_follower_behind_the_compacted_log() {
    let mut config = classic_config(0, 3);
    config.snapshot_chunk_bytes = 4;
    let base = snapshot(5, 1, b"0123456789");
    let entries = vec![entry(6, 1), entry(7, 1)];
    let mut leader = RaftCore::restore(
        config,
        HardState { current_term: 1, voted_for: None, ..Default::default() },
        Some(base.clone()),
        entries,
    );
    drain(&mut leader);
    elect(&mut leader);
    assert_eq!(leader.term(), 2);
    // Follower 1 restarted empty: its log ends at 0, so it needs entry 1.
    let rejection = rejection_response(2, 7, 1, None);
    deliver(&mut leader, 1, Message::AppendEntriesResponse(rejection));
    assert_eq!(sends(&drain(&mut leader)), vec![(1, install(2, 0, &base, 0, 4))]);
    deliver(&mut leader, 1, install_response(2, 5, 4, false));
    assert_eq!(sends(&drain(&mut leader)), vec![(1, install(2, 0, &base, 4, 4))]);
    deliver(&mut leader, 1, install_response(2, 5, 8, false));
    assert_eq!(sends(&drain(&mut leader)), vec![(1, install(2, 0, &base, 8, 2))]);
    deliver(&mut leader, 1, install_response(2, 5, 10, true));
    let after = sends(&drain(&mut leader));
    assert_eq!(after.len(), 1);
    match &after[0].1 {
        Message::AppendEntries(append) => assert_eq!((append.prev_log_index, append.prev_log_term), (5, 1)),
        other => panic!("expected entries after the snapshot, got {other:?}"),
    }
}

// Raft §7: a leader that saves a newer snapshot while streaming an older
// one keeps streaming the older one (its entries are committed too).
// Restarting at every new snapshot never finishes a transfer that takes
// longer than the log takes to reach the next snapshot (found by the
// shell-driven simulator under frequent snapshots).
#[test]
fn a_newer_snapshot_does_not_restart_a_stream_in_progress() {
    let mut config = classic_config(0, 3);
    config.snapshot_chunk_bytes = 4;
    config.retained_entries_after_snapshot = 0;
    let base = snapshot(5, 1, b"0123456789");
    let entries = vec![entry(6, 1), entry(7, 1)];
    let mut leader = RaftCore::restore(
        config,
        HardState { current_term: 1, voted_for: None, ..Default::default() },
        Some(base.clone()),
        entries,
    );
    elect(&mut leader);
    let no_op = leader.log().last_index();
    leader.step(Event::LogPersisted { index: no_op, term: 2 });
    deliver(&mut leader, 2, Message::AppendEntriesResponse(success_response(2, no_op, 0)));
    assert_eq!(leader.commit_index(), no_op);
    drain(&mut leader);
    deliver(&mut leader, 1, Message::AppendEntriesResponse(rejection_response(2, 7, 1, None)));
    assert_eq!(sends(&drain(&mut leader)), vec![(1, install(2, 0, &base, 0, 4))]);
    deliver(&mut leader, 1, install_response(2, 5, 4, false));
    drain(&mut leader);
    leader.step(Event::SnapshotSaved { snapshot: snapshot(7, 1, b"a newer, longer image") });
    assert_eq!(leader.snapshot_index(), 7);
    drain(&mut leader);
    // A heartbeat while the stream is under way: it keeps to snapshot 5.
    leader.step(Event::HeartbeatTimeout);
    let to_follower: Vec<Message> =
        sends(&drain(&mut leader)).into_iter().filter(|(to, _)| *to == 1).map(|(_, message)| message).collect();
    assert!(!to_follower.is_empty(), "the heartbeat reaches the follower");
    for message in to_follower {
        let Message::InstallSnapshot(chunk) = message else { panic!("expected a snapshot chunk, got {message:?}") };
        assert_eq!((chunk.last_index, chunk.offset), (5, 4), "the stream of snapshot 5 goes on where it was");
    }
    deliver(&mut leader, 1, install_response(2, 5, 8, false));
    assert_eq!(sends(&drain(&mut leader)), vec![(1, install(2, 0, &base, 8, 2))], "the old stream goes on");
}

// Raft Figure 13 step 6: a follower whose log holds the snapshot's last
// entry keeps the entries after it; the snapshot's entries count as applied.
#[test]
fn follower_keeps_a_log_that_continues_the_installed_snapshot() {
    let mut follower = core_with_log(1, 3, &[1, 1, 1, 1]);
    let image = snapshot(3, 1, b"ab");
    deliver(&mut follower, 0, install(1, 0, &image, 0, 2));
    let effects = drain(&mut follower);
    assert!(effects.contains(&Effect::InstallSnapshot { snapshot: image, log_kept: true }));
    assert_eq!(sends(&effects), vec![(0, install_response(1, 3, 2, true))]);
    assert_eq!((follower.log().first_index(), follower.log().last_index(), follower.commit_index()), (4, 4, 3));
}

// Raft Figure 13 step 7: a log that conflicts with the snapshot is dropped whole.
#[test]
fn follower_discards_a_log_that_conflicts_with_the_installed_snapshot() {
    let mut follower = core_with_log(1, 3, &[1, 1]);
    let image = snapshot(3, 2, b"xyz");
    deliver(&mut follower, 0, install(2, 0, &image, 0, 1));
    assert_eq!(sends(&drain(&mut follower)), vec![(0, install_response(2, 3, 1, false))]);
    deliver(&mut follower, 0, install(2, 0, &image, 1, 2));
    let effects = drain(&mut follower);
    assert!(effects.contains(&Effect::InstallSnapshot { snapshot: image, log_kept: false }));
    assert_eq!((follower.log().last_index(), follower.log().last_term(), follower.snapshot_index()), (3, 2, 3));
}

// A snapshot that arrives whole but fails the state machine's check is
// not installed: the follower discards it and asks for it from byte 0.
#[test]
fn a_snapshot_that_fails_its_check_is_asked_for_again_not_installed() {
    let mut config = CoreConfig::new(1, 3);
    config.snapshot_check = |image| if image.starts_with(b"ok") { Ok(()) } else { Err("bad image".into()) };
    let mut follower = RaftCore::new(config, HardState::default(), Vec::new());
    let damaged = snapshot(3, 1, b"xxyz");
    deliver(&mut follower, 0, install(1, 0, &damaged, 0, 2));
    assert_eq!(sends(&drain(&mut follower)), vec![(0, install_response(1, 3, 2, false))]);
    deliver(&mut follower, 0, install(1, 0, &damaged, 2, 2));
    let effects = drain(&mut follower);
    assert!(!effects.iter().any(|effect| matches!(effect, Effect::InstallSnapshot { .. })), "{effects:?}");
    assert!(effects.iter().any(|effect| matches!(effect, Effect::MessageDropped { from: 0, .. })));
    assert_eq!(sends(&effects), vec![(0, install_response(1, 3, 0, false))], "asks again from byte 0");
    assert_eq!((follower.snapshot_index(), follower.commit_index()), (0, 0));
    let good = snapshot(3, 1, b"okyz");
    deliver(&mut follower, 0, install(1, 0, &good, 0, 4));
    let effects = drain(&mut follower);
    assert!(effects.contains(&Effect::InstallSnapshot { snapshot: good, log_kept: false }));
    assert_eq!(sends(&effects), vec![(0, install_response(1, 3, 4, true))]);
}

// A chunk that does not continue what the follower holds asks the leader
// to start over rather than leave a hole in the snapshot.
#[test]
fn a_chunk_out_of_place_asks_the_leader_to_start_over() {
    let mut follower = core(1, 3);
    let image = snapshot(4, 1, b"abcdef");
    deliver(&mut follower, 0, install(1, 0, &image, 3, 3));
    assert_eq!(sends(&drain(&mut follower)), vec![(0, install_response(1, 4, 0, false))]);
}

/// A follower holding entries 1..=10 of 100 payload bytes each (entry 10
/// holds `last_entry_bytes`), all committed, that saves a snapshot at 10;
/// returns the CompactLog effects it emits.
fn compaction_after_snapshot(retained_entries: u64, retained_bytes: u64, last_entry_bytes: usize) -> Vec<Effect> {
    let config = CoreConfig {
        retained_entries_after_snapshot: retained_entries,
        retained_bytes_after_snapshot: retained_bytes,
        ..classic_config(1, 3)
    };
    let entries: Vec<Entry> = (1..=10)
        .map(|index| Entry { term: 1, index, data: vec![b'x'; if index == 10 { last_entry_bytes } else { 100 }] })
        .collect();
    let mut follower =
        RaftCore::new(config, HardState { current_term: 1, voted_for: None, ..Default::default() }, entries);
    let commit_all = AppendEntries {
        term: 1,
        leader: 0,
        prev_log_index: 10,
        prev_log_term: 1,
        entries: vec![],
        leader_commit: 10,
        read_round: 0,
    };
    deliver(&mut follower, 0, Message::AppendEntries(commit_all));
    assert_eq!(follower.commit_index(), 10);
    drain(&mut follower);
    follower.step(Event::SnapshotSaved { snapshot: snapshot(10, 1, b"s") });
    drain(&mut follower).into_iter().filter(|effect| matches!(effect, Effect::CompactLog { .. })).collect()
}

// Raft §7: the log is compacted below a snapshot, keeping a tail for
// followers that lag a little; that tail is bounded in entries and in bytes.
#[test]
fn the_tail_kept_below_a_snapshot_is_bounded_in_entries_and_in_bytes() {
    let compacted = |through_index| vec![Effect::CompactLog { through_index }];
    assert_eq!(compaction_after_snapshot(4, 1 << 20, 100), compacted(6), "the entry count binds: 7..=10 kept");
    assert_eq!(compaction_after_snapshot(4, 250, 100), compacted(8), "the bytes bind: 9 and 10 (200 bytes) kept");
    assert_eq!(compaction_after_snapshot(4, 300, 100), compacted(7), "exactly at the byte bound: 8..=10 kept");
    assert_eq!(compaction_after_snapshot(4, 250, 1000), compacted(10), "an entry above the bound alone is not kept");
    assert_eq!(compaction_after_snapshot(20, 1 << 20, 100), vec![], "the whole log fits in the tail: nothing to drop");
}

// A snapshot ahead of what this core has committed (made before the core was
// rebuilt from storage) is ignored, not trusted and not a crash.
#[test]
fn a_saved_snapshot_ahead_of_the_commit_index_is_ignored() {
    let mut follower = core_with_log(1, 3, &[1, 1, 1]);
    follower.step(Event::SnapshotSaved { snapshot: snapshot(2, 1, b"s") });
    assert!(drain(&mut follower).is_empty());
    assert_eq!((follower.snapshot_index(), follower.log().first_index()), (0, 1));
}

fn pre_vote_request(term: Term, candidate: NodeId, last_log_index: LogIndex, last_log_term: Term) -> Message {
    Message::PreVote(RequestVote { term, candidate, last_log_index, last_log_term, leadership_transfer: false })
}

pub(super) fn pre_vote_core(id: NodeId, nodes: usize) -> RaftCore {
    let mut core = RaftCore::new(CoreConfig::new(id, nodes), HardState::default(), Vec::new());
    drain(&mut core);
    core
}

pub(super) fn heartbeat_from(leader: NodeId, term: Term) -> Message {
    Message::AppendEntries(AppendEntries {
        term,
        leader,
        prev_log_index: 0,
        prev_log_term: 0,
        entries: vec![],
        leader_commit: 0,
        read_round: 0,
    })
}

// Raft dissertation §9.6: a timed-out follower asks for pre-votes for
// term + 1 without raising its term or voting; only a majority of grants
// starts the real election.
#[test]
fn pre_vote_asks_first_and_changes_no_term() {
    let mut node = pre_vote_core(1, 3);
    node.step(Event::ElectionTimeout);
    let effects = drain(&mut node);
    assert_eq!(node.role(), Role::PreCandidate);
    assert_eq!(node.term(), 0);
    assert!(!effects.iter().any(|effect| matches!(effect, Effect::PersistHardState(_))), "nothing persisted");
    assert_eq!(sends(&effects), vec![(0, pre_vote_request(1, 1, 0, 0)), (2, pre_vote_request(1, 1, 0, 0))]);
    deliver(&mut node, 0, Message::PreVoteResponse(RequestVoteResponse { term: 1, vote_granted: true }));
    assert_eq!(node.role(), Role::Candidate);
    assert_eq!(node.term(), 1);
    let effects = drain(&mut node);
    assert_eq!(
        effects[0],
        Effect::PersistHardState(HardState { current_term: 1, voted_for: Some(1), ..Default::default() })
    );
}

// Raft dissertation §9.6: a node that still hears from its leader refuses
// a pre-vote and keeps its term; once the leader has been silent for the
// shortest election timeout (LeaseTimeout), it grants.
#[test]
fn pre_vote_is_refused_while_the_leader_is_heard() {
    let mut node = pre_vote_core(0, 3);
    deliver(&mut node, 1, heartbeat_from(1, 1));
    drain(&mut node);
    deliver(&mut node, 2, pre_vote_request(2, 2, 0, 0));
    assert_eq!(
        sends(&drain(&mut node)),
        vec![(2, Message::PreVoteResponse(RequestVoteResponse { term: 1, vote_granted: false }))]
    );
    assert_eq!(node.term(), 1, "a pre-vote raises no term");
    node.step(Event::LeaseTimeout);
    assert_eq!(node.leader(), None);
    drain(&mut node);
    deliver(&mut node, 2, pre_vote_request(2, 2, 0, 0));
    assert_eq!(
        sends(&drain(&mut node)),
        vec![(2, Message::PreVoteResponse(RequestVoteResponse { term: 2, vote_granted: true }))]
    );
    assert_eq!(node.term(), 1);
    assert_eq!(node.hard_state.voted_for, None, "a pre-vote is not a vote");
}

// Raft dissertation §4.2.3 (with CheckQuorum): a vote request for a higher
// term is ignored while the leader is heard, so a disruptive node cannot
// raise the term; a leadership transfer's request is not.
#[test]
fn vote_requests_are_ignored_while_the_leader_is_heard_unless_a_transfer() {
    let mut node = pre_vote_core(0, 3);
    deliver(&mut node, 1, heartbeat_from(1, 1));
    drain(&mut node);
    deliver(&mut node, 2, vote_request(5, 2, 0, 0));
    assert!(drain(&mut node).is_empty());
    assert_eq!(node.term(), 1);
    let transfer =
        RequestVote { term: 2, candidate: 2, last_log_index: 0, last_log_term: 0, leadership_transfer: true };
    deliver(&mut node, 2, Message::RequestVote(transfer));
    assert_eq!(node.term(), 2);
    assert_eq!(sends(&drain(&mut node)), vec![(2, vote_response(2, true))]);
}

// Raft dissertation §6.4: a read waits for one round of AppendEntries
// answered by a majority in the current term, then reads at the commit
// index noted when it began.
#[test]
fn read_index_is_confirmed_by_a_majority_round() {
    let mut node = core(0, 3);
    elect(&mut node);
    for peer in [1, 2] {
        let ack = success_response(1, 1, 0);
        deliver(&mut node, peer, Message::AppendEntriesResponse(ack));
    }
    assert_eq!(node.commit_index(), 1);
    drain(&mut node);
    let round = node.read_index().expect("the leader serves reads");
    let effects = drain(&mut node);
    let asked: Vec<NodeId> = sends(&effects)
        .into_iter()
        .filter(|(_, message)| matches!(message, Message::AppendEntries(append) if append.read_round == round))
        .map(|(to, _)| to)
        .collect();
    assert_eq!(asked, vec![1, 2], "one round to every follower, at once");
    let reply = |read_round| success_response(1, 1, read_round);
    deliver(&mut node, 1, Message::AppendEntriesResponse(reply(round - 1)));
    assert!(!drain(&mut node).iter().any(|e| matches!(e, Effect::ReadsConfirmed { .. })), "an older round");
    deliver(&mut node, 1, Message::AppendEntriesResponse(reply(round)));
    assert!(drain(&mut node).contains(&Effect::ReadsConfirmed { round, read_index: 1 }));
}

// Raft dissertation §6.4: a follower does not serve reads, and a leader
// that loses leadership drops its unconfirmed reads.
#[test]
fn read_index_needs_a_leader_and_dies_with_its_leadership() {
    let mut follower = core(1, 3);
    assert_eq!(follower.read_index(), Err(NotLeader { leader: None }));
    let mut node = core(0, 3);
    elect(&mut node);
    node.read_index().expect("leader");
    deliver(&mut node, 1, heartbeat_from(1, 9));
    assert_eq!(node.role(), Role::Follower);
    assert!(matches!(node.role, role::RoleState::Follower(_)), "its reads went with its leader state");
}

// Raft dissertation §3.10: the leader catches the target up, then sends
// TimeoutNow; it refuses new proposals meanwhile; the target campaigns at
// once with the transfer flag set.
#[test]
fn leadership_transfer_catches_up_then_sends_timeout_now() {
    let mut node = core(0, 3);
    elect(&mut node);
    node.propose(vec![b"x".to_vec()]).expect("leader");
    drain(&mut node);
    node.transfer_leadership(2).expect("leader");
    assert!(node.propose(vec![b"y".to_vec()]).is_err(), "no new work during a transfer");
    let effects = drain(&mut node);
    assert!(!sends(&effects).iter().any(|(_, message)| matches!(message, Message::TimeoutNow(_))));
    let ack = success_response(1, 2, 0);
    deliver(&mut node, 2, Message::AppendEntriesResponse(ack));
    let sent = sends(&drain(&mut node));
    assert!(sent.contains(&(2, Message::TimeoutNow(TimeoutNow { term: 1, leader: 0 }))), "{sent:?}");

    let mut target = core(2, 3);
    deliver(&mut target, 0, heartbeat_from(0, 1));
    drain(&mut target);
    deliver(&mut target, 0, Message::TimeoutNow(TimeoutNow { term: 1, leader: 0 }));
    assert_eq!(target.role(), Role::Candidate);
    let request = sends(&drain(&mut target));
    assert!(matches!(&request[0].1, Message::RequestVote(vote) if vote.leadership_transfer && vote.term == 2));
}

// Raft dissertation §3.10: a transfer that has not finished within an
// election timeout is abandoned and the leader serves again.
#[test]
fn an_unfinished_transfer_is_abandoned_after_an_election_timeout() {
    let mut config = classic_config(0, 3);
    config.check_quorum = false;
    let mut node = RaftCore::new(config, HardState::default(), Vec::new());
    elect(&mut node);
    node.transfer_leadership(1).expect("leader");
    assert_eq!(node.transfer_leadership(0), Err(TransferError::NotLeader(NotLeader { leader: None })));
    node.step(Event::ElectionTimeout);
    assert_eq!(node.transfer_target(), None);
    assert!(node.propose(vec![b"y".to_vec()]).is_ok());
}
