//! A write-ahead log on disk: the durable `Storage`.
//!
//! Layout of a data directory:
//! - `LOCK`: held with an exclusive file lock while a process uses the directory.
//! - `FORMAT`: `raftmq write-ahead log format 2`. A directory without it was
//!   written by format 1 (records without batch frames); `open` reads it and
//!   rewrites its segments in format 2 (each to a temp file, fsync, rename),
//!   then writes `FORMAT`. A higher number is refused.
//! - `hard_state`: term and vote, replaced atomically (temp file, fsync,
//!   rename, fsync of the directory). Small and rarely written, so it never
//!   waits behind a long log write. It also records the log's durable
//!   high-water mark (hard_state_file), rewritten on each segment rotation.
//! - `IDENTITY`: which cluster and node the directory belongs to; a node of
//!   another cluster or index is refused (etcd's cluster token). Once
//!   `hard_state` exists it says so, and a directory that lost `hard_state`
//!   is refused (identity_file, lost_state).
//! - `snapshot`: the latest snapshot, replaced atomically (see snapshot_file).
//! - `<first index, 20 digits>.wal`: log segments. A segment starts with a
//!   header (`"RMQW" | u8 version 2 | 3 zero bytes | u64 first index | u64
//!   salt | u32 crc32c`), written and synced before the directory names the
//!   file. Then one batch frame per write: `"RMQB" | u32 payload length | u32
//!   crc32c(payload) | u32 crc32c of the salt and the header's first 12
//!   bytes`, whose payload is records `u32 payload length | u32
//!   crc32c(payload) | payload`, the payload being `u64 term | u64 index |
//!   data`, all little-endian. The random salt keeps client data that holds
//!   a copy of a batch frame from passing for a batch of this segment.
//!
//! Each `sync` writes at most one batch, then fdatasyncs (group commit), so
//! a batch is exactly what one durable write covers. A batch may open with
//! an index at or below the log's last: it replaces the suffix from there (a
//! conflicting append), so the file is only ever appended to.
//!
//! Crash consistency (the model of ALICE, Pillai et al., OSDI 2014: "All File
//! Systems Are Not Created Equal"): after a power loss, the bytes written
//! since the last completed fdatasync may persist as any subset of their
//! sectors, and a grown file may show zeros; nothing synced changes. So on
//! open, for the last segment only:
//! - a damaged batch with no intact batch after it is the torn last write:
//!   the file is cut there, and the intact prefix of its records (each has
//!   its own checksum) is kept and written again as a batch of its own;
//! - a damaged batch followed by an intact one is damage to synced data (the
//!   later write was made only after this one's fdatasync): `open` fails,
//!   naming the file, offset and what was expected;
//! - a last segment whose header is damaged and that holds no intact batch
//!   was being created when the power went: it is removed.
//!
//! Every earlier segment was synced whole before the next one was created,
//! so any damage in it fails `open`; so does a missing segment (a gap in the
//! indexes the file names promise). Segments that lie wholly below the
//! snapshot are removed, whatever pattern of them a crash during compaction
//! left. The residual ambiguity: damage to the last batch of the last
//! segment after it was synced looks exactly like a torn write and is cut,
//! unless the durable mark in `hard_state` covers that batch; then, as for
//! a log that ends before the mark (a lost segment, a copy cut at a record
//! boundary), `open` refuses (docs/storage.md).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use log::{info, warn};

use super::hard_state_file::{read_hard_state, write_hard_state, LogMark, HARD_STATE_BYTES};
use super::identity_file::{check_identity, claim_state};
use super::lost_state::{check_log_reaches_mark, wiped};
use super::snapshot_file::{
    adopt_snapshot, io_error, read_snapshot, remove_temporary_snapshots, sync_directory, write_snapshot, SNAPSHOT_FILE,
};
pub use super::wal_format::RECORD_OVERHEAD_BYTES;
use super::wal_format::{
    begin_batch, encode_record, encode_segment_header, read_format_version, seal_batch, starts_like_a_segment_header,
    write_format_version, BATCH_HEADER_BYTES, FORMAT_VERSION, SEGMENT_HEADER_BYTES,
};
use super::wal_recovery::{read_segment, read_segment_format_1, Damage, Position, ReadLog, SegmentEnd};
use super::{chain_after_snapshot, RecoveredState, Storage, StorageError};
use crate::deferred_drop::DeferredDrop;
use crate::raft::{Entry, HardState, LogIndex, Snapshot};

