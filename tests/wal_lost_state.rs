//! A data directory that lost state the node had is refused with one line
//! that names what is gone, never started as if it were new: a log cut at a
//! record boundary or a lost last segment below the durable mark that
//! `hard_state` records, a segment header the mark vouches for, a directory
//! wiped except for `IDENTITY`. And what an honest crash or a new directory
//! leaves still opens (tests/wal_crash_consistency.rs holds the crash cuts).

mod support;

use std::fs;
use std::path::Path;

use raftmq::raft::{Entry, HardState};
use raftmq::storage::{Storage, StorageError, WalOptions, WalStorage};
use support::temp_directory::TempDirectory;
use support::wal_directory::{append_each_synced, files, segment_files};
use support::wal_layout::{BATCH_HEADER_BYTES, RECORD_OVERHEAD_BYTES, SEGMENT_HEADER_BYTES};

const IDENTITY: &str = "raftmq cluster 0123456789abcdef node 0";

fn options(segment_bytes: u64) -> WalOptions {
    WalOptions { segment_bytes, identity: Some(IDENTITY.into()), ..WalOptions::default() }
}

fn entry(index: u64, bytes: usize) -> Entry {
    Entry { term: 2, index, data: vec![index as u8; bytes] }
}

/// A node's directory: term 2 stored, then `count` entries of 60 bytes, one
/// synced batch each, then the term stored again (which records the mark).
fn write_node_directory(directory: &Path, count: u64, segment_bytes: u64) {
    let mut wal = WalStorage::open(directory, options(segment_bytes)).unwrap();
    wal.save_hard_state(HardState { current_term: 2, voted_for: Some(0), ..Default::default() }).unwrap();
    append_each_synced(&mut wal, (1..=count).map(|index| entry(index, 60)));
    wal.save_hard_state(HardState { current_term: 2, voted_for: Some(1), ..Default::default() }).unwrap();
}

/// `open` refuses as lost state, with a line that says `expected`, and
/// changes nothing on disk.
fn assert_lost(directory: &Path, segment_bytes: u64, expected: &str) -> String {
    let before = files(directory);
    let error = WalStorage::open(directory, options(segment_bytes)).err().expect("lost state must be refused");
    assert!(error.is_damaged_data(), "{error}");
    let text = error.to_string();
    assert!(text.contains(expected), "{text}");
    assert!(text.contains("refusing to start") && !text.contains('\n'), "one line: {text}");
    assert_eq!(files(directory), before, "nothing was changed");
    text
}

#[test]
fn a_lost_last_segment_is_refused_naming_it() {
    let directory = TempDirectory::in_memory("lost");
    write_node_directory(&directory.0, 40, 600);
    let segments = segment_files(&directory.0);
    assert!(segments.len() >= 4, "{segments:?}");
    let last = segments.last().unwrap();
    let name = last.file_name().unwrap().to_str().unwrap().to_string();
    fs::remove_file(last).unwrap();
    let text = assert_lost(&directory.0, 600, &format!("hard_state records that the segment {name} was created"));
    assert!(text.contains("lost synced records"), "{text}");
}

#[test]
fn the_last_segments_lost_down_to_a_rotation_are_refused_even_without_a_later_term() {
    let directory = TempDirectory::in_memory("lost");
    {
        let mut wal = WalStorage::open(&directory.0, options(600)).unwrap();
        wal.save_hard_state(HardState { current_term: 2, voted_for: Some(0), ..Default::default() }).unwrap();
        for index in 1..=40 {
            wal.append_entries(&[entry(index, 60)]).unwrap();
            wal.sync().unwrap();
        }
    }
    // No hard_state write since the first: the rotations recorded the mark.
    let segments = segment_files(&directory.0);
    for segment in &segments[segments.len() - 2..] {
        fs::remove_file(segment).unwrap();
    }
    assert_lost(&directory.0, 600, "was created, but the log ends at index");
}

#[test]
fn a_log_cut_at_a_batch_boundary_below_the_mark_is_refused() {
    let directory = TempDirectory::in_memory("lost");
    write_node_directory(&directory.0, 10, 1 << 20);
    let segment = &segment_files(&directory.0)[0];
    let batch_bytes = BATCH_HEADER_BYTES + RECORD_OVERHEAD_BYTES + 60;
    let bytes = fs::read(segment).unwrap();
    assert_eq!(bytes.len(), SEGMENT_HEADER_BYTES + 10 * batch_bytes);
    fs::write(segment, &bytes[..SEGMENT_HEADER_BYTES + 7 * batch_bytes]).unwrap(); // a copy cut short
    assert_lost(
        &directory.0,
        1 << 20,
        "hard_state records that the log was synced through index 10, but it ends at index 7 in",
    );
}

#[test]
fn damage_to_a_last_batch_the_mark_covers_is_refused_not_cut() {
    let directory = TempDirectory::in_memory("lost");
    write_node_directory(&directory.0, 10, 1 << 20);
    let segment = &segment_files(&directory.0)[0];
    let mut bytes = fs::read(segment).unwrap();
    let last = bytes.len() - 5;
    bytes[last] ^= 0x40;
    fs::write(segment, &bytes).unwrap();
    let batch_bytes = BATCH_HEADER_BYTES + RECORD_OVERHEAD_BYTES + 60;
    let offset = SEGMENT_HEADER_BYTES + 9 * batch_bytes;
    assert_lost(
        &directory.0,
        1 << 20,
        &format!(
            "the last write in {} at offset {offset} is damaged (batch checksum mismatch over its 84 bytes), but \
             hard_state records that the log was synced through index 10: synced data was damaged",
            segment.display()
        ),
    );
}

