//! The write-ahead log alone: append, sync, reopen, truncate on conflict,
//! torn tails cut at every byte offset, corruption refused with its place;
//! snapshots, compaction, an interrupted install, identity, and the cut
//! back to the last good sync after a failure.

mod support;

use std::fs::{self, OpenOptions};
use std::path::Path;
use std::sync::Arc;

use raftmq::raft::{Entry, HardState, Snapshot};
use raftmq::storage::{Storage, WalOptions, WalStorage};
use support::temp_directory::TempDirectory;
use support::wal_directory::{append_each_synced, open, segment_files};
use support::wal_layout::SEGMENT_HEADER_BYTES;

fn entry(index: u64, term: u64) -> Entry {
    Entry { term, index, data: format!("entry {index} of term {term}").into_bytes() }
}

/// Write entries 1..=count (term 1), each synced on its own (one batch
/// each, so every record but the last is followed by a later write), then
/// close.
fn write_log(directory: &Path, count: u64) {
    append_each_synced(&mut open(directory), (1..=count).map(|index| entry(index, 1)));
}

#[test]
fn entries_and_hard_state_survive_reopen() {
    let directory = TempDirectory::new("wal");
    {
        let mut wal = open(&directory.0);
        wal.save_hard_state(HardState { current_term: 3, voted_for: Some(2), ..Default::default() }).unwrap();
        wal.append_entries(&[entry(1, 1), entry(2, 3)]).unwrap();
        wal.append_entries(&[entry(3, 3)]).unwrap();
        wal.sync().unwrap();
    }
    let mut wal = open(&directory.0);
    let state = wal.load().unwrap();
    assert_eq!(state.hard_state, HardState { current_term: 3, voted_for: Some(2), ..Default::default() });
    assert_eq!(state.entries, vec![entry(1, 1), entry(2, 3), entry(3, 3)]);
    // Appending after a reopen continues the same log.
    wal.append_entries(&[entry(4, 3)]).unwrap();
    wal.sync().unwrap();
    drop(wal);
    assert_eq!(open(&directory.0).load().unwrap().entries.len(), 4);
}

#[test]
fn conflicting_append_replaces_the_suffix_on_disk() {
    let directory = TempDirectory::new("wal");
    {
        let mut wal = open(&directory.0);
        wal.append_entries(&(1..=5).map(|index| entry(index, 1)).collect::<Vec<_>>()).unwrap();
        wal.sync().unwrap();
        wal.append_entries(&[entry(3, 2), entry(4, 2)]).unwrap();
        wal.sync().unwrap();
    }
    let entries = open(&directory.0).load().unwrap().entries;
    assert_eq!(entries, vec![entry(1, 1), entry(2, 1), entry(3, 2), entry(4, 2)]);
}

#[test]
fn gap_is_an_error() {
    let directory = TempDirectory::new("wal");
    let mut wal = open(&directory.0);
    let error = wal.append_entries(&[entry(2, 1)]).unwrap_err();
    assert!(error.detail().contains("outside the stored log"), "{}", error.detail());
}

#[test]
fn torn_last_record_is_cut_at_every_byte_offset() {
    let reference = TempDirectory::new("wal");
    write_log(&reference.0, 2);
    let two_records = fs::metadata(&segment_files(&reference.0)[0]).unwrap().len();
    let directory = TempDirectory::new("wal");
    write_log(&directory.0, 3);
    let segment = segment_files(&directory.0)[0].clone();
    let full = fs::read(&segment).unwrap();
    for cut in two_records..full.len() as u64 {
        fs::write(&segment, &full[..cut as usize]).unwrap();
        let mut wal = open(&directory.0);
        let entries = wal.load().unwrap().entries;
        assert_eq!(entries, vec![entry(1, 1), entry(2, 1)], "cut at {cut}");
        assert_eq!(fs::metadata(&segment).unwrap().len(), two_records, "torn bytes removed (cut at {cut})");
        // The log goes on from the cut.
        wal.append_entries(&[entry(3, 2)]).unwrap();
        wal.sync().unwrap();
        drop(wal);
        assert_eq!(open(&directory.0).load().unwrap().entries.last(), Some(&entry(3, 2)));
    }
}