const SPACE_PROBE_BYTES: usize = 1 << 20;
/// A segment being rewritten in the current format, before its rename.
const TEMPORARY_SEGMENT_SUFFIX: &str = ".wal.tmp";

/// How a [`WalStorage`] writes its directory.
#[derive(Debug, Clone)]
pub struct WalOptions {
    /// A segment that reaches this size is closed and a new one started.
    /// Compaction removes whole segments, so this bounds what it leaves.
    pub segment_bytes: u64,
    /// Written to `IDENTITY` on first use and required to match afterwards.
    pub identity: Option<String>,
    /// fdatasync on every `sync`. Off only for benchmarks that measure what
    /// durability costs (etcd's --unsafe-no-fsync): acknowledged writes can
    /// then be lost when the whole cluster loses power, and a torn write
    /// followed by later unsynced ones may make `open` refuse.
    pub fsync: bool,
}

impl Default for WalOptions {
    fn default() -> WalOptions {
        WalOptions { segment_bytes: 8 << 20, identity: None, fsync: true }
    }
}

struct Segment {
    first_index: LogIndex,
    path: PathBuf,
    file: File,
    /// Bytes written to the file (buffered bytes not included).
    length: u64,
    /// Written by format 1 (no header, no batches): rewritten by `open`.
    format_1: bool,
    /// Seeds the checksum of every batch header (see wal_format).
    salt: u64,
}

/// The write-ahead log on disk: the durable [`Storage`] a node uses. The
/// module docs give the directory's layout and what `open` checks.
pub struct WalStorage {
    directory: PathBuf,
    options: WalOptions,
    _lock: File,
    hard_state: HardState,
    /// The log's durable high-water mark as `hard_state` stores it.
    mark: LogMark,
    /// The log (or snapshot) holds every index up to this one durably, as
    /// far as this process knows: what the next mark may claim.
    durable_index: LogIndex,
    /// `IDENTITY` says this directory holds the node's term and vote.
    state_claimed: bool,
    snapshot: Option<Snapshot>,
    snapshot_bytes: u64,
    segments: Vec<Segment>,
    /// Segments removed from the front of `segments` by compaction.
    segment_base: usize,
    /// Index of the entry `positions[0]` locates (the next index when empty).
    log_start: LogIndex,
    positions: Vec<Position>,
    /// The batch not yet written to the active (last) segment: a header to
    /// be sealed, then records. Empty when there is none.
    pending: Vec<u8>,
    /// What the last successful sync covered: segments known then (counted
    /// like `Position::segment`) and the active one's length.
    synced_segment_count: usize,
    synced_length: u64,
    /// The active segment holds records past the log's end (a conflicting
    /// append reached into written bytes): until a batch that replaces them
    /// is written, it must not be closed, or they would be read back before
    /// the next segment's first index.
    replaced_records: bool,
    /// Segments wholly below the snapshot, found by the last read of the
    /// log and not yet removed.
    below_snapshot: Vec<PathBuf>,
    /// Entries read by `open`, handed out by the first `load`.
    recovered: Option<Vec<Entry>>,
    /// Removed segments, replaced snapshot files and images are let go there.
    releaser: DeferredDrop,
}

/// The file whose exclusive lock a process holds while it uses the directory.
pub(super) const LOCK_FILE: &str = "LOCK";

/// Take the directory's lock (released when the returned file is dropped).
pub(super) fn lock_directory(directory: &Path) -> Result<File, StorageError> {
    let lock_path = directory.join(LOCK_FILE);
    let lock = File::create(&lock_path).map_err(|e| io_error("create", &lock_path, e))?;
    lock.try_lock().map_err(|_| StorageError::LockHeld { directory: directory.to_path_buf() })?;
    Ok(lock)
}

