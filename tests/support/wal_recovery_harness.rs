//! Shared by the WAL recovery fuzz target (fuzz/) and its regression test
//! (tests/wal_recovery_regressions.rs): damage one file of a real WAL
//! directory as the input says, then recover. Recovery must never panic:
//! it returns a consistent state, or an error that says what is wrong; and
//! recovering a second time gives the same state.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use raftmq::raft::{Entry, HardState, Snapshot};
use raftmq::storage::{Storage, WalOptions, WalStorage};

/// Which file an input damages; the first is the log segment.
const FILES: [&str; 4] = ["segment", "hard_state", "snapshot", "IDENTITY"];

/// Input layout: byte 0 picks the file; byte 1 picks overwrite (odd) or a
/// patch XORed in at the offset in byte 2 (even); the rest is the content.
pub fn recover_damaged_wal(data: &[u8]) {
    let [file, mode, offset, content @ ..] = data else {
        return;
    };
    let directory = fresh_directory();
    write_base_wal(&directory);
    let path = match FILES[*file as usize % FILES.len()] {
        "segment" => segment_path(&directory),
        name => directory.join(name),
    };
    let mut bytes = fs::read(&path).unwrap_or_default();
    if mode % 2 == 1 {
        bytes = content.to_vec();
    } else {
        let start = (*offset as usize).min(bytes.len());
        for (position, byte) in content.iter().enumerate() {
            match bytes.get_mut(start + position) {
                Some(existing) => *existing ^= byte,
                None => bytes.push(*byte),
            }
        }
    }
    fs::write(&path, &bytes).expect("temp directory is writable");
    let first = recover(&directory);
    if let Ok(state) = &first {
        assert_eq!(&recover(&directory).expect("a second recovery succeeds as the first did"), state);
    }
    let _ = fs::remove_dir_all(&directory);
}

type State = (HardState, Option<(u64, u64, Vec<u8>)>, Vec<Entry>);

fn recover(directory: &Path) -> Result<State, String> {
    let mut wal = WalStorage::open(directory, WalOptions::default()).map_err(|error| error.to_string())?;
    let recovered = wal.load().map_err(|error| error.to_string())?;
    let entries = recovered.entries;
    let start = recovered.snapshot.as_ref().map_or(0, |snapshot| snapshot.last_index);
    for (position, entry) in entries.iter().enumerate() {
        assert_eq!(entry.index, start + 1 + position as u64, "recovered entries are contiguous after the snapshot");
    }
    assert!(entries.windows(2).all(|pair| pair[0].term <= pair[1].term), "terms never go back along the log");
    let snapshot = recovered.snapshot.map(|snapshot| (snapshot.last_index, snapshot.last_term, snapshot.data.to_vec()));
    Ok((recovered.hard_state, snapshot, entries))
}

fn write_base_wal(directory: &Path) {
    let mut wal = WalStorage::open(directory, WalOptions::default()).expect("a fresh WAL opens");
    wal.save_hard_state(HardState { current_term: 3, voted_for: Some(1), ..Default::default() }).expect("writes");
    let snapshot = Snapshot { last_index: 2, last_term: 1, data: std::sync::Arc::new(b"image".to_vec()) };
    wal.save_snapshot(&snapshot).expect("writes");
    wal.reset_log(snapshot.last_index).expect("writes");
    let entries: Vec<Entry> =
        (3..=8).map(|index| Entry { term: 1 + index / 4, index, data: vec![index as u8; index as usize] }).collect();
    wal.append_entries(&entries).expect("writes");
    wal.sync().expect("syncs");
}

fn segment_path(directory: &Path) -> PathBuf {
    let mut segments: Vec<PathBuf> = fs::read_dir(directory)
        .expect("the base WAL exists")
        .map(|entry| entry.expect("readable").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "wal"))
        .collect();
    segments.sort();
    segments.into_iter().next().expect("the base WAL has a segment")
}

/// Under /dev/shm where there is one: each input costs a dozen fsyncs,
/// which a RAM file system makes free.
fn fresh_directory() -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let name = format!("raftmq-fuzz-wal-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst));
    let shared_memory = Path::new("/dev/shm");
    let base = if shared_memory.is_dir() { shared_memory.to_path_buf() } else { std::env::temp_dir() };
    let path = base.join(name);
    let _ = fs::remove_dir_all(&path);
    path
}
