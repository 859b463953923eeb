//! The `hard_state` file: term and vote, and the log's durable high-water
//! mark, replaced atomically. The mark rides along with writes the node
//! makes anyway (a term or vote change, a segment rotation), so it costs no
//! fsync per batch; on open it tells a log that lost synced records (a
//! segment gone, a file cut at a record boundary) from one that never had
//! them. What it does and does not catch is in docs/storage.md.
//!
//! Version 2: `"RMQH" | u8 2 | u64 term | u8 voted | u32 vote | u64 durable
//! index | u64 last segment | u32 crc32c`. Version 1 (before the mark) is
//! the same without the two u64 fields; it reads as the empty mark.
//! Version 3, written only while the node repairs from the cluster
//! (src/raft/repair.rs), adds `u8 repair` (1: learning the term, 2:
//! catching up) before the checksum; an intact node writes version 2, which
//! the raftmq before repair reads too.

use std::fs;
use std::path::Path;

use super::snapshot_file::{io_error, replace_file_atomically};
use super::StorageError;
use crate::raft::{HardState, LogIndex, Repair};

/// The file name of the term, vote and durable mark in a data directory.
pub const HARD_STATE_FILE: &str = "hard_state";
const MAGIC: &[u8; 4] = b"RMQH";
const VERSION_1: u8 = 1;
const VERSION_2: u8 = 2;
const VERSION_3: u8 = 3;
const VERSION_1_BYTES: usize = 4 + 1 + 8 + 1 + 4 + 4;
/// The size of the version 2 file, which every intact node writes.
pub const HARD_STATE_BYTES: usize = VERSION_1_BYTES + 8 + 8;
const VERSION_3_BYTES: usize = HARD_STATE_BYTES + 1;

/// What the log held durably when the mark was written. Both fields only
/// claim what an fsync had covered, and are lowered (durably, first)
/// before the log legitimately shrinks below them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogMark {
    /// The log, or the snapshot, held every index up to this one.
    pub durable_index: LogIndex,
    /// A segment starting at this index had been created durably (0: no
    /// claim). It is removed only by compaction, which keeps a later one.
    pub last_segment: LogIndex,
}

impl LogMark {
    /// This mark, lowered so that it claims no more than `other` does.
    pub fn lowered_to(self, durable_index: LogIndex, last_segment: LogIndex) -> LogMark {
        LogMark {
            durable_index: self.durable_index.min(durable_index),
            last_segment: self.last_segment.min(last_segment),
        }
    }
}

fn encode(hard_state: HardState, mark: LogMark) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(VERSION_3_BYTES);
    bytes.extend_from_slice(MAGIC);
    bytes.push(if hard_state.repair == Repair::Intact { VERSION_2 } else { VERSION_3 });
    bytes.extend_from_slice(&hard_state.current_term.to_le_bytes());
    bytes.push(u8::from(hard_state.voted_for.is_some()));
    let vote = hard_state.voted_for.map_or(0, |node| u32::try_from(node).expect("node ids fit in u32"));
    bytes.extend_from_slice(&vote.to_le_bytes());
    bytes.extend_from_slice(&mark.durable_index.to_le_bytes());
    bytes.extend_from_slice(&mark.last_segment.to_le_bytes());
    match hard_state.repair {
        Repair::Intact => {}
        Repair::LearningTerm => bytes.push(1),
        Repair::CatchingUp => bytes.push(2),
    }
    let checksum = crc32c::crc32c(&bytes);
    bytes.extend_from_slice(&checksum.to_le_bytes());
    bytes
}

/// Replace the file atomically (temp file, fsync, rename, directory fsync).
pub fn write_hard_state(directory: &Path, hard_state: HardState, mark: LogMark) -> Result<(), StorageError> {
    replace_file_atomically(directory, HARD_STATE_FILE, &encode(hard_state, mark))
}

