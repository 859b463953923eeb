//! Starting a node whose data directory lost or damaged durable state:
//! instead of refusing to start, the damaged state is moved aside (kept for
//! inspection, never deleted) and the node starts repairing from the cluster
//! (src/raft/repair.rs; docs/storage.md, "Repair from the cluster").
//!
//! Order, so that a crash at any point leaves a directory that starts the
//! repair again (never one that starts as an intact member having forgotten
//! a promise):
//! 1. the `damaged-<seconds>` directory is created, and the old `hard_state`
//!    copied into it and synced (all with the directory's lock held);
//! 2. `hard_state` is replaced atomically with the repair state: a term
//!    above the kept one (also when the node was already catching up: it may
//!    have acknowledged entries of that term since), spoken for, catching
//!    up; or, when the term is lost or untrusted, term 0 and learning the
//!    term;
//! 3. the log segments, the snapshot and leftover temp files are moved into
//!    the damaged directory, and both directories are synced.
//!
//! A crash after 2 leaves the repair state beside the old files: the next
//! start either refuses them again (and repeats 3, keeping the repair
//! state) or reads them as a log that a node catching up may hold: it never
//! votes on it, and the leader reconciles it like any follower's.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use super::hard_state_file::{read_hard_state, write_hard_state, LogMark, HARD_STATE_FILE};
use super::identity_file::IDENTITY_FILE;
use super::snapshot_file::{io_error, sync_directory};
use super::wal::{lock_directory, LOCK_FILE};
use super::wal_format::FORMAT_FILE;
use super::StorageError;
use crate::raft::{HardState, NodeId, Repair};

/// Files a repair keeps in place: the lock, the format and the identity
/// (which says whose data this is), and earlier repairs' damaged files.
fn kept_in_place(name: &str) -> bool {
    [LOCK_FILE, FORMAT_FILE, IDENTITY_FILE, HARD_STATE_FILE].contains(&name) || name.starts_with("damaged-")
}

/// Whether a node repairs from the cluster the damage or loss `error`
/// names (docs/storage.md, "Repair from the cluster"): damage to what it
/// promised (its term and vote, log or snapshot). Not a damaged `FORMAT` or
/// `IDENTITY`: they stay in place, so a repair would not get past them. Not
/// a snapshot whose checksum holds but which this build cannot decode
/// (`UnreadableSnapshot`, not damaged data): a version problem, which every
/// node would otherwise "repair" in turn, losing a majority.
pub fn is_repairable(error: &StorageError) -> bool {
    match error {
        StorageError::CorruptFile { path, .. } => {
            path.file_name().is_none_or(|name| name != FORMAT_FILE && name != IDENTITY_FILE)
        }
        _ => error.is_damaged_data(),
    }
}

/// What a repair did, for the node's log.
#[derive(Debug)]
pub struct SetAside {
    /// Where the damaged files went.
    pub damaged_directory: PathBuf,
    /// The repair state the node starts in.
    pub hard_state: HardState,
    /// The files moved.
    pub moved: Vec<String>,
}

/// Whether `error` leaves the stored term trusted: it does unless the error
/// is about `hard_state` itself.
fn term_is_trusted(error: &StorageError) -> bool {
    match error {
        StorageError::LostHardState { .. } => false,
        StorageError::CorruptFile { path, .. } => path.file_name().is_none_or(|name| name != HARD_STATE_FILE),
        _ => true,
    }
}

/// The repair state node `me` starts in, from what `hard_state` holds (if
/// trusted): one term above it, spoken for, when a term is kept; learning
/// the term when it is not. (The simulator damages nodes with this rule.)
pub fn repair_hard_state(kept: Option<HardState>, me: NodeId) -> HardState {
    let learning = HardState { current_term: 0, voted_for: None, repair: Repair::LearningTerm };
    match kept {
        None => learning,
        // A node damaged again while catching up may have acknowledged
        // entries of its current term since: the term above it is needed
        // again, as for an intact node.
        Some(stored) => match stored.repair {
            Repair::LearningTerm => learning,
            Repair::CatchingUp | Repair::Intact => match stored.current_term.checked_add(1) {
                Some(term) => HardState { current_term: term, voted_for: Some(me), repair: Repair::CatchingUp },
                None => learning,
            },
        },
    }
}

