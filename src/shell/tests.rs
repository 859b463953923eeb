//! Shell handler tests: inputs in, outputs compared.

use std::time::Duration;

use super::*;
use crate::queue::Command;
use crate::raft::{AppendEntries, Entry, InstallSnapshot};

fn settings(id: NodeId, nodes: usize) -> ShellSettings {
    ShellSettings {
        core: CoreConfig::new(id, nodes),
        timers: TimerSettings {
            election_timeout_min: Duration::from_millis(150),
            election_timeout_max: Duration::from_millis(300),
            heartbeat_interval: Duration::from_millis(50),
            stall_tolerance: Duration::from_millis(100),
        },
        request_deadline: Duration::from_millis(500),
        max_pending_requests: 100,
        snapshot_threshold_bytes: 1 << 20,
        client_endpoints: (0..nodes).map(|node| format!("tcp://node-{node}")).collect(),
        exit_linger: Duration::from_millis(20),
    }
}

fn follower(id: NodeId) -> Shell {
    Shell::new(settings(id, 3), RecoveredState::default(), QueueStateMachine::new(), 0, 7, Duration::ZERO)
}

fn put_topic(index: LogIndex, term: u64) -> Entry {
    let command = Command::PutTopic { topic: format!("topic-{index}") };
    Entry { term, index, data: crate::queue::SessionCommand::encode_parts(None, &command) }
}

/// An AppendEntries from `leader` after (prev_log_index, prev_log_term).
fn append(term: u64, leader: NodeId, previous: (LogIndex, u64), entries: Vec<Entry>, leader_commit: LogIndex) -> Input {
    let (prev_log_index, prev_log_term) = previous;
    let message = AppendEntries { term, leader, prev_log_index, prev_log_term, entries, leader_commit, read_round: 0 };
    Input::Peer { from: leader, message: Message::AppendEntries(message) }
}

// Raft §7 with the shell's turns: a commit and, in the same turn, a newer
// leader's snapshot that replaces the log. The entries the commit named are
// applied before the snapshot replaces them (the chaos test's "committed
// entries are in the log" panic, issue 9).
#[test]
fn a_commit_and_a_newer_leaders_snapshot_in_one_turn() {
    let mut shell = follower(2);
    let now = Duration::from_millis(1);
    let entries: Vec<Entry> = (1..=5).map(|index| put_topic(index, 1)).collect();
    shell.on_input(append(1, 0, (0, 0), entries, 0), now);
    shell.end_turn(now);
    // One turn: leader 0 commits 1..=5; leader 1 of term 2 sends its snapshot through 10.
    shell.on_input(append(1, 0, (5, 1), Vec::new(), 5), now);
    let (chunk, digest) = snapshot_chunk(1, 2, 10, 2);
    shell.on_input(chunk, now);
    shell.end_turn(now);
    assert_eq!(shell.last_applied(), 10);
    assert_eq!(shell.queue().digest(), digest, "the state is the leader's snapshot");
    assert_eq!(shell.core().leader(), Some(1));
}

// A write on a node that does not lead is answered at once with a redirect.
#[test]
fn a_write_to_a_follower_is_redirected_at_once() {
    let mut shell = follower(2);
    let now = Duration::from_millis(1);
    shell.on_input(append(1, 0, (0, 0), Vec::new(), 0), now);
    let command = ClientCommand {
        envelope: vec![b"client".to_vec()],
        id: None,
        session: None,
        command: Command::PutTopic { topic: "t".into() },
    };
    shell.on_input(Input::Client(command), now);
    shell.end_turn(now);
    let mut outputs = Vec::new();
    shell.take_outputs(&mut outputs);
    let replies: Vec<&ReplyBody> = outputs
        .iter()
        .filter_map(|output| match output {
            Output::Reply { body, .. } => Some(body),
            _ => None,
        })
        .collect();
    assert_eq!(replies.len(), 1);
    assert_eq!(
        replies[0],
        &ReplyBody::redirect(ErrorCode::NotLeader, Some("tcp://node-0".into()), "this node is not the leader")
    );
}

