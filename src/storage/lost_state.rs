//! Recovery that explains itself: the checks that tell a data directory
//! that lost state a node had (a missing `hard_state`, a log cut short
//! below its durable high-water mark) from one that never had it. Each
//! failure is one line naming the file and what to do; none is a state an
//! honest crash can leave (docs/storage.md, "A node that lost its data").

use std::path::Path;

use super::hard_state_file::{LogMark, HARD_STATE_FILE};
use super::{RecoveredState, StorageError};
use crate::raft::LogIndex;

/// The log must reach what `mark` records as durable: `covered_index` is
/// the higher of the log's last index and the snapshot's, `last_segment`
/// the first index and path of the last segment, if any.
pub fn check_log_reaches_mark(
    directory: &Path,
    mark: LogMark,
    covered_index: LogIndex,
    last_segment: Option<(LogIndex, &Path)>,
) -> Result<(), StorageError> {
    let cut_short = |what: String| StorageError::LogCutShort { directory: directory.to_path_buf(), what };
    let ends = match last_segment {
        Some((_, path)) => format!("in {}", path.display()),
        None => "with no log segment left".to_string(),
    };
    let last_first_index = last_segment.map_or(0, |(first_index, _)| first_index);
    if mark.last_segment > last_first_index {
        return Err(cut_short(format!(
            "hard_state records that the segment {:020}.wal was created, but the log ends at index {covered_index} \
             {ends}",
            mark.last_segment
        )));
    }
    if covered_index < mark.durable_index {
        return Err(cut_short(format!(
            "hard_state records that the log was synced through index {}, but it ends at index {covered_index} {ends}",
            mark.durable_index
        )));
    }
    Ok(())
}

/// The log and snapshot a node recovered hold no term above its stored
/// term (Raft Figure 2: a node's log never holds a term it has not seen).
/// A higher one means `hard_state` went missing or was replaced by an older
/// copy: starting anyway would forget the vote the lost file held.
pub fn check_terms(directory: &Path, state: &RecoveredState) -> Result<(), StorageError> {
    let from_log = state
        .entries
        .last()
        .map(|entry| (entry.term, format!("the log holds index {} of term {}", entry.index, entry.term)));
    let from_snapshot = state.snapshot.as_ref().map(|snapshot| {
        (
            snapshot.last_term,
            format!("the snapshot through index {} is of term {}", snapshot.last_index, snapshot.last_term),
        )
    });
    // On a tie the log, which is later, is named.
    let Some((term, evidence)) = from_snapshot.into_iter().chain(from_log).max_by_key(|(term, _)| *term) else {
        return Ok(());
    };
    if term <= state.hard_state.current_term {
        return Ok(());
    }
    let path = directory.join(HARD_STATE_FILE);
    let found = if path.exists() {
        format!("holds term {} (an older copy?)", state.hard_state.current_term)
    } else {
        "is missing".to_string()
    };
    Err(StorageError::LostHardState { path, found, evidence })
}

/// `IDENTITY` says the directory held the node's term and vote, and
/// `hard_state` is gone.
pub fn wiped(directory: &Path) -> StorageError {
    StorageError::LostHardState {
        path: directory.join(HARD_STATE_FILE),
        found: "is missing".to_string(),
        evidence: "IDENTITY records that this directory held them (was it wiped, or copied in part?)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::{Entry, HardState, Snapshot};

    fn state(term: u64, log_terms: &[u64], snapshot_term: Option<u64>) -> RecoveredState {
        let entries = log_terms
            .iter()
            .enumerate()
            .map(|(at, &term)| Entry { term, index: 11 + at as u64, data: vec![] })
            .collect();
        let snapshot =
            snapshot_term.map(|last_term| Snapshot { last_index: 10, last_term, data: std::sync::Arc::new(vec![]) });
        RecoveredState {
            hard_state: HardState { current_term: term, voted_for: None, ..Default::default() },
            snapshot,
            entries,
        }
    }

    #[test]
    fn a_log_or_snapshot_above_the_stored_term_is_a_lost_hard_state() {
        let directory = Path::new("/nonexistent/raftmq");
        assert!(check_terms(directory, &state(0, &[], None)).is_ok(), "a new node");
        assert!(check_terms(directory, &state(3, &[1, 3], Some(1))).is_ok());
        let error = check_terms(directory, &state(0, &[1, 2], Some(1))).expect_err("refused");
        assert_eq!(
            error.detail(),
            "/nonexistent/raftmq/hard_state is missing, but the log holds index 12 of term 2: this node's term and \
             vote are lost, and starting without them could let it vote twice in one term; refusing to start (put \
             the original file back, or see docs/storage.md, \"A node that lost its data\")"
        );
        assert!(error.is_damaged_data());
        let error = check_terms(directory, &state(0, &[], Some(4))).expect_err("refused");
        assert!(error.detail().contains("but the snapshot through index 10 is of term 4"), "{}", error.detail());
    }

    #[test]
    fn a_log_short_of_its_mark_names_what_is_missing() {
        let directory = Path::new("/data");
        let mark = LogMark { durable_index: 90, last_segment: 81 };
        let segment = Path::new("/data/00000000000000000041.wal");
        assert!(check_log_reaches_mark(directory, mark, 95, Some((81, segment))).is_ok());
        assert!(check_log_reaches_mark(directory, mark, 90, Some((120, segment))).is_ok());
        let short = check_log_reaches_mark(directory, mark, 80, Some((81, segment))).expect_err("refused");
        assert!(
            short.detail().starts_with(
                "the log in /data lost synced records: hard_state records that the log was synced through index 90, \
                 but it ends at index 80 in /data/00000000000000000041.wal;"
            ),
            "{}",
            short.detail()
        );
        let gone = check_log_reaches_mark(directory, mark, 90, Some((41, segment))).expect_err("refused");
        assert!(gone.detail().contains("the segment 00000000000000000081.wal was created"), "{}", gone.detail());
        let none = check_log_reaches_mark(directory, mark, 100, None).expect_err("refused");
        assert!(none.detail().contains("with no log segment left"), "{}", none.detail());
    }
}
