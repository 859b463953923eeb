//! A WAL data directory as the tests see it: opened with the default
//! options, written one synced batch at a time, read back file by file.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use raftmq::raft::Entry;
use raftmq::storage::{Storage, WalOptions, WalStorage};

/// The regular files of a data directory (the lock file aside), by name.
pub type Files = BTreeMap<String, Vec<u8>>;

pub fn open(directory: &Path) -> WalStorage {
    WalStorage::open(directory, WalOptions::default()).expect("opens")
}

/// Append each entry as a batch of its own and sync it, so every record
/// but the last is followed by a later write.
pub fn append_each_synced(wal: &mut WalStorage, entries: impl IntoIterator<Item = Entry>) {
    for entry in entries {
        wal.append_entries(&[entry]).unwrap();
        wal.sync().unwrap();
    }
}

/// The log segments, in order.
pub fn segment_files(directory: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(directory)
        .unwrap()
        .map(|item| item.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "wal"))
        .collect();
    files.sort();
    files
}

pub fn files(directory: &Path) -> Files {
    fs::read_dir(directory)
        .unwrap()
        .map(|item| item.unwrap().path())
        .filter(|path| path.file_name().unwrap() != "LOCK")
        .map(|path| (path.file_name().unwrap().to_str().unwrap().to_string(), fs::read(&path).unwrap()))
        .collect()
}

/// Make the directory hold exactly `files`.
pub fn restore(directory: &Path, files: &Files) {
    let _ = fs::remove_dir_all(directory);
    fs::create_dir_all(directory).unwrap();
    for (name, bytes) in files {
        fs::write(directory.join(name), bytes).unwrap();
    }
}
