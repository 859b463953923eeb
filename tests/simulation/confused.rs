//! Confused members (issue 11, part 2): well-formed messages that no
//! correct member sends, from a member's id, fed into running nodes. Each
//! is one the core must refuse (`Effect::MessageDropped`) without changing
//! its state: a term absurdly far ahead, a leader or candidate field that
//! is not the sender, entries whose term passes the message's, an
//! acknowledgement of an index nobody holds, a snapshot larger than any a
//! follower accepts, a whole snapshot image that is not one (a damaged
//! leader's), which the follower must refuse by its check rather than
//! install and stop on. Forgeries a core cannot tell from the truth (a vote
//! granted by a member that never granted it) are out of scope: only
//! authenticated members speak (CURVE), and a Byzantine member is beyond
//! Raft. The run's safety checks go on as ever; the harness counts the
//! confused messages each node received, and a node may drop no more
//! messages than that (a drop of an honest message still fails the run).

use raftmq::raft::{Entry, Message, NodeId};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Terms this far above a message's own are refused by every core
/// (`CoreConfig::max_term_jump` is 2^32).
const ABSURD_TERM_JUMP: u64 = 1 << 40;

/// No honest simulated term comes near this: a node at or above it took a
/// confused message's term.
pub const TERM_NO_HONEST_RUN_REACHES: u64 = ABSURD_TERM_JUMP;
/// An index no simulated log reaches.
const ABSURD_INDEX: u64 = 1 << 50;
/// Above `CoreConfig::max_snapshot_bytes` (1 GiB).
const ABSURD_SNAPSHOT_BYTES: u64 = 1 << 40;

/// A confused copy of `message`, sent by `from` in a cluster of
/// `node_count`.
pub fn confuse(rng: &mut ChaCha8Rng, from: NodeId, node_count: usize, message: &Message) -> Message {
    let mut confused = message.clone();
    let someone_else = (from + rng.gen_range(1..node_count.max(2))) % node_count.max(1);
    let changed = match rng.gen_range(0..5) {
        0 => claim_someone_else(&mut confused, someone_else),
        1 => pass_the_message_term(&mut confused),
        2 => acknowledge_the_impossible(&mut confused),
        3 => announce_a_huge_snapshot(&mut confused),
        _ => damage_the_snapshot(&mut confused),
    };
    if !changed || someone_else == from {
        jump_the_term(&mut confused);
    }
    confused
}

fn jump_the_term(message: &mut Message) {
    let term = message.term() + ABSURD_TERM_JUMP;
    match message {
        Message::RequestVote(m) | Message::PreVote(m) => m.term = term,
        Message::RequestVoteResponse(m) | Message::PreVoteResponse(m) => m.term = term,
        Message::AppendEntries(m) => m.term = term,
        Message::AppendEntriesResponse(m) => m.term = term,
        Message::InstallSnapshot(m) => m.term = term,
        Message::InstallSnapshotResponse(m) => m.term = term,
        Message::TimeoutNow(m) => m.term = term,
        Message::TermQuery(m) => m.term = term,
        Message::TermAnswer(m) => m.term = term,
    }
}

/// A leader or candidate field naming another node than the sender.
fn claim_someone_else(message: &mut Message, someone_else: NodeId) -> bool {
    match message {
        Message::RequestVote(m) | Message::PreVote(m) => m.candidate = someone_else,
        Message::AppendEntries(m) => m.leader = someone_else,
        Message::InstallSnapshot(m) => m.leader = someone_else,
        Message::TimeoutNow(m) => m.leader = someone_else,
        _ => return false,
    }
    true
}

/// An entry whose term is above the AppendEntries' own.
fn pass_the_message_term(message: &mut Message) -> bool {
    let Message::AppendEntries(m) = message else { return false };
    let index = m.prev_log_index + m.entries.len() as u64 + 1;
    m.entries.push(Entry { term: m.term + 1, index, data: Vec::new() });
    true
}

fn acknowledge_the_impossible(message: &mut Message) -> bool {
    let Message::AppendEntriesResponse(m) = message else { return false };
    m.success = true;
    m.index = ABSURD_INDEX;
    true
}

/// The chunk becomes the whole image, every byte of it damaged. Its size
/// stays the leader's: a follower that answers with the size it was sent
/// must not make the leader drop that honest answer.
fn damage_the_snapshot(message: &mut Message) -> bool {
    let Message::InstallSnapshot(m) = message else { return false };
    let Ok(total_bytes) = usize::try_from(m.total_bytes) else { return false };
    if total_bytes > DAMAGED_SNAPSHOT_MAX_BYTES {
        return false;
    }
    m.data = vec![0x5a; total_bytes];
    m.offset = 0;
    true
}

/// Simulated snapshots are small; larger ones are not worth copying.
const DAMAGED_SNAPSHOT_MAX_BYTES: usize = 1 << 20;

fn announce_a_huge_snapshot(message: &mut Message) -> bool {
    let Message::InstallSnapshot(m) = message else { return false };
    m.total_bytes = ABSURD_SNAPSHOT_BYTES;
    true
}