impl WalStorage {
    /// Open (creating if needed) the data directory, lock it, and recover.
    pub fn open(directory: &Path, options: WalOptions) -> Result<WalStorage, StorageError> {
        assert!(options.segment_bytes > 0, "segments need room for a record");
        fs::create_dir_all(directory).map_err(|e| io_error("create data directory", directory, e))?;
        let lock = lock_directory(directory)?;
        let state_claimed = match &options.identity {
            Some(identity) => check_identity(directory, identity)?,
            None => false,
        };
        let format = read_format_version(directory)?;
        let snapshot = read_snapshot(directory)?;
        let stored = read_hard_state(directory)?;
        if stored.is_none() && state_claimed {
            return Err(wiped(directory));
        }
        let (hard_state, mark) = stored.unwrap_or_default();
        let mut storage = WalStorage {
            directory: directory.to_path_buf(),
            options,
            _lock: lock,
            hard_state,
            mark,
            durable_index: mark.durable_index,
            state_claimed,
            snapshot_bytes: snapshot.as_ref().map_or(0, |(_, bytes)| *bytes),
            snapshot: snapshot.map(|(snapshot, _)| snapshot),
            segments: Vec::new(),
            segment_base: 0,
            log_start: 1,
            positions: Vec::new(),
            pending: Vec::new(),
            synced_segment_count: 0,
            synced_length: 0,
            replaced_records: false,
            below_snapshot: Vec::new(),
            recovered: None,
            // If the thread cannot start, files close and images drop here.
            releaser: DeferredDrop::start("storage-release").unwrap_or_else(|_| DeferredDrop::inline()),
        };
        let mut entries = storage.recover_segments(format.is_none())?;
        storage.check_mark()?;
        // Checked: from here on, open may change the directory.
        storage.remove_segments_below_snapshot()?;
        remove_temporary_snapshots(directory)?;
        remove_temporary_segments(directory)?;
        if format.is_none() {
            storage.upgrade_format(&entries)?;
            entries = storage.recover_segments(false)?;
        }
        let (entries, must_reset) = chain_after_snapshot(storage.snapshot.as_ref(), entries);
        let snapshot_index = storage.snapshot_index();
        if must_reset || storage.segments.is_empty() || storage.last_index() < snapshot_index {
            if must_reset {
                warn!(
                    "{}: the log does not continue the snapshot at index {snapshot_index} (a snapshot install was \
                     interrupted); its entries after the snapshot cannot be committed and are dropped",
                    directory.display()
                );
            }
            storage.reset_log(snapshot_index)?;
        }
        if !storage.pending.is_empty() {
            storage.sync()?; // the intact prefix of a torn batch, framed again
        }
        storage.make_recovered_log_durable()?;
        if stored.is_some() {
            storage.claim_state()?;
        }
        storage.recovered = Some(entries);
        Ok(storage)
    }

    fn snapshot_index(&self) -> LogIndex {
        self.snapshot.as_ref().map_or(0, |snapshot| snapshot.last_index)
    }

    /// The log read back must reach what the stored mark records as synced.
    fn check_mark(&self) -> Result<(), StorageError> {
        let covered_index = self.last_index().max(self.snapshot_index());
        let last_segment = self.segments.last().map(|segment| (segment.first_index, segment.path.as_path()));
        check_log_reaches_mark(&self.directory, self.mark, covered_index, last_segment)
    }

    /// What was read may sit in the page cache only (a process killed before
    /// its sync): make it durable, so that the next mark may claim it. Every
    /// segment but the last was synced whole when the next one was created.
    fn make_recovered_log_durable(&mut self) -> Result<(), StorageError> {
        let segment = self.active();
        segment.file.sync_data().map_err(|e| io_error("sync", &segment.path, e))?;
        sync_directory(&self.directory)?;
        self.mark_synced();
        self.durable_index = self.last_index().max(self.snapshot_index());
        Ok(())
    }

    /// The mark the log supports now: what this process knows durable, and
    /// the last segment (created durably: header, then directory, synced).
    fn current_mark(&self) -> LogMark {
        let last_segment = self.segments.last().map_or(0, |segment| segment.first_index);
        LogMark { durable_index: self.durable_index, last_segment }
    }

    /// Store the term and vote with the current mark.
    fn write_hard_state(&mut self, hard_state: HardState) -> Result<(), StorageError> {
        let mark = self.current_mark();
        write_hard_state(&self.directory, hard_state, mark)?;
        self.hard_state = hard_state;
        self.mark = mark;
        self.claim_state()
    }

    /// Before the log shrinks below the stored mark (a conflicting append,
    /// a reset after a snapshot install), lower the mark durably.
    fn lower_mark(&mut self, durable_index: LogIndex, last_segment: LogIndex) -> Result<(), StorageError> {
        self.durable_index = self.durable_index.min(durable_index);
        let lowered = self.mark.lowered_to(durable_index, last_segment);
        if lowered != self.mark {
            write_hard_state(&self.directory, self.hard_state, lowered)?;
            self.mark = lowered;
        }
        Ok(())
    }