/// A one-chunk InstallSnapshot of the state after `put_topic` entries
/// 1..=through, ending in `last_term`; and that state's digest.
fn snapshot_chunk(leader: NodeId, term: u64, through: LogIndex, last_term: u64) -> (Input, u64) {
    let mut source = QueueStateMachine::new();
    for index in 1..=through {
        source.apply_entry(index, &put_topic(index, 1).data).expect("valid command");
    }
    let image = source.encode_snapshot();
    let total_bytes = image.len() as u64;
    let chunk = InstallSnapshot { term, leader, last_index: through, last_term, offset: 0, total_bytes, data: image };
    (Input::Peer { from: leader, message: Message::InstallSnapshot(chunk) }, source.digest())
}

// Rule 7 then Raft §7: after a storage failure the rebuilt core knows
// less than the state machine holds; a leader's snapshot of a prefix the
// state machine already applied must not take it backwards (found by the
// simulator, SIM_SEED=2000780 with 7 nodes).
#[test]
fn a_snapshot_behind_the_state_machine_after_a_storage_recovery_is_only_stored() {
    let mut shell = follower(2);
    let now = Duration::from_millis(1);
    let entries: Vec<Entry> = (1..=10).map(|index| put_topic(index, 1)).collect();
    shell.on_input(append(1, 0, (0, 0), entries, 10), now);
    shell.end_turn(now);
    assert_eq!(shell.last_applied(), 10);
    let digest = shell.queue().digest();
    shell.on_input(Input::Disk(DiskReport::Failed { detail: "disk full".into() }), now);
    let hard_state =
        crate::raft::HardState { current_term: shell.core().term(), voted_for: None, ..Default::default() };
    let recovered = RecoveredState { hard_state, snapshot: None, entries: Vec::new() };
    shell.on_input(Input::Disk(DiskReport::Recovered { epoch: 1, state: recovered, disk_bytes: 0 }), now);
    shell.end_turn(now);
    let (chunk, _) = snapshot_chunk(0, 1, 5, 1);
    shell.on_input(chunk, now);
    shell.end_turn(now);
    assert_eq!(shell.last_applied(), 10, "the state machine does not go back");
    assert_eq!(shell.queue().digest(), digest);
    let again: Vec<Entry> = (6..=10).map(|index| put_topic(index, 1)).collect();
    shell.on_input(append(1, 0, (5, 1), again, 10), now);
    shell.end_turn(now);
    assert_eq!((shell.last_applied(), shell.queue().digest()), (10, digest), "entries 6..=10 are not applied twice");
}

// The shell shares the core's snapshot image, so that when the core
// replaces it (here by a newer leader's snapshot) the last reference to
// the old image, hundreds of MB in a flood, is handed out to be freed off
// the turn instead of being dropped inside it.
#[test]
fn a_replaced_snapshot_image_is_handed_out_to_be_freed() {
    let mut shell = follower(2);
    let now = Duration::from_millis(1);
    let mut outputs = Vec::new();
    let released_images = |outputs: &Vec<Output>| -> Vec<std::sync::Arc<Vec<u8>>> {
        let images = outputs.iter().filter_map(|output| match output {
            Output::Release(Garbage::Image(image)) => Some(image.clone()),
            _ => None,
        });
        images.collect()
    };
    let (first, _) = snapshot_chunk(0, 1, 5, 1);
    shell.on_input(first, now);
    shell.end_turn(now);
    shell.take_outputs(&mut outputs);
    assert!(released_images(&outputs).is_empty(), "the first snapshot replaced none");
    let old = shell.core().snapshot_image().cloned().expect("the leader's snapshot is installed");
    let (second, _) = snapshot_chunk(0, 1, 10, 1);
    shell.on_input(second, now);
    shell.end_turn(now);
    outputs.clear();
    shell.take_outputs(&mut outputs);
    let released = released_images(&outputs);
    assert_eq!(released.len(), 1);
    assert!(std::sync::Arc::ptr_eq(&released[0], &old), "the old image is released");
    let current = shell.core().snapshot_image().expect("the newer snapshot is installed");
    assert!(!std::sync::Arc::ptr_eq(current, &old));
    assert_eq!(shell.core().snapshot_index(), 10);
}
