//! What can go wrong with storage, typed: callers tell a full disk from a
//! failing one by `io_kind`, not by reading text, and damage carries its
//! place. `Display` is the node's one-line error, so every text says what
//! happened, where, and what the node does about it.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

use crate::raft::LogIndex;

const PREFIX: &str = "storage error: ";

/// The exit status of a node that refuses its data directory's content
/// (sysexits' EX_DATAERR): told apart from a bad option or a busy port (1)
/// and from a bug (70, or 101 for a panic).
pub const DATA_EXIT_CODE: u8 = 65;

/// Why storage could not be opened, read or written. The variants that
/// [`StorageError::is_damaged_data`] names stop a node from starting; the
/// others are failures of the disk or of the call (rule 7 in the crate
/// docs: a failed write or sync is a crash of the node's storage).
#[derive(Debug, Error)]
pub enum StorageError {
    /// A file system call failed; `source.kind()` says how (ENOSPC is
    /// `StorageFull`, EIO is `Other`, ...).
    #[error("storage error: cannot {operation} {}: {source}", .path.display())]
    Io {
        /// What was being done, as a verb phrase ("sync", "create").
        operation: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Log bytes that are damaged and cannot be a torn write.
    #[error("storage error: corrupt log data in {} at offset {offset}: {what}; refusing to start", .path.display())]
    CorruptLog {
        /// The damaged segment file.
        path: PathBuf,
        /// Where in it the damage starts, in bytes from the file's start.
        offset: u64,
        /// What was found there instead of a valid record.
        what: String,
    },
    /// A file other than a log segment (hard state, snapshot, FORMAT) is damaged.
    #[error("storage error: {} is corrupt ({what}); refusing to start", .path.display())]
    CorruptFile {
        /// The damaged file.
        path: PathBuf,
        /// What is wrong with it.
        what: String,
    },
    /// The log skips indexes: a segment file between two others is gone.
    #[error(
        "storage error: missing log segment: {} starts at index {first_index}, but the log before it ends at index \
         {previous_last_index}; refusing to start",
        .path.display()
    )]
    MissingSegment {
        /// The segment after the gap.
        path: PathBuf,
        /// The first index that segment holds.
        first_index: LogIndex,
        /// The last index of the segment before the gap.
        previous_last_index: LogIndex,
    },
    /// The log does not reach down to the snapshot: the segments between are gone.
    #[error(
        "storage error: missing log segment: the log starts at index {first_index} in {}, but the snapshot ends at \
         index {snapshot_index}; refusing to start",
        .path.display()
    )]
    LogAfterSnapshot {
        /// The first segment on disk.
        path: PathBuf,
        /// The first index that segment holds.
        first_index: LogIndex,
        /// The last index the snapshot covers.
        snapshot_index: LogIndex,
    },
    /// A file in the log directory whose name is not a segment's.
    #[error("storage error: {} is not named <first index>.wal", .path.display())]
    SegmentName {
        /// The misnamed file.
        path: PathBuf,
    },
    /// The data directory's `FORMAT` file names a format this build cannot
    /// read (written by a newer raftmq, or damaged).
    #[error(
        "storage error: {} says format {found}, but this raftmq reads formats 1 and {supported} only; refusing to start",
        .path.display()
    )]
    UnknownFormat {
        /// The `FORMAT` file.
        path: PathBuf,
        /// The format it names.
        found: u32,
        /// The newest format this build reads.
        supported: u32,
    },
    /// The directory was claimed by another cluster or node (etcd's cluster token).
    #[error(
        "storage error: data directory {} belongs to {found}, not to {expected}; refusing to start (use another \
         --data-dir)",
        .directory.display()
    )]
    IdentityMismatch {
        /// The data directory.
        directory: PathBuf,
        /// The cluster and node its `IDENTITY` file names.
        found: String,
        /// The cluster and node this process is.
        expected: String,
    },
    /// Another process holds the data directory's lock: two nodes on one
    /// directory would corrupt it.
    #[error("storage error: data directory {} is in use by another raftmq process", .directory.display())]
    LockHeld {
        /// The data directory.
        directory: PathBuf,
    },
    /// An append that would leave a hole in the log or rewrite compacted
    /// entries; the caller broke the storage contract.
    #[error("storage error: append at index {index} outside the stored log {first_index}..={last_index}")]
    AppendOutsideLog {
        /// The first index of the append.
        index: LogIndex,
        /// The first index the log holds.
        first_index: LogIndex,
        /// The last index the log holds.
        last_index: LogIndex,
    },
    /// The stored snapshot is intact but the state machine cannot read it.
    #[error("storage error: the snapshot cannot be restored: {problem}")]
    UnreadableSnapshot {
        /// Why the state machine refused it.
        problem: String,
    },
    /// The node's term and vote are gone (the file is missing, or older than
    /// the log), while the directory shows it had them.
    #[error(
        "storage error: {} {found}, but {evidence}: this node's term and vote are lost, and starting without them \
         could let it vote twice in one term; refusing to start (put the original file back, or see \
         docs/storage.md, \"A node that lost its data\")",
        .path.display()
    )]
    LostHardState {
        /// The `hard_state` file.
        path: PathBuf,
        /// What is wrong with it ("is missing", or the term it holds).
        found: String,
        /// What shows the node had them: an entry or snapshot of a higher
        /// term, or `IDENTITY`'s record.
        evidence: String,
    },
    /// The log was compacted past index 1, but there is no snapshot.
    #[error(
        "storage error: {} is missing, but the log starts at index {first_index} in {}: the entries before it are \
         gone (with the snapshot, or with the first log segments); refusing to start (put the lost files back, or see \
         docs/storage.md, \"A node that lost its data\")",
        .path.display(),
        .segment.display()
    )]
    MissingSnapshot {
        /// Where the snapshot should be.
        path: PathBuf,
        /// The first index the log holds.
        first_index: LogIndex,
        /// The first segment on disk.
        segment: PathBuf,
    },
    /// The log ends before what `hard_state` records as synced: records or
    /// segments that were durable are gone (a lost file, a copy cut short).
    #[error(
        "storage error: the log in {} lost synced records: {what}; refusing to start (put the lost files back, or \
         see docs/storage.md, \"A node that lost its data\")",
        .directory.display()
    )]
    LogCutShort {
        /// The log directory.
        directory: PathBuf,
        /// What `hard_state` records as durable, and what the log holds instead.
        what: String,
    },
    /// A full disk, injected by `FaultInjectingStorage` for process tests.
    #[error(
        "storage error: cannot {operation}: No space left on device (os error 28; injected while {} exists)",
        .flag.display()
    )]
    InjectedFull {
        /// What was being done, as a verb phrase.
        operation: &'static str,
        /// The file whose existence injects the fault.
        flag: PathBuf,
    },
}