    /// Once `hard_state` is durable, `IDENTITY` says the directory holds it.
    fn claim_state(&mut self) -> Result<(), StorageError> {
        if let (Some(identity), false) = (&self.options.identity, self.state_claimed) {
            claim_state(&self.directory, identity)?;
            self.state_claimed = true;
        }
        Ok(())
    }

    fn last_index(&self) -> LogIndex {
        self.log_start + self.positions.len() as LogIndex - 1
    }

    fn position(&self, index: LogIndex) -> Position {
        self.positions[(index - self.log_start) as usize]
    }

    fn mark_synced(&mut self) {
        self.synced_segment_count = self.segment_base + self.segments.len();
        self.synced_length = self.segments.last().map_or(0, |segment| segment.length);
    }

    fn active(&mut self) -> &mut Segment {
        self.segments.last_mut().expect("a WAL always has an active segment")
    }

    /// Read every segment in index order, cutting a torn last write off the
    /// last. `format_1_allowed`: the directory has no FORMAT file yet, so a
    /// segment without a header was written by format 1.
    fn recover_segments(&mut self, format_1_allowed: bool) -> Result<Vec<Entry>, StorageError> {
        self.segments.clear();
        self.pending.clear();
        let mut paths = list_segments(&self.directory)?;
        self.skip_segments_below_snapshot(&mut paths)?;
        let mut log = ReadLog::starting_at(paths.first().map_or(1, |(first_index, _)| *first_index));
        let count = paths.len();
        for (number, (first_index, path)) in paths.into_iter().enumerate() {
            if first_index != log.next_index() {
                let previous_last_index = log.next_index() - 1;
                return Err(StorageError::MissingSegment { path, first_index, previous_last_index });
            }
            let is_last = number + 1 == count;
            let bytes = fs::read(&path).map_err(|e| io_error("read", &path, e))?;
            let segment = self.segment_base + self.segments.len();
            let format_1 = format_1_allowed && !starts_like_a_segment_header(&bytes);
            let read = if format_1 {
                read_segment_format_1(&bytes, segment, is_last, &mut log).map(|end| (end, 0))
            } else {
                read_segment(&bytes, first_index, segment, is_last, &mut log)
            };
            let (end, salt) = read.map_err(|damage| corrupt(&path, damage))?;
            let length = match end {
                SegmentEnd::Whole => bytes.len() as u64,
                SegmentEnd::Torn { offset, kept, problem } => {
                    self.check_cut_keeps_mark(log.next_index() - 1, &path, offset, &problem)?;
                    self.cut_torn_write(&path, offset, bytes.len() as u64, &kept, &problem)?;
                    offset
                }
                SegmentEnd::NeverCreated { problem } => {
                    if self.mark.last_segment >= first_index {
                        let what = format!(
                            "the header of {} is damaged ({problem}), but hard_state records that this segment was \
                             created",
                            path.display()
                        );
                        return Err(StorageError::LogCutShort { directory: self.directory.clone(), what });
                    }
                    warn!("{}: removed a segment whose creation a crash interrupted ({problem})", path.display());
                    fs::remove_file(&path).map_err(|e| io_error("remove", &path, e))?;
                    sync_directory(&self.directory)?;
                    break;
                }
            };
            let file = OpenOptions::new().append(true).open(&path).map_err(|e| io_error("open", &path, e))?;
            self.segments.push(Segment { first_index, path, file, length, format_1, salt });
        }
        self.log_start = log.first_index;
        self.positions = log.positions;
        Ok(log.entries)
    }

    /// A damaged last write is a tear only if it was never synced: the log
    /// without it must still reach the stored mark. (Without a mark that
    /// covers it, damage to a synced last batch looks like a tear: see the
    /// module docs.)
    fn check_cut_keeps_mark(
        &self,
        last_kept_index: LogIndex,
        path: &Path,
        offset: u64,
        problem: &str,
    ) -> Result<(), StorageError> {
        let durable_index = self.mark.durable_index;
        if last_kept_index.max(self.snapshot_index()) >= durable_index {
            return Ok(());
        }
        let what = format!(
            "the last write in {} at offset {offset} is damaged ({problem}), but hard_state records that the log was \
             synced through index {durable_index}: synced data was damaged",
            path.display()
        );
        Err(StorageError::LogCutShort { directory: self.directory.clone(), what })
    }