/// Move the damaged state in `directory` aside and write the repair state
/// node `me` starts in (module docs). `error` is why the directory was
/// refused; `now_seconds` names the damaged directory.
pub fn set_aside_for_repair(
    directory: &Path,
    error: &StorageError,
    me: NodeId,
    now_seconds: u64,
) -> Result<SetAside, StorageError> {
    // Held throughout, as `WalStorage::open` holds it: no other process
    // may use the directory while its files move.
    let _lock = lock_directory(directory)?;
    let kept = if term_is_trusted(error) {
        read_hard_state(directory).ok().flatten().map(|(hard_state, _)| hard_state)
    } else {
        None
    };
    let hard_state = repair_hard_state(kept, me);
    let damaged_directory = unused_directory(directory, now_seconds);
    fs::create_dir(&damaged_directory).map_err(|e| io_error("create", &damaged_directory, e))?;
    sync_directory(directory)?;
    let old_hard_state = directory.join(HARD_STATE_FILE);
    let mut moved = Vec::new();
    if old_hard_state.exists() {
        let copy = damaged_directory.join(HARD_STATE_FILE);
        fs::copy(&old_hard_state, &copy).map_err(|e| io_error("copy", &copy, e))?;
        // Synced before the original is replaced: the copy is for inspection.
        File::open(&copy).and_then(|file| file.sync_all()).map_err(|e| io_error("sync", &copy, e))?;
        moved.push(HARD_STATE_FILE.to_string()); // copied, then replaced
    }
    write_hard_state(directory, hard_state, LogMark::default())?;
    for entry in fs::read_dir(directory).map_err(|e| io_error("list", directory, e))? {
        let entry = entry.map_err(|e| io_error("list", directory, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if kept_in_place(&name) {
            continue;
        }
        let target = damaged_directory.join(&name);
        fs::rename(entry.path(), &target).map_err(|e| io_error("move", &target, e))?;
        moved.push(name);
    }
    moved.sort();
    sync_directory(&damaged_directory)?;
    sync_directory(directory)?;
    Ok(SetAside { damaged_directory, hard_state, moved })
}

fn unused_directory(directory: &Path, now_seconds: u64) -> PathBuf {
    let mut attempt = 0;
    loop {
        let name = match attempt {
            0 => format!("damaged-{now_seconds}"),
            _ => format!("damaged-{now_seconds}-{attempt}"),
        };
        let path = directory.join(name);
        if !path.exists() {
            return path;
        }
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_term_is_raised_and_spoken_for_a_lost_one_is_learned() {
        let stored = HardState { current_term: 7, voted_for: Some(2), repair: Repair::Intact };
        assert_eq!(
            repair_hard_state(Some(stored), 1),
            HardState { current_term: 8, voted_for: Some(1), repair: Repair::CatchingUp }
        );
        // Damaged again while catching up: it may have acknowledged entries
        // of term 9 since, so term 9 is no longer above its promises.
        let catching_up = HardState { current_term: 9, voted_for: Some(1), repair: Repair::CatchingUp };
        assert_eq!(
            repair_hard_state(Some(catching_up), 1),
            HardState { current_term: 10, voted_for: Some(1), repair: Repair::CatchingUp }
        );
        let learning = HardState { current_term: 0, voted_for: None, repair: Repair::LearningTerm };
        assert_eq!(repair_hard_state(None, 1), learning);
        assert_eq!(repair_hard_state(Some(HardState { repair: Repair::LearningTerm, ..stored }), 1), learning);
    }

    #[test]
    fn only_errors_about_hard_state_distrust_the_term() {
        let lost = StorageError::LostHardState {
            path: PathBuf::from("/d/hard_state"),
            found: "is missing".into(),
            evidence: "e".into(),
        };
        assert!(!term_is_trusted(&lost));
        let corrupt = |name: &str| StorageError::CorruptFile { path: Path::new("/d").join(name), what: "x".into() };
        assert!(!term_is_trusted(&corrupt(HARD_STATE_FILE)));
        assert!(term_is_trusted(&corrupt("snapshot")));
    }

    #[test]
    fn damage_to_the_format_or_identity_and_an_undecodable_snapshot_are_not_repaired() {
        let corrupt = |name: &str| StorageError::CorruptFile { path: Path::new("/d").join(name), what: "x".into() };
        assert!(is_repairable(&corrupt(HARD_STATE_FILE)));
        assert!(is_repairable(&corrupt("snapshot")));
        assert!(!is_repairable(&corrupt(FORMAT_FILE)));
        assert!(!is_repairable(&corrupt(IDENTITY_FILE)));
        assert!(!is_repairable(&StorageError::UnreadableSnapshot { problem: "version 9".into() }));
        assert!(!is_repairable(&StorageError::LockHeld { directory: PathBuf::from("/d") }));
    }
}
