//! Property test: random sequences of well-formed but hostile messages
//! (arbitrary terms and indices, senders inside and outside the cluster,
//! runs of entries that may or may not continue anything), mixed with the
//! shell's own events, never panic a core and never make it break its own
//! invariants (issue 11: "nothing that arrives from the network can panic a
//! node"). A failure names the seed and step that replay it.

use std::collections::BTreeMap;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::validation::MAX_TERM;
use super::*;

const NODES: usize = 3;
const SEEDS: u64 = 300;
const STEPS: usize = 400;

/// What the core has promised so far; every later state must keep it.
#[derive(Default)]
struct Promises {
    term: Term,
    commit_index: LogIndex,
    applied_index: LogIndex,
    /// Raft §5.2: one vote per term.
    votes: BTreeMap<Term, NodeId>,
    /// Term of every entry handed to Apply (Raft §5.4: never replaced).
    applied_terms: BTreeMap<LogIndex, Term>,
}

fn random_term(rng: &mut SmallRng, term: Term) -> Term {
    match rng.gen_range(0..20) {
        0 => u64::MAX,
        1 => term.saturating_add(rng.gen_range(0..=1u64 << 40)),
        2 => rng.gen(),
        3..=12 => term,
        _ => term.saturating_add(rng.gen_range(0..4)).saturating_sub(1),
    }
}

fn random_index(rng: &mut SmallRng, last_index: LogIndex) -> LogIndex {
    match rng.gen_range(0..20) {
        0 => u64::MAX - rng.gen_range(0..3),
        1 => rng.gen(),
        _ => (last_index + rng.gen_range(0..5)).saturating_sub(3),
    }
}

fn random_entries(rng: &mut SmallRng, prev_index: LogIndex, prev_term: Term, term: Term) -> Vec<Entry> {
    let count = rng.gen_range(0..4);
    let contiguous = rng.gen_bool(0.8);
    let mut entry_term = prev_term;
    (0..count)
        .map(|position| {
            if rng.gen_bool(0.3) {
                entry_term = rng.gen_range(entry_term.saturating_sub(1)..=term.max(entry_term));
            }
            let index = if contiguous {
                prev_index.wrapping_add(position + 1)
            } else {
                rng.gen_range(0..prev_index.saturating_add(5))
            };
            let data = if rng.gen_bool(0.1) { Vec::new() } else { vec![rng.gen_range(0..3u8)] };
            Entry { term: entry_term, index, data }
        })
        .collect()
}

fn random_message(rng: &mut SmallRng, node: &RaftCore) -> (NodeId, Message) {
    let peer = (node.id() + rng.gen_range(1..NODES)) % NODES;
    // Grants in the term asked about, so the core also reaches leadership
    // and its leader-only paths.
    if rng.gen_bool(0.3) && matches!(node.role(), Role::Candidate | Role::PreCandidate) {
        let (term, message): (Term, fn(RequestVoteResponse) -> Message) = match node.role() {
            Role::Candidate => (node.term(), Message::RequestVoteResponse),
            _ => (node.term() + 1, Message::PreVoteResponse),
        };
        return (peer, message(RequestVoteResponse { term, vote_granted: true }));
    }
    let from =
        if rng.gen_bool(0.05) { rng.gen_range(0..NODES + 2) } else { (node.id() + rng.gen_range(1..NODES)) % NODES };
    let claimed = if rng.gen_bool(0.9) { from } else { rng.gen_range(0..NODES) };
    let term = random_term(rng, node.term());
    let last_index = node.log().last_index();
    let index = random_index(rng, last_index);
    let other_term = node.log().term_at(index).filter(|_| rng.gen_bool(0.7)).unwrap_or_else(|| random_term(rng, term));
    let message = match rng.gen_range(0..9) {
        0 | 1 => Message::AppendEntries(AppendEntries {
            term,
            leader: claimed,
            prev_log_index: index,
            prev_log_term: other_term,
            entries: random_entries(rng, index, other_term, term),
            leader_commit: random_index(rng, last_index),
            read_round: rng.gen_range(0..4),
        }),
        2 => Message::AppendEntriesResponse(AppendEntriesResponse {
            term,
            success: rng.gen(),
            index,
            conflict_index: random_index(rng, last_index),
            conflict_term: rng.gen_bool(0.5).then_some(other_term),
            read_round: rng.gen_range(0..4),
        }),
        3 | 4 => {
            let request = RequestVote {
                term,
                candidate: claimed,
                last_log_index: index,
                last_log_term: other_term,
                leadership_transfer: rng.gen(),
            };
            if rng.gen() {
                Message::RequestVote(request)
            } else {
                Message::PreVote(request)
            }
        }
        5 => {
            let response = RequestVoteResponse { term, vote_granted: rng.gen() };
            if rng.gen() {
                Message::RequestVoteResponse(response)
            } else {
                Message::PreVoteResponse(response)
            }
        }
        6 => {
            let total_bytes = if rng.gen_bool(0.1) { rng.gen() } else { rng.gen_range(0..6) };
            let offset = if rng.gen_bool(0.1) { rng.gen() } else { rng.gen_range(0..6) };
            let data = vec![b's'; rng.gen_range(0..4)];
            let last_index = index;
            Message::InstallSnapshot(InstallSnapshot {
                term,
                leader: claimed,
                last_index,
                last_term: other_term,
                offset,
                total_bytes,
                data,
            })
        }
        7 => Message::InstallSnapshotResponse(InstallSnapshotResponse {
            term,
            last_index: index,
            received_bytes: rng.gen_range(0..8),
            done: rng.gen(),
        }),
        _ => Message::TimeoutNow(TimeoutNow { term, leader: claimed }),
    };
    (from, message)
}