#[test]
fn a_damaged_header_of_a_segment_the_mark_vouches_for_is_refused_not_removed() {
    let directory = TempDirectory::in_memory("lost");
    write_node_directory(&directory.0, 40, 600);
    let last = segment_files(&directory.0).pop().unwrap();
    let mut bytes = fs::read(&last).unwrap();
    bytes.truncate(SEGMENT_HEADER_BYTES);
    bytes[9] ^= 1;
    fs::write(&last, &bytes).unwrap();
    assert_lost(&directory.0, 600, "is damaged (segment header checksum mismatch), but hard_state records that");
}

#[test]
fn a_directory_wiped_except_for_identity_is_refused() {
    let directory = TempDirectory::in_memory("lost");
    write_node_directory(&directory.0, 5, 1 << 20);
    let identity = fs::read_to_string(directory.0.join("IDENTITY")).unwrap();
    assert!(identity.starts_with(&format!("{IDENTITY}\nholds state: ")), "{identity}");
    for path in fs::read_dir(&directory.0).unwrap().map(|item| item.unwrap().path()) {
        if path.file_name().unwrap() != "IDENTITY" {
            fs::remove_file(path).unwrap();
        }
    }
    let text = assert_lost(&directory.0, 1 << 20, "hard_state is missing, but IDENTITY records that this directory");
    assert!(text.contains("could let it vote twice in one term"), "{text}");
}

#[test]
fn a_new_directory_and_one_that_never_stored_a_term_start_blank() {
    let directory = TempDirectory::in_memory("lost");
    drop(WalStorage::open(&directory.0, options(1 << 20)).unwrap());
    let identity = fs::read_to_string(directory.0.join("IDENTITY")).unwrap();
    assert_eq!(identity, format!("{IDENTITY}\n"), "no term stored, no claim");
    // A node started and stopped before any election: still a new member.
    let mut wal = WalStorage::open(&directory.0, options(1 << 20)).unwrap();
    assert_eq!(wal.load().unwrap().hard_state, HardState::default());
    // Even with only IDENTITY left (a crash during the first start).
    drop(wal);
    for path in fs::read_dir(&directory.0).unwrap().map(|item| item.unwrap().path()) {
        if path.file_name().unwrap() != "IDENTITY" {
            fs::remove_file(path).unwrap();
        }
    }
    assert!(WalStorage::open(&directory.0, options(1 << 20)).is_ok());
}

#[test]
fn a_directory_from_before_the_claim_is_claimed_when_it_holds_a_term() {
    let directory = TempDirectory::in_memory("lost");
    write_node_directory(&directory.0, 3, 1 << 20);
    fs::write(directory.0.join("IDENTITY"), format!("{IDENTITY}\n")).unwrap(); // as raftmq wrote it before
    drop(WalStorage::open(&directory.0, options(1 << 20)).unwrap());
    let identity = fs::read_to_string(directory.0.join("IDENTITY")).unwrap();
    assert!(identity.contains("\nholds state: "), "{identity}");
}

#[test]
fn an_honest_log_below_an_old_mark_opens_after_a_conflicting_append_and_a_reset() {
    // Raft §5.3 and Figure 13: the log may shrink, but the mark is lowered
    // first, so what is left is never taken for a lost log.
    let directory = TempDirectory::in_memory("lost");
    write_node_directory(&directory.0, 40, 600);
    {
        let mut wal = WalStorage::open(&directory.0, options(600)).unwrap();
        wal.load().unwrap();
        wal.append_entries(&[Entry { term: 3, index: 13, data: vec![1; 10] }]).unwrap();
        wal.sync().unwrap();
    }
    let mut wal = WalStorage::open(&directory.0, options(600)).unwrap();
    assert_eq!(wal.load().unwrap().entries.len(), 13);
    let snapshot = raftmq::raft::Snapshot { last_index: 11, last_term: 4, data: std::sync::Arc::new(vec![9; 20]) };
    wal.save_snapshot(&snapshot).unwrap();
    wal.reset_log(11).unwrap();
    drop(wal);
    let mut wal = WalStorage::open(&directory.0, options(600)).unwrap();
    let recovered = wal.load().unwrap();
    assert_eq!((recovered.snapshot.map(|snapshot| snapshot.last_index), recovered.entries.len()), (Some(11), 0));
}

#[test]
fn a_lost_hard_state_is_refused_by_its_error_kind() {
    // What the node checks after `load` (storage::check_terms): a log of a
    // term the stored hard state never saw.
    let directory = TempDirectory::in_memory("lost");
    write_node_directory(&directory.0, 3, 1 << 20);
    let mut wal = WalStorage::open(&directory.0, WalOptions::default()).unwrap();
    let mut recovered = wal.load().unwrap();
    recovered.hard_state = HardState::default();
    let error = raftmq::storage::check_terms(&directory.0, &recovered).expect_err("refused");
    assert!(matches!(error, StorageError::LostHardState { .. }), "{error}");
    assert!(
        error.to_string().contains("holds term 0 (an older copy?), but the log holds index 3 of term 2"),
        "{error}"
    );
}
