//! A data directory written by format 1 (records back to back, no segment
//! header, no batch frames, no FORMAT file; raftmq before issue 16) is read
//! and rewritten in format 2 by `open`, so a node upgraded in place keeps
//! its data; a cut during that rewrite loses nothing. The format 1 bytes are
//! written by hand here, as that code wrote them.

mod support;

use std::fs;
use std::path::Path;

use raftmq::raft::{Entry, HardState};
use raftmq::storage::{Storage, WalOptions, WalStorage};
use support::temp_directory::TempDirectory;
use support::wal_directory::files;

fn entry(index: u64) -> Entry {
    Entry { term: 1 + index / 4, index, data: format!("message {index}").into_bytes() }
}

/// A format 1 record: `u32 payload length | u32 crc32c(payload) | u64 term
/// | u64 index | data`, little-endian.
fn format_1_record(entry: &Entry) -> Vec<u8> {
    let mut payload = Vec::new();
    payload.extend_from_slice(&entry.term.to_le_bytes());
    payload.extend_from_slice(&entry.index.to_le_bytes());
    payload.extend_from_slice(&entry.data);
    let mut record = Vec::new();
    record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    record.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    record.extend_from_slice(&payload);
    record
}

/// The hard_state file, unchanged between formats: `"RMQH" | u8 1 | u64
/// term | u8 voted | u32 vote | u32 crc32c of all before`.
fn hard_state_file(term: u64, vote: u32) -> Vec<u8> {
    let mut bytes = b"RMQH".to_vec();
    bytes.push(1);
    bytes.extend_from_slice(&term.to_le_bytes());
    bytes.push(1);
    bytes.extend_from_slice(&vote.to_le_bytes());
    let checksum = crc32c::crc32c(&bytes);
    bytes.extend_from_slice(&checksum.to_le_bytes());
    bytes
}

/// A format 1 directory: segments starting at 1, 5 and 9, entries 1..=11,
/// term 3 and a vote for node 2; `tail` appended to the last segment.
fn write_format_1_directory(directory: &Path, tail: &[u8]) {
    fs::create_dir_all(directory).unwrap();
    fs::write(directory.join("hard_state"), hard_state_file(3, 2)).unwrap();
    for (first, last) in [(1, 4), (5, 8), (9, 11)] {
        let mut bytes: Vec<u8> = (first..=last).flat_map(|index| format_1_record(&entry(index))).collect();
        if last == 11 {
            bytes.extend_from_slice(tail);
        }
        fs::write(directory.join(format!("{first:020}.wal")), bytes).unwrap();
    }
}

fn all_entries() -> Vec<Entry> {
    (1..=11).map(entry).collect()
}

#[test]
fn a_format_1_directory_is_read_and_rewritten_in_format_2() {
    let directory = TempDirectory::new("upgrade");
    write_format_1_directory(&directory.0, &[]);
    {
        let mut wal = WalStorage::open(&directory.0, WalOptions::default()).unwrap();
        let state = wal.load().unwrap();
        assert_eq!(state.hard_state, HardState { current_term: 3, voted_for: Some(2), ..Default::default() });
        assert_eq!(state.entries, all_entries());
        wal.append_entries(&[entry(12)]).unwrap();
        wal.sync().unwrap();
    }
    let written = files(&directory.0);
    assert_eq!(written["FORMAT"], b"raftmq write-ahead log format 2\n");
    for (name, bytes) in &written {
        if name.ends_with(".wal") {
            assert!(bytes.starts_with(b"RMQW"), "{name} was rewritten with a segment header");
        }
    }
    let mut expected = all_entries();
    expected.push(entry(12));
    assert_eq!(WalStorage::open(&directory.0, WalOptions::default()).unwrap().load().unwrap().entries, expected);
}

#[test]
fn a_format_1_torn_tail_is_cut_by_that_format_s_rule() {
    let directory = TempDirectory::new("upgrade");
    let torn = format_1_record(&entry(12));
    write_format_1_directory(&directory.0, &torn[..torn.len() - 3]);
    let entries = WalStorage::open(&directory.0, WalOptions::default()).unwrap().load().unwrap().entries;
    assert_eq!(entries, all_entries());
}

#[test]
fn a_format_1_directory_with_synced_damage_is_refused_not_rewritten() {
    let directory = TempDirectory::new("upgrade");
    write_format_1_directory(&directory.0, &[]);
    let path = directory.0.join(format!("{:020}.wal", 5));
    let mut bytes = fs::read(&path).unwrap();
    bytes[12] ^= 4;
    fs::write(&path, &bytes).unwrap();
    let error = WalStorage::open(&directory.0, WalOptions::default()).err().expect("refused").detail();
    assert!(error.contains(&path.display().to_string()) && error.contains("at offset 0:"), "{error}");
    assert!(!directory.0.join("FORMAT").exists(), "the directory was not claimed for format 2");
}

// A cut while segments are rewritten leaves each one whole in one format or
// the other (temp file, fsync, rename), and FORMAT only after all of them.
#[test]
fn a_cut_during_the_rewrite_loses_nothing() {
    let original = TempDirectory::new("upgrade");
    write_format_1_directory(&original.0, &[]);
    let before = files(&original.0);
    drop(WalStorage::open(&original.0, WalOptions::default()).unwrap());
    let after = files(&original.0);
    let segments: Vec<&String> = before.keys().filter(|name| name.ends_with(".wal")).collect();
    let directory = TempDirectory::new("upgrade");
    for rewritten in 0..1u32 << segments.len() {
        for leftover in [false, true] {
            let _ = fs::remove_dir_all(&directory.0);
            fs::create_dir_all(&directory.0).unwrap();
            fs::write(directory.0.join("hard_state"), &before["hard_state"]).unwrap();
            for (number, name) in segments.iter().enumerate() {
                let source = if rewritten >> number & 1 == 1 { &after } else { &before };
                fs::write(directory.0.join(name), &source[*name]).unwrap();
            }
            if leftover {
                // The next segment's temp file, half written.
                let name = segments[0].replace(".wal", ".wal.tmp");
                fs::write(directory.0.join(name), &after[segments[0]][..30]).unwrap();
            }
            let entries = WalStorage::open(&directory.0, WalOptions::default()).unwrap().load().unwrap().entries;
            assert_eq!(entries, all_entries(), "segments rewritten: {rewritten:b}, leftover temp file: {leftover}");
            // The rewrite finished: the same files, every segment in format 2
            // (each with a salt of its own, so not byte for byte the same).
            let finished = files(&directory.0);
            assert_eq!(finished.keys().collect::<Vec<_>>(), after.keys().collect::<Vec<_>>(), "{rewritten:b}");
            assert_eq!(finished["FORMAT"], after["FORMAT"]);
            for name in &segments {
                assert!(finished[*name].starts_with(b"RMQW"), "{name} rewritten ({rewritten:b}, {leftover})");
            }
        }
    }
}

#[test]
fn a_format_this_build_does_not_know_is_refused() {
    let directory = TempDirectory::new("upgrade");
    drop(WalStorage::open(&directory.0, WalOptions::default()).unwrap());
    fs::write(directory.0.join("FORMAT"), "raftmq write-ahead log format 3\n").unwrap();
    let error = WalStorage::open(&directory.0, WalOptions::default()).err().expect("refused").detail();
    assert!(error.contains("format 3") && error.contains("reads formats 1 and 2"), "{error}");
    fs::write(directory.0.join("FORMAT"), "garbage").unwrap();
    let error = WalStorage::open(&directory.0, WalOptions::default()).err().expect("refused").detail();
    assert!(error.contains("FORMAT is corrupt"), "{error}");
}
