//! Damage that is not a torn write stays loud: a flipped bit, a lost
//! sector or a missing segment in synced data makes `open` refuse, naming
//! the file, the offset and what was expected, and changes nothing on disk.
//! (A torn write can only touch the bytes after the last completed fsync;
//! see tests/wal_crash_consistency.rs.)

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use raftmq::raft::Entry;
use raftmq::storage::{Storage, WalOptions, WalStorage};
use support::temp_directory::TempDirectory;
use support::wal_directory::{append_each_synced, open, segment_files};
use support::wal_layout::{BATCH_HEADER_BYTES, RECORD_OVERHEAD_BYTES, SECTOR_BYTES, SEGMENT_HEADER_BYTES};

fn entry(index: u64, bytes: usize) -> Entry {
    Entry { term: 1 + index / 5, index, data: vec![index as u8; bytes] }
}

/// Write `batches` (entry counts), each synced on its own; return where
/// each batch starts in the (single) segment.
fn write_batches(directory: &Path, batches: &[u64], entry_bytes: usize) -> Vec<usize> {
    let mut wal = open(directory);
    let (mut next_index, mut offset, mut starts) = (1, SEGMENT_HEADER_BYTES, Vec::new());
    for &count in batches {
        let entries: Vec<Entry> = (next_index..next_index + count).map(|index| entry(index, entry_bytes)).collect();
        wal.append_entries(&entries).unwrap();
        wal.sync().unwrap();
        starts.push(offset);
        offset += BATCH_HEADER_BYTES + count as usize * (RECORD_OVERHEAD_BYTES + entry_bytes);
        next_index += count;
    }
    starts
}

/// `open` refuses, names `path` and `offset`, and leaves the bytes alone.
fn assert_refused(directory: &Path, path: &Path, offset: usize, context: &str) {
    let before = fs::read(path).unwrap();
    let error = match WalStorage::open(directory, WalOptions::default()) {
        Ok(_) => panic!("{context}: damage to synced data was accepted"),
        Err(error) => error.detail(),
    };
    assert!(error.contains(&path.display().to_string()), "{context}: {error}");
    assert!(error.contains(&format!("at offset {offset}:")), "{context}: {error}");
    assert!(error.contains("refusing to start"), "{context}: {error}");
    assert_eq!(fs::read(path).unwrap(), before, "{context}: nothing was cut");
}

/// The batch (or the segment header, offset 0) that holds `byte`.
fn holder(starts: &[usize], byte: usize) -> usize {
    starts.iter().copied().filter(|&start| start <= byte).max().unwrap_or(0)
}

#[test]
fn a_flipped_bit_anywhere_in_synced_data_is_refused_naming_file_and_offset() {
    let directory = TempDirectory::in_memory("damage");
    let starts = write_batches(&directory.0, &[3, 1, 4, 2], 30);
    let segment = segment_files(&directory.0).remove(0);
    let original = fs::read(&segment).unwrap();
    // Everything before the last batch is followed by a later write, so
    // it was synced; the last batch alone could be a torn write.
    for byte in 0..*starts.last().unwrap() {
        let mut damaged = original.clone();
        damaged[byte] ^= 1 << (byte % 8);
        fs::write(&segment, &damaged).unwrap();
        assert_refused(&directory.0, &segment, holder(&starts, byte), &format!("bit flipped at byte {byte}"));
    }
}

#[test]
fn a_lost_sector_in_synced_data_is_refused() {
    let directory = TempDirectory::in_memory("damage");
    let starts = write_batches(&directory.0, &[6, 6, 6, 6, 1], 100);
    let segment = segment_files(&directory.0).remove(0);
    let original = fs::read(&segment).unwrap();
    let last_batch = *starts.last().unwrap();
    for sector in 0..last_batch / SECTOR_BYTES {
        let mut damaged = original.clone();
        damaged[sector * SECTOR_BYTES..(sector + 1) * SECTOR_BYTES].fill(0);
        fs::write(&segment, &damaged).unwrap();
        let first_damaged = holder(&starts, sector * SECTOR_BYTES);
        assert_refused(&directory.0, &segment, first_damaged, &format!("sector {sector} zeroed"));
    }
}