/// The stored term, vote and mark; `None` when there is no file.
pub fn read_hard_state(directory: &Path) -> Result<Option<(HardState, LogMark)>, StorageError> {
    let path = directory.join(HARD_STATE_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io_error("read", &path, error)),
    };
    let corrupt = |why: &str| StorageError::CorruptFile { path: path.clone(), what: why.to_string() };
    let expected_bytes = match bytes.get(4) {
        Some(&VERSION_1) => VERSION_1_BYTES,
        Some(&VERSION_2) => HARD_STATE_BYTES,
        Some(&VERSION_3) => VERSION_3_BYTES,
        _ => return Err(corrupt("wrong size, magic or version")),
    };
    if bytes.len() != expected_bytes || &bytes[0..4] != MAGIC {
        return Err(corrupt("wrong size, magic or version"));
    }
    let (body, checksum) = bytes.split_at(expected_bytes - 4);
    if crc32c::crc32c(body) != u32::from_le_bytes(checksum.try_into().expect("4 bytes")) {
        return Err(corrupt("checksum mismatch"));
    }
    let field = |at: usize| u64::from_le_bytes(body[at..at + 8].try_into().expect("8 bytes"));
    let current_term = field(5);
    let vote = u32::from_le_bytes(body[14..18].try_into().expect("4 bytes")) as usize;
    let voted_for = match body[13] {
        0 => None,
        1 => Some(vote),
        _ => return Err(corrupt("bad vote flag")),
    };
    let mark = if expected_bytes >= HARD_STATE_BYTES {
        LogMark { durable_index: field(18), last_segment: field(26) }
    } else {
        LogMark::default()
    };
    let repair = match body.get(34) {
        None => Repair::Intact,
        Some(1) => Repair::LearningTerm,
        Some(2) => Repair::CatchingUp,
        Some(_) => return Err(corrupt("bad repair state")),
    };
    Ok(Some((HardState { current_term, voted_for, repair }, mark)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let directory = std::env::temp_dir().join(format!("raftmq-hard-state-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&directory);
        fs::create_dir_all(&directory).unwrap();
        directory
    }

    #[test]
    fn term_vote_and_mark_survive_a_round_trip() {
        let directory = scratch("round-trip");
        let hard_state = HardState { current_term: 7, voted_for: Some(2), ..Default::default() };
        let mark = LogMark { durable_index: 1234, last_segment: 1001 };
        write_hard_state(&directory, hard_state, mark).unwrap();
        assert_eq!(read_hard_state(&directory).unwrap(), Some((hard_state, mark)));
        fs::remove_dir_all(&directory).unwrap();
    }

    #[test]
    fn a_repair_state_survives_a_round_trip_and_only_it_needs_version_3() {
        let directory = scratch("repair");
        let mark = LogMark { durable_index: 0, last_segment: 0 };
        for repair in [Repair::LearningTerm, Repair::CatchingUp, Repair::Intact] {
            let hard_state = HardState { current_term: 9, voted_for: Some(1), repair };
            write_hard_state(&directory, hard_state, mark).unwrap();
            assert_eq!(read_hard_state(&directory).unwrap(), Some((hard_state, mark)));
            let version = fs::read(directory.join(HARD_STATE_FILE)).unwrap()[4];
            assert_eq!(version, if repair == Repair::Intact { VERSION_2 } else { VERSION_3 });
        }
        fs::remove_dir_all(&directory).unwrap();
    }

    #[test]
    fn a_version_1_file_reads_with_the_empty_mark() {
        let directory = scratch("version-1");
        let mut bytes = MAGIC.to_vec();
        bytes.push(VERSION_1);
        bytes.extend_from_slice(&3u64.to_le_bytes());
        bytes.push(1);
        bytes.extend_from_slice(&2u32.to_le_bytes());
        let checksum = crc32c::crc32c(&bytes);
        bytes.extend_from_slice(&checksum.to_le_bytes());
        fs::write(directory.join(HARD_STATE_FILE), &bytes).unwrap();
        let expected = HardState { current_term: 3, voted_for: Some(2), ..Default::default() };
        assert_eq!(read_hard_state(&directory).unwrap(), Some((expected, LogMark::default())));
        fs::remove_dir_all(&directory).unwrap();
    }

    #[test]
    fn a_missing_file_is_none_and_a_cut_one_is_refused() {
        let directory = scratch("cut");
        assert_eq!(read_hard_state(&directory).unwrap(), None);
        write_hard_state(&directory, HardState::default(), LogMark::default()).unwrap();
        let path = directory.join(HARD_STATE_FILE);
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..VERSION_1_BYTES]).unwrap();
        let error = read_hard_state(&directory).expect_err("refused");
        assert!(error.to_string().contains("wrong size"), "{error}");
        fs::remove_dir_all(&directory).unwrap();
    }
}