#[test]
fn last_record_with_bad_checksum_or_zero_tail_is_torn() {
    let directory = TempDirectory::new("wal");
    write_log(&directory.0, 3);
    let segment = segment_files(&directory.0)[0].clone();
    let mut bytes = fs::read(&segment).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff; // last record's final data byte
    bytes.extend_from_slice(&[0; 100]); // and zeros the file system left after it
    fs::write(&segment, &bytes).unwrap();
    assert_eq!(open(&directory.0).load().unwrap().entries.len(), 2);
}

#[test]
fn corrupt_record_before_the_tail_refuses_to_start_naming_file_and_offset() {
    let directory = TempDirectory::new("wal");
    write_log(&directory.0, 3);
    let segment = segment_files(&directory.0)[0].clone();
    let mut bytes = fs::read(&segment).unwrap();
    bytes[SEGMENT_HEADER_BYTES + 40] ^= 0x01; // inside the first record's payload
    fs::write(&segment, &bytes).unwrap();
    let error = WalStorage::open(&directory.0, WalOptions::default()).err().expect("must refuse");
    assert!(error.detail().contains("corrupt log data"), "{}", error.detail());
    assert!(error.detail().contains(&segment.display().to_string()), "{}", error.detail());
    // The first batch starts right after the segment header.
    assert!(error.detail().contains(&format!("offset {SEGMENT_HEADER_BYTES}:")), "{}", error.detail());
    assert_eq!(fs::read(&segment).unwrap(), bytes, "nothing was cut");
}