/// A log of `count` entries in segments of about `segment_bytes`.
fn write_segmented(directory: &Path, count: u64, segment_bytes: u64) -> Vec<PathBuf> {
    let options = WalOptions { segment_bytes, ..WalOptions::default() };
    let mut wal = WalStorage::open(directory, options).unwrap();
    append_each_synced(&mut wal, (1..=count).map(|index| entry(index, 60)));
    segment_files(directory)
}

#[test]
fn a_missing_segment_is_refused_naming_the_gap() {
    let directory = TempDirectory::in_memory("damage");
    let segments = write_segmented(&directory.0, 30, 400);
    assert!(segments.len() >= 4, "{} segments", segments.len());
    fs::remove_file(&segments[2]).unwrap();
    let error = WalStorage::open(&directory.0, WalOptions::default()).err().expect("refused").detail();
    assert!(error.contains("missing log segment"), "{error}");
    assert!(error.contains(&segments[3].display().to_string()), "{error}");
}

#[test]
fn a_missing_first_segment_is_refused() {
    let directory = TempDirectory::in_memory("damage");
    let segments = write_segmented(&directory.0, 30, 400);
    fs::remove_file(&segments[0]).unwrap();
    let error = WalStorage::open(&directory.0, WalOptions::default()).err().expect("refused").detail();
    let expected = format!(
        "snapshot is missing, but the log starts at index 5 in {}: the entries before it are gone (with the \
         snapshot, or with the first log segments); refusing to start",
        segments[1].display()
    );
    assert!(error.contains(&expected), "{error}");
}

// Each segment was synced whole before the next one was created: damage at
// its end is not a torn write, and neither is a damaged header.
#[test]
fn damage_in_a_segment_before_the_last_is_refused_even_at_its_end() {
    let directory = TempDirectory::in_memory("damage");
    let segments = write_segmented(&directory.0, 30, 400);
    let second = &segments[1];
    let original = fs::read(second).unwrap();
    for (byte, expected_offset) in [(original.len() - 1, None), (3, Some(0))] {
        let mut damaged = original.clone();
        damaged[byte] ^= 0x10;
        fs::write(second, &damaged).unwrap();
        let error = WalStorage::open(&directory.0, WalOptions::default()).err().expect("refused").detail();
        assert!(error.contains(&second.display().to_string()), "{error}");
        if let Some(offset) = expected_offset {
            assert!(error.contains(&format!("at offset {offset}:")), "{error}");
        }
        assert!(error.contains("refusing to start"), "{error}");
    }
}

// Format 2 directories never hold headerless segments: one is damage, not
// a format 1 segment to reinterpret.
#[test]
fn a_segment_without_its_header_is_refused_in_a_format_2_directory() {
    let directory = TempDirectory::in_memory("damage");
    let segments = write_segmented(&directory.0, 30, 400);
    let bytes = fs::read(&segments[1]).unwrap();
    fs::write(&segments[1], &bytes[SEGMENT_HEADER_BYTES..]).unwrap();
    let error = WalStorage::open(&directory.0, WalOptions::default()).err().expect("refused").detail();
    assert!(error.contains(&segments[1].display().to_string()) && error.contains("segment header"), "{error}");
}

// The one ambiguity no single-copy format resolves: the last write of the
// last segment, damaged after its fsync, looks exactly like a torn write.
// It is cut, and the cut is logged; the rest of the log is kept.
#[test]
fn damage_to_the_very_last_batch_is_taken_for_a_torn_write() {
    let directory = TempDirectory::in_memory("damage");
    let starts = write_batches(&directory.0, &[3, 2], 30);
    let segment = segment_files(&directory.0).remove(0);
    let mut bytes = fs::read(&segment).unwrap();
    bytes[starts[1] + BATCH_HEADER_BYTES + 30] ^= 1;
    fs::write(&segment, &bytes).unwrap();
    let entries = WalStorage::open(&directory.0, WalOptions::default()).unwrap().load().unwrap().entries;
    assert_eq!(entries, (1..=3).map(|index| entry(index, 30)).collect::<Vec<_>>());
}