/// The shell's own inputs, honest: timers, durability reports, client work
/// and snapshots of what was applied.
fn shell_input(rng: &mut SmallRng, node: &mut RaftCore) {
    match rng.gen_range(0..8) {
        0 => node.step(Event::ElectionTimeout),
        1 => node.step(Event::HeartbeatTimeout),
        2 => node.step(Event::LeaseTimeout),
        3 | 4 => {
            let index = node.log().last_index();
            if let Some(term) = node.log().term_at(index) {
                node.step(Event::LogPersisted { index, term });
            }
        }
        5 => {
            let _ = node.propose(vec![vec![b'c']]);
        }
        6 => {
            let _ = node.read_index();
            let _ = node.transfer_leadership(rng.gen_range(0..NODES + 1));
        }
        _ => {
            let index = node.commit_index();
            if let Some(last_term) = node.log().term_at(index) {
                let data = std::sync::Arc::new(vec![b's']);
                node.step(Event::SnapshotSaved { snapshot: Snapshot { last_index: index, last_term, data } });
            }
        }
    }
}

fn check(node: &RaftCore, effects: &[Effect], promises: &mut Promises) -> Result<(), String> {
    for effect in effects {
        match effect {
            Effect::Send { to, .. } if *to == node.id() || *to >= NODES => return Err(format!("sends to {to}")),
            Effect::PersistHardState(HardState { current_term, voted_for: Some(vote), .. }) => {
                let first = *promises.votes.entry(*current_term).or_insert(*vote);
                if first != *vote {
                    return Err(format!("voted for {first} and {vote} in term {current_term}"));
                }
            }
            Effect::Apply { first_index, last_index } => {
                if *first_index != promises.applied_index + 1 || last_index < first_index {
                    return Err(format!("applies {first_index}..={last_index} after {}", promises.applied_index));
                }
                for index in *first_index..=*last_index {
                    let term = node.log().term_at(index).ok_or(format!("applied index {index} not in the log"))?;
                    promises.applied_terms.insert(index, term);
                }
                promises.applied_index = *last_index;
            }
            Effect::InstallSnapshot { snapshot, .. } => {
                if snapshot.last_index <= promises.applied_index {
                    return Err(format!(
                        "installs snapshot {} after applying {}",
                        snapshot.last_index, promises.applied_index
                    ));
                }
                promises.applied_index = snapshot.last_index;
            }
            _ => {}
        }
    }
    let log = node.log();
    if node.term() < promises.term || node.term() > MAX_TERM {
        return Err(format!("term went from {} to {}", promises.term, node.term()));
    }
    if node.commit_index() < promises.commit_index || node.commit_index() > log.last_index() {
        return Err(format!(
            "commit index {} after {}, log ends at {}",
            node.commit_index(),
            promises.commit_index,
            log.last_index()
        ));
    }
    if log.last_term() > node.term() || node.persisted_index() > log.last_index() {
        return Err(format!("log ends in term {} at term {}", log.last_term(), node.term()));
    }
    for index in log.first_index()..=log.last_index() {
        let (term, previous) = (log.term_at(index), log.term_at(index - 1));
        if log.entry(index).map(|entry| entry.index) != Some(index) || term < previous {
            return Err(format!("log broken at {index}"));
        }
        if let Some(&applied) = promises.applied_terms.get(&index) {
            if term != Some(applied) {
                return Err(format!("applied entry {index} of term {applied} replaced by term {term:?}"));
            }
        }
    }
    if node.role() == Role::Leader && node.leader() != Some(node.id()) {
        return Err("a leader that does not name itself".to_string());
    }
    promises.term = node.term();
    promises.commit_index = node.commit_index();
    Ok(())
}

fn run(seed: u64) -> Result<usize, String> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let id = rng.gen_range(0..NODES);
    let config = CoreConfig {
        pre_vote: rng.gen(),
        snapshot_chunk_bytes: 2,
        retained_entries_after_snapshot: rng.gen_range(0..3),
        ..CoreConfig::new(id, NODES)
    };
    let mut node = RaftCore::new(config, HardState::default(), Vec::new());
    let mut promises = Promises::default();
    let mut effects = Vec::new();
    let mut dropped = 0;
    for step in 0..STEPS {
        if rng.gen_bool(0.6) {
            let (from, message) = random_message(&mut rng, &node);
            node.step(Event::Message { from, message });
        } else {
            shell_input(&mut rng, &mut node);
        }
        effects.clear();
        node.drain_effects(&mut effects);
        dropped += effects.iter().filter(|effect| matches!(effect, Effect::MessageDropped { .. })).count();
        check(&node, &effects, &mut promises).map_err(|violation| format!("seed {seed}, step {step}: {violation}"))?;
    }
    Ok(dropped)
}

#[test]
fn hostile_message_sequences_never_panic_or_break_invariants() {
    let mut dropped = 0;
    for seed in 0..SEEDS {
        let outcome = std::panic::catch_unwind(|| run(seed));
        match outcome {
            Ok(Ok(count)) => dropped += count,
            Ok(Err(violation)) => panic!("{violation}"),
            Err(_) => panic!("seed {seed} panicked (replay: run({seed}))"),
        }
    }
    assert!(dropped > 0, "the sequences exercised no check");
}