    /// Cut the torn last write off `path` at `offset`, durably, and queue
    /// the records kept from it as the batch the next sync writes.
    fn cut_torn_write(
        &mut self,
        path: &Path,
        offset: u64,
        file_length: u64,
        kept: &[Entry],
        problem: &str,
    ) -> Result<(), StorageError> {
        warn!(
            "{}: cut a torn write of {} bytes at offset {offset} ({problem}); {} intact records of it kept",
            path.display(),
            file_length - offset,
            kept.len()
        );
        let file = OpenOptions::new().write(true).open(path).map_err(|e| io_error("open", path, e))?;
        file.set_len(offset).map_err(|e| io_error("truncate", path, e))?;
        file.sync_all().map_err(|e| io_error("sync", path, e))?;
        if !kept.is_empty() {
            begin_batch(&mut self.pending);
            for entry in kept {
                encode_record(entry, &mut self.pending);
            }
        }
        Ok(())
    }

    /// Set aside the segments that lie wholly below the snapshot: every one
    /// before the last that starts at or below the snapshot's next index.
    /// A crash during compaction may leave any pattern of them. They are
    /// removed once the log has passed its checks (a refused start changes
    /// nothing).
    fn skip_segments_below_snapshot(&mut self, paths: &mut Vec<(LogIndex, PathBuf)>) -> Result<(), StorageError> {
        let next_after_snapshot = self.snapshot.as_ref().map_or(1, |snapshot| snapshot.last_index + 1);
        let Some(base) = paths.iter().rposition(|(first_index, _)| *first_index <= next_after_snapshot) else {
            if let (Some((first_index, segment)), None) = (paths.first(), &self.snapshot) {
                let path = self.directory.join(SNAPSHOT_FILE);
                return Err(StorageError::MissingSnapshot {
                    path,
                    first_index: *first_index,
                    segment: segment.clone(),
                });
            }
            if let Some((first_index, path)) = paths.first() {
                return Err(StorageError::LogAfterSnapshot {
                    path: path.clone(),
                    first_index: *first_index,
                    snapshot_index: next_after_snapshot - 1,
                });
            }
            return Ok(());
        };
        self.below_snapshot = paths.drain(..base).map(|(_, path)| path).collect();
        Ok(())
    }

    fn remove_segments_below_snapshot(&mut self) -> Result<(), StorageError> {
        if self.below_snapshot.is_empty() {
            return Ok(());
        }
        let count = self.below_snapshot.len();
        for path in std::mem::take(&mut self.below_snapshot) {
            fs::remove_file(&path).map_err(|e| io_error("remove", &path, e))?;
        }
        sync_directory(&self.directory)?;
        warn!("{}: removed {count} segments below the snapshot that a compaction left", self.directory.display());
        Ok(())
    }

    /// Rewrite every format 1 segment in the current format, each to a temp
    /// file, synced and renamed over the old one; then write `FORMAT`. A
    /// crash part way leaves each segment whole in one format or the other.
    fn upgrade_format(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        let mut rewritten = 0;
        for (number, segment) in self.segments.iter().enumerate() {
            if !segment.format_1 {
                continue;
            }
            let end = self.segments.get(number + 1).map_or(self.last_index() + 1, |next| next.first_index);
            let records = &entries[(segment.first_index - self.log_start) as usize..(end - self.log_start) as usize];
            let salt = rand::random();
            let mut bytes = encode_segment_header(segment.first_index, salt);
            if !records.is_empty() {
                let batch_start = bytes.len();
                begin_batch(&mut bytes);
                for entry in records {
                    encode_record(entry, &mut bytes);
                }
                seal_batch(&mut bytes[batch_start..], salt);
            }
            let temporary =
                PathBuf::from(format!("{}{TEMPORARY_SEGMENT_SUFFIX}", segment.path.with_extension("").display()));
            let mut file = File::create(&temporary).map_err(|e| io_error("create", &temporary, e))?;
            file.write_all(&bytes).and_then(|()| file.sync_all()).map_err(|e| io_error("write", &temporary, e))?;
            fs::rename(&temporary, &segment.path).map_err(|e| io_error("replace", &segment.path, e))?;
            rewritten += 1;
        }
        sync_directory(&self.directory)?;
        write_format_version(&self.directory)?;
        if rewritten > 0 {
            info!("{}: rewrote {rewritten} log segments in format {FORMAT_VERSION}", self.directory.display());
        }
        Ok(())
    }