#[test]
fn corrupt_length_field_is_not_mistaken_for_a_torn_tail() {
    let directory = TempDirectory::new("wal");
    write_log(&directory.0, 3);
    let segment = segment_files(&directory.0)[0].clone();
    let mut bytes = fs::read(&segment).unwrap();
    // The first batch's length field: that batch now "runs past the end".
    let length_field = SEGMENT_HEADER_BYTES + 4;
    bytes[length_field..length_field + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    fs::write(&segment, &bytes).unwrap();
    let error = WalStorage::open(&directory.0, WalOptions::default()).err().expect("must refuse");
    assert!(error.detail().contains(&format!("offset {SEGMENT_HEADER_BYTES}:")), "{}", error.detail());
    assert_eq!(fs::read(&segment).unwrap(), bytes, "nothing was cut");
}

#[test]
fn segments_rotate_and_truncation_removes_later_segments() {
    let directory = TempDirectory::new("wal");
    let options = WalOptions { segment_bytes: 100, ..WalOptions::default() };
    {
        let mut wal = WalStorage::open(&directory.0, options.clone()).unwrap();
        wal.append_entries(&(1..=10).map(|index| entry(index, 1)).collect::<Vec<_>>()).unwrap();
        wal.sync().unwrap();
    }
    let before = segment_files(&directory.0).len();
    assert!(before >= 4, "small segments rotate: {before}");
    {
        let mut wal = WalStorage::open(&directory.0, options.clone()).unwrap();
        assert_eq!(wal.load().unwrap().entries.len(), 10);
        wal.append_entries(&[entry(3, 2)]).unwrap();
        wal.sync().unwrap();
    }
    assert!(segment_files(&directory.0).len() < before);
    let entries = WalStorage::open(&directory.0, options).unwrap().load().unwrap().entries;
    assert_eq!(entries, vec![entry(1, 1), entry(2, 1), entry(3, 2)]);
}

#[test]
fn a_directory_is_used_by_one_process_at_a_time() {
    let directory = TempDirectory::new("wal");
    let _first = open(&directory.0);
    let error = WalStorage::open(&directory.0, WalOptions::default()).err().expect("locked");
    assert!(error.detail().contains("in use"), "{}", error.detail());
}

#[test]
fn corrupt_hard_state_refuses_to_start() {
    let directory = TempDirectory::new("wal");
    {
        let mut wal = open(&directory.0);
        wal.save_hard_state(HardState { current_term: 7, voted_for: None, ..Default::default() }).unwrap();
    }
    let path = directory.0.join("hard_state");
    let mut file = OpenOptions::new().write(true).open(&path).unwrap();
    std::io::Write::write_all(&mut file, b"XX").unwrap();
    drop(file);
    let error = WalStorage::open(&directory.0, WalOptions::default()).err().expect("refuses");
    assert!(error.detail().contains("hard_state"), "{}", error.detail());
}

fn small_segments() -> WalOptions {
    WalOptions { segment_bytes: 200, ..WalOptions::default() }
}

fn snapshot(last_index: u64, last_term: u64) -> Snapshot {
    Snapshot { last_index, last_term, data: Arc::new(format!("state through {last_index}").into_bytes()) }
}

// Raft §7: a snapshot and compaction survive a reopen; only whole segments
// at or before the compaction point are removed, and load returns the
// entries after the snapshot.
#[test]
fn snapshot_and_compaction_survive_reopen() {
    let directory = TempDirectory::new("wal");
    {
        let mut wal = WalStorage::open(&directory.0, small_segments()).unwrap();
        wal.append_entries(&(1..=30).map(|index| entry(index, 1)).collect::<Vec<_>>()).unwrap();
        wal.sync().unwrap();
        let before = segment_files(&directory.0).len();
        wal.save_snapshot(&snapshot(20, 1)).unwrap();
        wal.compact(20).unwrap();
        assert!(segment_files(&directory.0).len() < before, "compaction removed segments");
        assert!(wal.disk_bytes() > 0);
    }
    let mut wal = WalStorage::open(&directory.0, small_segments()).unwrap();
    let state = wal.load().unwrap();
    assert_eq!(state.snapshot, Some(snapshot(20, 1)));
    assert_eq!(state.entries, (21..=30).map(|index| entry(index, 1)).collect::<Vec<_>>());
    wal.append_entries(&[entry(31, 2)]).unwrap();
    wal.sync().unwrap();
}

// Raft Figure 13 step 7: an installed snapshot that the log does not
// continue replaces the whole log; appends continue after the snapshot.
#[test]
fn reset_after_an_installed_snapshot_starts_the_log_after_it() {
    let directory = TempDirectory::new("wal");
    {
        let mut wal = WalStorage::open(&directory.0, small_segments()).unwrap();
        wal.append_entries(&(1..=10).map(|index| entry(index, 1)).collect::<Vec<_>>()).unwrap();
        wal.save_snapshot(&snapshot(50, 3)).unwrap();
        wal.reset_log(50).unwrap();
        wal.append_entries(&[entry(51, 3)]).unwrap();
        wal.sync().unwrap();
    }
    let state = open(&directory.0).load().unwrap();
    assert_eq!(state.snapshot, Some(snapshot(50, 3)));
    assert_eq!(state.entries, vec![entry(51, 3)]);
}

// A crash between saving an installed snapshot and removing the old log
// leaves entries that do not continue the snapshot: they are dropped
// (none can be committed), and the log restarts after the snapshot.
#[test]
fn an_interrupted_install_leaves_no_stale_entries() {
    let directory = TempDirectory::new("wal");
    {
        let mut wal = open(&directory.0);
        wal.append_entries(&(1..=10).map(|index| entry(index, 1)).collect::<Vec<_>>()).unwrap();
        wal.sync().unwrap();
        wal.save_snapshot(&snapshot(8, 2)).unwrap(); // term 2 at 8: the old log diverges
    }
    let mut wal = open(&directory.0);
    let state = wal.load().unwrap();
    assert_eq!(state.entries, Vec::<Entry>::new());
    wal.append_entries(&[entry(9, 2)]).unwrap();
    wal.sync().unwrap();
    drop(wal);
    assert_eq!(open(&directory.0).load().unwrap().entries, vec![entry(9, 2)]);
}

#[test]
fn a_corrupt_snapshot_refuses_to_start() {
    let directory = TempDirectory::new("wal");
    {
        let mut wal = open(&directory.0);
        wal.save_snapshot(&snapshot(5, 1)).unwrap();
    }
    let path = directory.0.join("snapshot");
    let mut bytes = fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    fs::write(&path, bytes).unwrap();
    let error = WalStorage::open(&directory.0, WalOptions::default()).err().expect("refused");
    assert!(error.detail().contains("snapshot") && error.detail().contains("corrupt"), "{}", error.detail());
}

// etcd's cluster token: a directory written by another cluster or node is refused.
#[test]
fn a_directory_of_another_cluster_or_node_is_refused() {
    let directory = TempDirectory::new("wal");
    let identity = |text: &str| WalOptions { identity: Some(text.into()), ..WalOptions::default() };
    drop(WalStorage::open(&directory.0, identity("raftmq cluster aa node 0")).unwrap());
    drop(WalStorage::open(&directory.0, identity("raftmq cluster aa node 0")).unwrap());
    let error = WalStorage::open(&directory.0, identity("raftmq cluster bb node 1")).err().expect("refused");
    assert!(error.detail().contains("belongs to raftmq cluster aa node 0"), "{}", error.detail());
}

// After a failed write or sync, nothing written since the last good sync
// may be read back as durable: it is cut off.
#[test]
fn discard_unsynced_cuts_back_to_the_last_good_sync() {
    let directory = TempDirectory::new("wal");
    let mut wal = open(&directory.0);
    wal.append_entries(&(1..=3).map(|index| entry(index, 1)).collect::<Vec<_>>()).unwrap();
    wal.sync().unwrap();
    wal.append_entries(&(4..=20).map(|index| entry(index, 1)).collect::<Vec<_>>()).unwrap();
    wal.discard_unsynced().unwrap();
    drop(wal);
    let state = open(&directory.0).load().unwrap();
    assert_eq!(state.entries, (1..=3).map(|index| entry(index, 1)).collect::<Vec<_>>());
}

// Rotation syncs the segment it closes, so those entries are durable; the
// active segment's unsynced records are what a discard removes.
#[test]
fn discard_unsynced_keeps_segments_that_rotation_synced() {
    let directory = TempDirectory::new("wal");
    let mut wal = WalStorage::open(&directory.0, small_segments()).unwrap();
    wal.append_entries(&(1..=20).map(|index| entry(index, 1)).collect::<Vec<_>>()).unwrap();
    wal.discard_unsynced().unwrap();
    drop(wal);
    let kept = WalStorage::open(&directory.0, small_segments()).unwrap().load().unwrap().entries;
    assert!(!kept.is_empty() && kept.len() < 20, "kept {} entries", kept.len());
    assert_eq!(kept, (1..=kept.len() as u64).map(|index| entry(index, 1)).collect::<Vec<_>>());
}

// A write that fails part way (ENOSPC) leaves bytes the WAL never counted:
// they are cut too, even whole records, since none of them was synced.
#[test]
fn discard_unsynced_cuts_bytes_a_failed_write_left_behind() {
    let directory = TempDirectory::new("wal");
    let mut wal = open(&directory.0);
    wal.append_entries(&[entry(1, 1)]).unwrap();
    wal.sync().unwrap();
    let segment = segment_files(&directory.0).pop().unwrap();
    let synced = fs::metadata(&segment).unwrap().len();
    // What a partly failed write leaves: a whole record, then part of one.
    let mut file = OpenOptions::new().append(true).open(&segment).unwrap();
    let stray = fs::read(&segment).unwrap();
    std::io::Write::write_all(&mut file, &stray).unwrap();
    std::io::Write::write_all(&mut file, &stray[..5]).unwrap();
    wal.discard_unsynced().unwrap();
    assert_eq!(fs::metadata(&segment).unwrap().len(), synced);
    drop(wal);
    assert_eq!(open(&directory.0).load().unwrap().entries, vec![entry(1, 1)]);
}

// Raft §5.3: a conflicting append that reaches into the middle of a closed
// (full) segment writes its batch there, after the records it replaces,
// before any new segment starts. Closing the segment first left the
// replaced records to be read back before the next segment's first index,
// and the next open refused the log as missing a segment.
#[test]
fn a_conflicting_append_into_a_full_segment_is_read_back_after_a_restart() {
    let directory = TempDirectory::new("wal");
    let options = WalOptions { segment_bytes: 600, ..WalOptions::default() };
    let mut wal = WalStorage::open(&directory.0, options.clone()).unwrap();
    for index in 1..=20 {
        wal.append_entries(&[Entry { term: 1, index, data: vec![7; 120] }]).unwrap();
        wal.sync().unwrap();
    }
    let names = |directory: &Path| -> Vec<String> {
        segment_files(directory).iter().map(|path| path.file_name().unwrap().to_str().unwrap().to_string()).collect()
    };
    assert!(names(&directory.0).contains(&"00000000000000000005.wal".to_string()), "{:?}", names(&directory.0));
    let replacing: Vec<Entry> = (6..=9).map(|index| Entry { term: 2, index, data: vec![1; 120] }).collect();
    wal.append_entries(&replacing).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let entries = WalStorage::open(&directory.0, options).unwrap().load().unwrap().entries;
    let terms: Vec<(u64, u64)> = entries.iter().map(|entry| (entry.index, entry.term)).collect();
    assert_eq!(terms, (1..=9).map(|index| (index, if index < 6 { 1 } else { 2 })).collect::<Vec<_>>());
}