impl StorageError {
    /// The text without the "storage error: " prefix, for replies and
    /// reports that name the component themselves.
    pub fn detail(&self) -> String {
        let text = self.to_string();
        text.strip_prefix(PREFIX).map(str::to_string).unwrap_or(text)
    }

    /// The data directory's content is damaged or incomplete: the node must
    /// not start on it, and only an operator can say what to do. The node
    /// exits with `DATA_EXIT_CODE` for these (docs/storage.md).
    pub fn is_damaged_data(&self) -> bool {
        matches!(
            self,
            StorageError::CorruptLog { .. }
                | StorageError::CorruptFile { .. }
                | StorageError::MissingSegment { .. }
                | StorageError::LogAfterSnapshot { .. }
                | StorageError::LostHardState { .. }
                | StorageError::MissingSnapshot { .. }
                | StorageError::LogCutShort { .. }
        )
    }

    /// How the operating system call failed, for the failures that are one.
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            StorageError::Io { source, .. } => Some(source.kind()),
            StorageError::InjectedFull { .. } => Some(io::ErrorKind::StorageFull),
            _ => None,
        }
    }
}

pub fn io_error(operation: &'static str, path: &std::path::Path, source: io::Error) -> StorageError {
    StorageError::Io { operation, path: path.to_path_buf(), source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_and_a_failing_disk_differ_in_kind_not_text() {
        let path = std::path::Path::new("/data/00000000000000000001.wal");
        let full = io_error("sync", path, io::Error::from_raw_os_error(28));
        let failing = io_error("sync", path, io::Error::from_raw_os_error(5));
        assert_eq!(full.io_kind(), Some(io::ErrorKind::StorageFull));
        assert_ne!(failing.io_kind(), full.io_kind());
        assert!(full.to_string().starts_with("storage error: cannot sync /data/00000000000000000001.wal: "), "{full}");
        assert_eq!(format!("storage error: {}", full.detail()), full.to_string());
    }

    #[test]
    fn damage_names_file_offset_and_what_was_expected() {
        let error = StorageError::CorruptLog {
            path: "/data/1.wal".into(),
            offset: 20,
            what: "batch checksum mismatch over its 54 bytes, yet an intact batch follows at offset 90".into(),
        };
        assert_eq!(
            error.detail(),
            "corrupt log data in /data/1.wal at offset 20: batch checksum mismatch over its 54 bytes, yet an intact \
             batch follows at offset 90; refusing to start"
        );
        assert_eq!(error.io_kind(), None);
    }
}