    /// Create the next segment: its header is durable before its name is.
    fn start_segment(&mut self, first_index: LogIndex) -> Result<(), StorageError> {
        let path = self.directory.join(format!("{first_index:020}.wal"));
        let mut file =
            OpenOptions::new().create_new(true).append(true).open(&path).map_err(|e| io_error("create", &path, e))?;
        let salt = rand::random();
        file.write_all(&encode_segment_header(first_index, salt))
            .and_then(|()| file.sync_data())
            .map_err(|e| io_error("write", &path, e))?;
        sync_directory(&self.directory)?;
        let length = SEGMENT_HEADER_BYTES as u64;
        self.segments.push(Segment { first_index, path, file, length, format_1: false, salt });
        Ok(())
    }

    /// Write the pending batch to the active segment, in one write.
    fn write_pending(&mut self) -> Result<(), StorageError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut pending = std::mem::take(&mut self.pending);
        let segment = self.active();
        seal_batch(&mut pending, segment.salt);
        segment.file.write_all(&pending).map_err(|e| io_error("write", &segment.path, e))?;
        segment.length += pending.len() as u64;
        self.pending = pending;
        self.pending.clear();
        self.replaced_records = false;
        Ok(())
    }

    /// Forget the entry at `index` and all after it. The bytes stay in the
    /// active segment until compaction: the next batch, opening at `index`,
    /// replaces them when the log is read back.
    fn truncate_from(&mut self, index: LogIndex) -> Result<(), StorageError> {
        assert!(index >= self.log_start && index <= self.last_index(), "truncating outside the log");
        let position = self.position(index);
        let kept_segment = &self.segments[position.segment - self.segment_base];
        self.lower_mark(index - 1, kept_segment.first_index)?;
        let active_number = self.segment_base + self.segments.len() - 1;
        let active_length = self.segments.last().expect("active segment").length;
        if position.segment == active_number && position.offset >= active_length {
            let kept = (position.offset - active_length) as usize;
            self.pending.truncate(if kept > BATCH_HEADER_BYTES { kept } else { 0 });
        } else {
            self.pending.clear();
            self.remove_segments_after(position.segment - self.segment_base + 1)?;
            self.replaced_records = true;
        }
        self.positions.truncate((index - self.log_start) as usize);
        Ok(())
    }

    /// Remove segments beyond the first `keep`, newest first, each removal
    /// durable before the next, so that a crash leaves the log contiguous.
    fn remove_segments_after(&mut self, keep: usize) -> Result<(), StorageError> {
        while self.segments.len() > keep {
            let segment = self.segments.pop().expect("more than `keep` segments");
            self.remove_segment(segment)?;
            sync_directory(&self.directory)?;
        }
        // The new active segment was synced whole when the next one started.
        let active = self.segment_base + self.segments.len();
        if self.synced_segment_count > active {
            self.synced_segment_count = active;
            self.synced_length = self.segments.last().map_or(0, |segment| segment.length);
        }
        Ok(())
    }

    /// Close a full active segment (synced) and start the next.
    fn rotate_if_full(&mut self, next_index: LogIndex) -> Result<(), StorageError> {
        let segment = self.segments.last().expect("active segment");
        let full = segment.length + self.pending.len() as u64 >= self.options.segment_bytes;
        let replacing = self.replaced_records && self.pending.is_empty();
        if full && segment.first_index < next_index && !replacing {
            self.write_pending()?;
            let segment = self.active();
            segment.file.sync_data().map_err(|e| io_error("sync", &segment.path, e))?;
            self.durable_index = next_index - 1;
            self.start_segment(next_index)?;
            self.mark_synced();
            // Once per segment, not per batch: the mark now claims the
            // closed segment's records and the new segment's existence.
            self.write_hard_state(self.hard_state)?;
        }
        Ok(())
    }

    /// Remove `segment`'s file; its blocks are freed when the file is
    /// closed, off this thread (see `src/deferred_drop.rs`).
    fn remove_segment(&self, segment: Segment) -> Result<(), StorageError> {
        fs::remove_file(&segment.path).map_err(|e| io_error("remove", &segment.path, e))?;
        self.releaser.drop_later(segment.file);
        Ok(())
    }

    /// The snapshot file about to be replaced, held open so that its blocks
    /// are freed by `releaser`, not by the rename (see `src/deferred_drop.rs`).
    fn open_snapshot_file(&self) -> Option<File> {
        File::open(self.directory.join(SNAPSHOT_FILE)).ok()
    }

    /// Take `snapshot` as the stored one; the replaced file and image are
    /// let go off this thread.
    fn replace_snapshot(&mut self, snapshot: &Snapshot, replaced_file: Option<File>) {
        let replaced_image = self.snapshot.replace(snapshot.clone());
        self.releaser.drop_later((replaced_file, replaced_image));
    }

    /// Remove `path`, a file this storage no longer needs, and let its
    /// blocks go off this thread.
    fn remove_file(&self, path: &Path) -> Result<(), StorageError> {
        let file = File::open(path).map_err(|e| io_error("open", path, e))?;
        fs::remove_file(path).map_err(|e| io_error("remove", path, e))?;
        self.releaser.drop_later(file);
        Ok(())
    }
}

