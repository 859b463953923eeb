//! Every decoder that reads bytes from outside (peer frames, log entries,
//! client requests) returns an error on bad input and never panics. Inputs
//! are seeded random bytes and mutations of valid encodings (bit flips,
//! truncations, splices), so the same cases run every time. Coverage-guided
//! fuzzing with cargo-fuzz (scripts/fuzz.sh) starts from fuzz/seeds/. Snapshot
//! images (from disk or a leader) get the same treatment.

use raftmq::node::peer_codec::{self, FrameHeader};
use raftmq::protocol::parse_request;
use raftmq::queue::QueueStateMachine;
use raftmq::queue::{Command, Session, SessionCommand};
use raftmq::raft::{
    AppendEntries, AppendEntriesResponse, Entry, InstallSnapshot, InstallSnapshotResponse, Message, RequestVote,
    RequestVoteResponse, TermAnswer, TermQuery, TimeoutNow,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const CASES: usize = 20_000;

fn valid_peer_frames() -> Vec<Vec<u8>> {
    let messages = [
        Message::RequestVote(RequestVote {
            term: 9,
            candidate: 1,
            last_log_index: 40,
            last_log_term: 8,
            leadership_transfer: false,
        }),
        Message::RequestVoteResponse(RequestVoteResponse { term: 9, vote_granted: true }),
        Message::AppendEntries(AppendEntries {
            term: 9,
            leader: 2,
            prev_log_index: 3,
            prev_log_term: 7,
            entries: vec![
                Entry { term: 9, index: 4, data: Command::GetTopics.encode() },
                Entry { term: 9, index: 5, data: vec![] },
            ],
            leader_commit: 3,
            read_round: 0,
        }),
        Message::AppendEntriesResponse(AppendEntriesResponse {
            term: 9,
            success: false,
            index: 3,
            conflict_index: 2,
            conflict_term: Some(7),
            read_round: 0,
        }),
        Message::InstallSnapshot(InstallSnapshot {
            term: 9,
            leader: 2,
            last_index: 70,
            last_term: 8,
            offset: 16,
            total_bytes: 40,
            data: b"snapshot chunk".to_vec(),
        }),
        Message::InstallSnapshotResponse(InstallSnapshotResponse {
            term: 9,
            last_index: 70,
            received_bytes: 30,
            done: false,
        }),
        Message::PreVote(RequestVote {
            term: 10,
            candidate: 1,
            last_log_index: 40,
            last_log_term: 8,
            leadership_transfer: true,
        }),
        Message::PreVoteResponse(RequestVoteResponse { term: 10, vote_granted: false }),
        Message::TimeoutNow(TimeoutNow { term: 9, leader: 2 }),
        Message::TermQuery(TermQuery { term: 0, nonce: 77 }),
        Message::TermAnswer(TermAnswer { term: 9, nonce: 77, repairing: false }),
    ];
    messages
        .iter()
        .map(|message| {
            let mut frame = Vec::new();
            peer_codec::encode(FrameHeader { cluster_id: 0x5eed_c1a5_7e12_0001, from: 0 }, message, &mut frame);
            frame
        })
        .collect()
}

/// The kind byte of a valid frame: after the version, cluster id and sender.
fn kind_of(frame: &[u8]) -> u8 {
    frame[1 + 8 + 4]
}

#[test]
fn the_peer_seeds_cover_every_message_kind() {
    let mut kinds: Vec<u8> = valid_peer_frames().iter().map(|frame| kind_of(frame)).collect();
    kinds.sort_unstable();
    kinds.dedup();
    assert_eq!(kinds, (1..=peer_codec::LAST_KIND).collect::<Vec<u8>>());
}

/// The cargo-fuzz seeds (written from the layout in docs/protocol.md) are
/// valid frames of every kind, so fuzzing starts from each.
#[test]
fn the_fuzz_seeds_for_the_peer_decoder_decode_and_cover_every_kind() {
    let directory = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/peer_decoder");
    let mut kinds = Vec::new();
    for file in std::fs::read_dir(&directory).expect("the seed directory exists") {
        let path = file.expect("a directory entry").path();
        let bytes = std::fs::read(&path).expect("a readable seed");
        let decoded = peer_codec::decode(&bytes);
        assert!(decoded.is_ok(), "{}: {decoded:?}", path.display());
        kinds.push(kind_of(&bytes));
    }
    kinds.sort_unstable();
    kinds.dedup();
    assert_eq!(kinds, (1..=peer_codec::LAST_KIND).collect::<Vec<u8>>());
}

fn valid_commands() -> Vec<Vec<u8>> {
    [
        Command::PutTopic { topic: "topic".into() },
        Command::GetTopics,
        Command::PutMessage { topic: "t".into(), message: "ünïcode message".into() },
        Command::GetMessage { topic: "t".into() },
    ]
    .into_iter()
    .enumerate()
    .map(|(seq, command)| {
        // Half the entries carry a session, so retries and session images are covered.
        let session = (seq % 2 == 1).then(|| Session { client_id: format!("client-{}", seq % 3), seq: seq as u64 });
        SessionCommand { session, command }.encode()
    })
    .collect()
}

fn valid_requests() -> Vec<Vec<u8>> {
    [
        r#"{"op":"put_message","topic":"t","message":"m","id":[1,{"a":null}]}"#,
        r#"{"op":"get_topics"}"#,
        r#"{"op":"status","id":"x"}"#,
        r#"{"op":"put_topic","topic":"\u00e9\ud83e\udd80"}"#,
        r#"{"op":"get_message","topic":"t","client_id":"c-1","seq":18446744073709551615}"#,
    ]
    .iter()
    .map(|text| text.as_bytes().to_vec())
    .collect()
}

/// A random input: fresh random bytes, or a valid input bit-flipped,
/// truncated, extended or spliced with another.
fn mutate(rng: &mut SmallRng, valid: &[Vec<u8>]) -> Vec<u8> {
    let mut bytes = valid[rng.gen_range(0..valid.len())].clone();
    match rng.gen_range(0..5) {
        0 => {
            let length = rng.gen_range(0..64);
            bytes = (0..length).map(|_| rng.gen()).collect();
        }
        1 => {
            for _ in 0..rng.gen_range(1..4) {
                if !bytes.is_empty() {
                    let position = rng.gen_range(0..bytes.len());
                    bytes[position] ^= 1 << rng.gen_range(0..8);
                }
            }
        }
        2 => {
            let keep = rng.gen_range(0..=bytes.len());
            bytes.truncate(keep);
        }
        3 => {
            for _ in 0..rng.gen_range(1..16) {
                bytes.push(rng.gen());
            }
        }
        _ => {
            let other = &valid[rng.gen_range(0..valid.len())];
            let cut = rng.gen_range(0..=bytes.len());
            let from = rng.gen_range(0..=other.len());
            bytes.truncate(cut);
            bytes.extend_from_slice(&other[from..]);
        }
    }
    bytes
}

#[test]
fn peer_decoder_never_panics_and_round_trips_what_it_accepts() {
    let valid = valid_peer_frames();
    let mut rng = SmallRng::seed_from_u64(1);
    let mut accepted = 0;
    for _ in 0..CASES {
        let bytes = mutate(&mut rng, &valid);
        if let Ok((header, message)) = peer_codec::decode(&bytes) {
            accepted += 1;
            // Whatever decodes must encode back to the same bytes: no
            // ambiguity an attacker could use to smuggle different meanings.
            let mut again = Vec::new();
            peer_codec::encode(header, &message, &mut again);
            assert_eq!(again, bytes);
        }
    }
    assert!(accepted > 0, "the mutations should keep some inputs valid");
}

#[test]
fn command_decoder_never_panics_and_round_trips_what_it_accepts() {
    let valid = valid_commands();
    let mut rng = SmallRng::seed_from_u64(2);
    for _ in 0..CASES {
        let bytes = mutate(&mut rng, &valid);
        if let Ok(entry) = SessionCommand::decode(&bytes) {
            assert_eq!(entry.encode(), bytes);
        }
    }
}

#[test]
fn request_parser_never_panics_and_always_explains_a_rejection() {
    let valid = valid_requests();
    let mut rng = SmallRng::seed_from_u64(3);
    for _ in 0..CASES {
        let bytes = mutate(&mut rng, &valid);
        if let Err(error) = parse_request(&bytes, 1 << 20) {
            assert!(!error.detail.is_empty());
        }
    }
}

// A snapshot image comes from disk or from a leader: decoding it must fail
// cleanly on damage, and what it accepts must re-encode to the same bytes.
#[test]
fn queue_snapshot_decoder_never_panics_and_round_trips_what_it_accepts() {
    let mut machine = QueueStateMachine::new();
    let images: Vec<Vec<u8>> = valid_commands()
        .iter()
        .enumerate()
        .map(|(index, encoded)| {
            machine.apply_entry(index as u64 + 1, encoded).expect("valid command");
            machine.encode_snapshot()
        })
        .collect();
    let mut rng = SmallRng::seed_from_u64(4);
    for _ in 0..CASES {
        let bytes = mutate(&mut rng, &images);
        if let Ok(restored) = QueueStateMachine::decode_snapshot(&bytes) {
            assert_eq!(restored.encode_snapshot(), bytes);
        }
    }
}