impl Storage for WalStorage {
    fn load(&mut self) -> Result<RecoveredState, StorageError> {
        let entries = match self.recovered.take() {
            Some(entries) => entries,
            None => {
                self.sync()?;
                let entries = self.recover_segments(false)?;
                self.remove_segments_below_snapshot()?;
                chain_after_snapshot(self.snapshot.as_ref(), entries).0
            }
        };
        Ok(RecoveredState { hard_state: self.hard_state, snapshot: self.snapshot.clone(), entries })
    }

    fn save_hard_state(&mut self, hard_state: HardState) -> Result<(), StorageError> {
        assert!(hard_state.current_term >= self.hard_state.current_term, "stored term must not go back");
        self.write_hard_state(hard_state)
    }

    fn append_entries(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        let Some(first) = entries.first() else { return Ok(()) };
        if first.index > self.last_index() + 1 || first.index < self.log_start {
            return Err(StorageError::AppendOutsideLog {
                index: first.index,
                first_index: self.log_start,
                last_index: self.last_index(),
            });
        }
        if first.index <= self.last_index() {
            self.truncate_from(first.index)?;
        }
        for entry in entries {
            assert_eq!(entry.index, self.last_index() + 1, "entries must be contiguous");
            self.rotate_if_full(entry.index)?;
            if self.pending.is_empty() {
                begin_batch(&mut self.pending);
            }
            let active = self.segments.last().expect("active segment");
            let offset = active.length + self.pending.len() as u64;
            let segment = self.segment_base + self.segments.len() - 1;
            self.positions.push(Position { segment, offset });
            encode_record(entry, &mut self.pending);
        }
        Ok(())
    }

    fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        let replaced = self.open_snapshot_file();
        self.snapshot_bytes = write_snapshot(&self.directory, snapshot)?;
        self.replace_snapshot(snapshot, replaced);
        Ok(())
    }

    fn adopt_snapshot(&mut self, snapshot: &Snapshot, temporary: &Path) -> Result<(), StorageError> {
        let stored_index = self.snapshot.as_ref().map_or(0, |stored| stored.last_index);
        if snapshot.last_index <= stored_index {
            return self.remove_file(temporary);
        }
        let replaced = self.open_snapshot_file();
        self.snapshot_bytes = adopt_snapshot(&self.directory, temporary)?;
        self.replace_snapshot(snapshot, replaced);
        Ok(())
    }

    /// Remove whole segments whose entries all lie at or before
    /// `through_index`, then sync the directory: compaction is durable.
    fn compact(&mut self, through_index: LogIndex) -> Result<(), StorageError> {
        let mut removed = false;
        while self.segments.len() >= 2 && self.segments[1].first_index <= through_index + 1 {
            let segment = self.segments.remove(0);
            self.segment_base += 1;
            self.remove_segment(segment)?;
            let dropped = (self.segments[0].first_index - self.log_start) as usize;
            self.positions.drain(..dropped);
            self.log_start = self.segments[0].first_index;
            removed = true;
        }
        if removed {
            sync_directory(&self.directory)?;
        }
        Ok(())
    }

    /// Remove every segment, newest first, so a crash part way leaves a
    /// contiguous older prefix that `open` recognises as not continuing the
    /// snapshot; then start an empty segment after `index`.
    fn reset_log(&mut self, index: LogIndex) -> Result<(), StorageError> {
        self.pending.clear();
        self.replaced_records = false;
        // The snapshot, durable before this, covers `index`; no segment
        // may be claimed while they are all removed.
        self.lower_mark(index, 0)?;
        self.durable_index = index;
        self.remove_segments_after(0)?;
        self.positions.clear();
        self.log_start = index + 1;
        self.start_segment(index + 1)?;
        self.mark_synced();
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        self.write_pending()?;
        let fsync = self.options.fsync;
        let segment = self.active();
        if fsync {
            segment.file.sync_data().map_err(|e| io_error("sync", &segment.path, e))?;
        }
        self.mark_synced();
        if fsync {
            self.durable_index = self.last_index().max(self.snapshot_index());
        }
        Ok(())
    }

    /// Cut the log back to what the last successful sync covered: a failed
    /// fsync may have dropped dirty pages the page cache still shows us.
    fn discard_unsynced(&mut self) -> Result<(), StorageError> {
        self.pending.clear();
        let keep = self.synced_segment_count.saturating_sub(self.segment_base).max(1);
        while self.segments.len() > keep {
            let segment = self.segments.pop().expect("more than one segment");
            self.remove_segment(segment)?;
        }
        let synced_length = self.synced_length;
        let segment = self.active();
        // Always cut: a write that failed part way left bytes on disk that
        // `length` never counted.
        segment.file.set_len(synced_length).map_err(|e| io_error("truncate", &segment.path, e))?;
        segment.length = synced_length;
        segment.file.sync_all().map_err(|e| io_error("sync", &segment.path, e))?;
        sync_directory(&self.directory)?;
        let _ = fs::remove_file(self.directory.join("hard_state.tmp"));
        let _ = fs::remove_file(self.directory.join("snapshot.tmp"));
        Ok(())
    }

    /// Write and sync 1 MiB beside the log, then remove it: room for a
    /// good many more records before the disk fills again.
    fn probe_space(&mut self) -> Result<(), StorageError> {
        let path = self.directory.join("space-probe.tmp");
        let written = File::create(&path).and_then(|mut file| {
            file.write_all(&vec![0; SPACE_PROBE_BYTES])?;
            file.sync_all()
        });
        let _ = fs::remove_file(&path);
        written.map_err(|e| io_error("write", &path, e))
    }

    fn disk_bytes(&self) -> u64 {
        let log_bytes: u64 = self.segments.iter().map(|segment| segment.length).sum();
        log_bytes + self.snapshot_bytes + HARD_STATE_BYTES as u64
    }
}

fn corrupt(path: &Path, damage: Damage) -> StorageError {
    StorageError::CorruptLog { path: path.to_path_buf(), offset: damage.offset, what: damage.what }
}

/// The log segments in `directory`, by first index.
fn list_segments(directory: &Path) -> Result<Vec<(LogIndex, PathBuf)>, StorageError> {
    let mut paths = Vec::new();
    let listing = fs::read_dir(directory).map_err(|e| io_error("list", directory, e))?;
    for item in listing {
        let path = item.map_err(|e| io_error("list", directory, e))?.path();
        if path.extension().is_some_and(|extension| extension == "wal") {
            paths.push((segment_first_index(&path)?, path));
        }
    }
    paths.sort();
    Ok(paths)
}

/// Remove segments a crash left half rewritten by `upgrade_format`.
fn remove_temporary_segments(directory: &Path) -> Result<(), StorageError> {
    let listing = fs::read_dir(directory).map_err(|e| io_error("list", directory, e))?;
    for item in listing {
        let path = item.map_err(|e| io_error("list", directory, e))?.path();
        if path.to_str().is_some_and(|name| name.ends_with(TEMPORARY_SEGMENT_SUFFIX)) {
            fs::remove_file(&path).map_err(|e| io_error("remove", &path, e))?;
        }
    }
    Ok(())
}

fn segment_first_index(path: &Path) -> Result<LogIndex, StorageError> {
    path.file_stem()
        .and_then(|stem| stem.to_str())
        .and_then(|stem| stem.parse().ok())
        .filter(|&index| index >= 1)
        .ok_or_else(|| StorageError::SegmentName { path: path.to_path_buf() })
}
