//! A write-ahead log on disk: the durable `Storage`.
//!
//! Layout of a data directory:
//! - `LOCK`: held with an exclusive file lock while a process uses the directory.
//! - `hard_state`: term and vote, replaced atomically (temp file, fsync,
//!   rename, fsync of the directory). Small and rarely written, so it never
//!   waits behind a long log write.
//! - `IDENTITY`: which cluster and node the directory belongs to; a node of
//!   another cluster or index is refused (etcd's cluster token).
//! - `snapshot`: the latest snapshot, replaced atomically (see snapshot_file).
//! - `<first index, 20 digits>.wal`: log segments. Each record is
//!   `u32 payload length | u32 crc32c(payload) | payload`, where the payload
//!   is `u64 term | u64 index | data`, all little-endian.
//!
//! Writes are buffered and reach the disk in one write plus one fdatasync
//! per `sync` (group commit). On open:
//! - a torn last record is cut off, and the cut is logged: a record
//!   incomplete at the end of the file, a complete last record with a bad
//!   checksum, or a tail of zero bytes, provided no intact record follows
//!   the tear;
//! - any other bad record makes `open` fail with the file and offset. A
//!   record that may be committed data is never dropped silently.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use log::warn;

use super::snapshot_file::{
    adopt_snapshot, io_error, read_snapshot, remove_temporary_snapshots, replace_file_atomically, sync_directory,
    write_snapshot,
};
use super::{chain_after_snapshot, RecoveredState, Storage, StorageError};
use crate::raft::{Entry, HardState, LogIndex, Snapshot};

const RECORD_HEADER_BYTES: usize = 8;
const PAYLOAD_HEADER_BYTES: usize = 16;
/// Bytes a log record adds to its entry's data.
pub const RECORD_OVERHEAD_BYTES: u64 = (RECORD_HEADER_BYTES + PAYLOAD_HEADER_BYTES) as u64;
const HARD_STATE_MAGIC: &[u8; 4] = b"RMQH";
const HARD_STATE_VERSION: u8 = 1;
const HARD_STATE_BYTES: usize = 4 + 1 + 8 + 1 + 4 + 4;
const SPACE_PROBE_BYTES: usize = 1 << 20;

#[derive(Debug, Clone)]
pub struct WalOptions {
    /// A segment that reaches this size is closed and a new one started.
    /// Compaction removes whole segments, so this bounds what it leaves.
    pub segment_bytes: u64,
    /// Written to `IDENTITY` on first use and required to match afterwards.
    pub identity: Option<String>,
    /// fdatasync on every `sync`. Off only for benchmarks that measure what
    /// durability costs (etcd's --unsafe-no-fsync): acknowledged writes can
    /// then be lost when the whole cluster loses power.
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
}

/// Where an entry's record starts. `segment` counts every segment this
/// process has known, so compaction need not renumber positions.
#[derive(Clone, Copy)]
struct Position {
    segment: usize,
    offset: u64,
}

pub struct WalStorage {
    directory: PathBuf,
    options: WalOptions,
    _lock: File,
    hard_state: HardState,
    snapshot: Option<Snapshot>,
    snapshot_bytes: u64,
    segments: Vec<Segment>,
    /// Segments removed from the front of `segments` by compaction.
    segment_base: usize,
    /// Index of the entry `positions[0]` locates (the next index when empty).
    log_start: LogIndex,
    positions: Vec<Position>,
    /// Encoded records not yet written to the active (last) segment.
    pending: Vec<u8>,
    /// What the last successful sync covered: segments known then (counted
    /// like `Position::segment`) and the active one's length.
    synced_segment_count: usize,
    synced_length: u64,
    /// Entries read by `open`, handed out by the first `load`.
    recovered: Option<Vec<Entry>>,
}

impl WalStorage {
    /// Open (creating if needed) the data directory, lock it, and recover.
    pub fn open(directory: &Path, options: WalOptions) -> Result<WalStorage, StorageError> {
        assert!(options.segment_bytes > 0, "segments need room for a record");
        fs::create_dir_all(directory).map_err(|e| io_error("create data directory", directory, e))?;
        let lock_path = directory.join("LOCK");
        let lock = File::create(&lock_path).map_err(|e| io_error("create", &lock_path, e))?;
        lock.try_lock().map_err(|_| StorageError {
            detail: format!("data directory {} is in use by another raftmq process", directory.display()),
        })?;
        if let Some(identity) = &options.identity {
            check_identity(directory, identity)?;
        }
        remove_temporary_snapshots(directory)?;
        let snapshot = read_snapshot(directory)?;
        let mut storage = WalStorage {
            directory: directory.to_path_buf(),
            options,
            _lock: lock,
            hard_state: read_hard_state(&directory.join("hard_state"))?,
            snapshot_bytes: snapshot.as_ref().map_or(0, |(_, bytes)| *bytes),
            snapshot: snapshot.map(|(snapshot, _)| snapshot),
            segments: Vec::new(),
            segment_base: 0,
            log_start: 1,
            positions: Vec::new(),
            pending: Vec::new(),
            synced_segment_count: 0,
            synced_length: 0,
            recovered: None,
        };
        let entries = storage.recover_segments()?;
        let (entries, must_reset) = chain_after_snapshot(storage.snapshot.as_ref(), entries);
        let snapshot_index = storage.snapshot.as_ref().map_or(0, |snapshot| snapshot.last_index);
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
        storage.mark_synced();
        storage.recovered = Some(entries);
        Ok(storage)
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

    /// Read every segment in index order, cutting a torn tail off the last.
    fn recover_segments(&mut self) -> Result<Vec<Entry>, StorageError> {
        let mut paths = Vec::new();
        let listing = fs::read_dir(&self.directory).map_err(|e| io_error("list", &self.directory, e))?;
        for item in listing {
            let path = item.map_err(|e| io_error("list", &self.directory, e))?.path();
            if path.extension().is_some_and(|extension| extension == "wal") {
                let first_index = segment_first_index(&path)?;
                paths.push((first_index, path));
            }
        }
        paths.sort();
        let mut entries = Vec::new();
        let count = paths.len();
        if let Some((first_index, _)) = paths.first() {
            self.log_start = *first_index;
        }
        for (number, (first_index, path)) in paths.into_iter().enumerate() {
            if first_index != self.last_index() + 1 {
                return Err(StorageError {
                    detail: format!(
                        "{} starts at index {first_index}, expected {}",
                        path.display(),
                        self.last_index() + 1
                    ),
                });
            }
            let is_last = number + 1 == count;
            let length = self.read_segment(&path, is_last, &mut entries)?;
            let file = OpenOptions::new().append(true).open(&path).map_err(|e| io_error("open", &path, e))?;
            self.segments.push(Segment { first_index, path, file, length });
        }
        Ok(entries)
    }

    /// Append the segment's records to `entries`; return its valid length.
    fn read_segment(&mut self, path: &Path, is_last: bool, entries: &mut Vec<Entry>) -> Result<u64, StorageError> {
        let bytes = fs::read(path).map_err(|e| io_error("read", path, e))?;
        let segment = self.segment_base + self.segments.len();
        let mut offset = 0usize;
        while offset < bytes.len() {
            let problem = match decode_record(&bytes[offset..]) {
                Ok((entry, size)) => {
                    let expected = self.last_index() + 1;
                    if entry.index != expected {
                        format!("holds index {} where {expected} was expected", entry.index)
                    } else if entry.term < entries.last().map_or(0, |last: &Entry| last.term) {
                        format!("holds term {} after a later term", entry.term)
                    } else {
                        self.positions.push(Position { segment, offset: offset as u64 });
                        entries.push(entry);
                        offset += size;
                        continue;
                    }
                }
                Err(problem) => problem,
            };
            let rest = &bytes[offset..];
            let expected = self.last_index() + 1;
            if is_last && is_torn_tail(rest) && !holds_a_later_record(rest, expected) {
                warn!("{}: cut a torn tail of {} bytes at offset {offset} ({problem})", path.display(), rest.len());
                let file = OpenOptions::new().write(true).open(path).map_err(|e| io_error("open", path, e))?;
                file.set_len(offset as u64).map_err(|e| io_error("truncate", path, e))?;
                file.sync_all().map_err(|e| io_error("sync", path, e))?;
                return Ok(offset as u64);
            }
            return Err(StorageError {
                detail: format!(
                    "corrupt record in {} at offset {offset}: {problem}; refusing to start",
                    path.display()
                ),
            });
        }
        Ok(bytes.len() as u64)
    }

    fn start_segment(&mut self, first_index: LogIndex) -> Result<(), StorageError> {
        let path = self.directory.join(format!("{first_index:020}.wal"));
        let file =
            OpenOptions::new().create_new(true).append(true).open(&path).map_err(|e| io_error("create", &path, e))?;
        sync_directory(&self.directory)?;
        self.segments.push(Segment { first_index, path, file, length: 0 });
        Ok(())
    }

    fn write_pending(&mut self) -> Result<(), StorageError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let segment = self.active();
        segment.file.write_all(&pending).map_err(|e| io_error("write", &segment.path, e))?;
        segment.length += pending.len() as u64;
        self.pending = pending;
        self.pending.clear();
        Ok(())
    }

    /// Remove the entry at `index` and all after it, on disk as in memory.
    fn truncate_from(&mut self, index: LogIndex) -> Result<(), StorageError> {
        assert!(index >= self.log_start && index <= self.last_index(), "truncating outside the log");
        self.write_pending()?;
        let position = self.position(index);
        let removed = self.segments.split_off(position.segment - self.segment_base + 1);
        for segment in &removed {
            fs::remove_file(&segment.path).map_err(|e| io_error("remove", &segment.path, e))?;
        }
        if !removed.is_empty() {
            sync_directory(&self.directory)?;
        }
        let segment = self.active();
        segment.file.set_len(position.offset).map_err(|e| io_error("truncate", &segment.path, e))?;
        segment.length = position.offset;
        self.positions.truncate((index - self.log_start) as usize);
        // The synced prefix may have shrunk; a later failure must not grow it back.
        let active = self.segment_base + self.segments.len();
        if self.synced_segment_count >= active {
            self.synced_segment_count = active;
            self.synced_length = self.synced_length.min(position.offset);
        }
        Ok(())
    }

    /// Close a full active segment (synced) and start the next.
    fn rotate_if_full(&mut self, next_index: LogIndex) -> Result<(), StorageError> {
        let segment = self.segments.last().expect("active segment");
        let full = segment.length + self.pending.len() as u64 >= self.options.segment_bytes;
        if full && segment.first_index < next_index {
            self.write_pending()?;
            let segment = self.active();
            segment.file.sync_data().map_err(|e| io_error("sync", &segment.path, e))?;
            self.start_segment(next_index)?;
            self.mark_synced();
        }
        Ok(())
    }
}

impl Storage for WalStorage {
    fn load(&mut self) -> Result<RecoveredState, StorageError> {
        let entries = match self.recovered.take() {
            Some(entries) => entries,
            None => {
                self.write_pending()?;
                self.segments.clear();
                self.positions.clear();
                let entries = self.recover_segments()?;
                chain_after_snapshot(self.snapshot.as_ref(), entries).0
            }
        };
        Ok(RecoveredState { hard_state: self.hard_state, snapshot: self.snapshot.clone(), entries })
    }

    fn save_hard_state(&mut self, hard_state: HardState) -> Result<(), StorageError> {
        assert!(hard_state.current_term >= self.hard_state.current_term, "stored term must not go back");
        write_hard_state(&self.directory, hard_state)?;
        self.hard_state = hard_state;
        Ok(())
    }

    fn append_entries(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        let Some(first) = entries.first() else { return Ok(()) };
        if first.index > self.last_index() + 1 || first.index < self.log_start {
            return Err(StorageError {
                detail: format!(
                    "append at index {} outside the stored log {}..={}",
                    first.index,
                    self.log_start,
                    self.last_index()
                ),
            });
        }
        if first.index <= self.last_index() {
            self.truncate_from(first.index)?;
        }
        for entry in entries {
            assert_eq!(entry.index, self.last_index() + 1, "entries must be contiguous");
            self.rotate_if_full(entry.index)?;
            let active = self.segments.last().expect("active segment");
            let offset = active.length + self.pending.len() as u64;
            let segment = self.segment_base + self.segments.len() - 1;
            self.positions.push(Position { segment, offset });
            encode_record(entry, &mut self.pending);
        }
        Ok(())
    }

    fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        self.snapshot_bytes = write_snapshot(&self.directory, snapshot)?;
        self.snapshot = Some(snapshot.clone());
        Ok(())
    }

    fn adopt_snapshot(&mut self, snapshot: &Snapshot, temporary: &Path) -> Result<(), StorageError> {
        let stored_index = self.snapshot.as_ref().map_or(0, |stored| stored.last_index);
        if snapshot.last_index <= stored_index {
            return fs::remove_file(temporary).map_err(|e| io_error("remove", temporary, e));
        }
        self.snapshot_bytes = adopt_snapshot(&self.directory, temporary)?;
        self.snapshot = Some(snapshot.clone());
        Ok(())
    }

    /// Remove whole segments whose entries all lie at or before `through_index`.
    fn compact(&mut self, through_index: LogIndex) -> Result<(), StorageError> {
        while self.segments.len() >= 2 && self.segments[1].first_index <= through_index + 1 {
            let removed = self.segments.remove(0);
            self.segment_base += 1;
            fs::remove_file(&removed.path).map_err(|e| io_error("remove", &removed.path, e))?;
            let dropped = (self.segments[0].first_index - self.log_start) as usize;
            self.positions.drain(..dropped);
            self.log_start = self.segments[0].first_index;
        }
        Ok(())
    }

    /// Remove every segment, newest first, so a crash part way leaves a
    /// contiguous older prefix that `open` recognises as not continuing the
    /// snapshot; then start an empty segment after `index`.
    fn reset_log(&mut self, index: LogIndex) -> Result<(), StorageError> {
        self.pending.clear();
        while let Some(segment) = self.segments.pop() {
            fs::remove_file(&segment.path).map_err(|e| io_error("remove", &segment.path, e))?;
        }
        sync_directory(&self.directory)?;
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
        Ok(())
    }

    /// Cut the log back to what the last successful sync covered: a failed
    /// fsync may have dropped dirty pages the page cache still shows us.
    fn discard_unsynced(&mut self) -> Result<(), StorageError> {
        self.pending.clear();
        let keep = self.synced_segment_count.saturating_sub(self.segment_base).max(1);
        while self.segments.len() > keep {
            let segment = self.segments.pop().expect("more than one segment");
            fs::remove_file(&segment.path).map_err(|e| io_error("remove", &segment.path, e))?;
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

/// The directory belongs to the cluster and node named by `identity`, or is
/// new and is claimed for them.
fn check_identity(directory: &Path, identity: &str) -> Result<(), StorageError> {
    let path = directory.join("IDENTITY");
    match fs::read_to_string(&path) {
        Ok(found) if found.trim() == identity.trim() => Ok(()),
        Ok(found) => Err(StorageError {
            detail: format!(
                "data directory {} belongs to {}, not to {}; refusing to start (use another --data-dir)",
                directory.display(),
                found.trim(),
                identity.trim()
            ),
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            replace_file_atomically(directory, "IDENTITY", format!("{}\n", identity.trim()).as_bytes())
        }
        Err(error) => Err(io_error("read", &path, error)),
    }
}

fn encode_record(entry: &Entry, out: &mut Vec<u8>) {
    let payload_length = PAYLOAD_HEADER_BYTES + entry.data.len();
    let length = u32::try_from(payload_length).expect("entries are far below 4 GiB");
    let start = out.len();
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&[0; 4]); // checksum, filled in below
    out.extend_from_slice(&entry.term.to_le_bytes());
    out.extend_from_slice(&entry.index.to_le_bytes());
    out.extend_from_slice(&entry.data);
    let checksum = crc32c::crc32c(&out[start + RECORD_HEADER_BYTES..]);
    out[start + 4..start + 8].copy_from_slice(&checksum.to_le_bytes());
}

/// One record from the front of `bytes`: the entry and the bytes it used,
/// or what is wrong with it.
fn decode_record(bytes: &[u8]) -> Result<(Entry, usize), String> {
    if bytes.len() < RECORD_HEADER_BYTES {
        return Err(format!("record header cut short at {} bytes", bytes.len()));
    }
    let length = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes")) as usize;
    let checksum = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    if length < PAYLOAD_HEADER_BYTES {
        return Err(format!("record length {length} is too small"));
    }
    let Some(payload) = bytes.get(RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + length) else {
        return Err(format!("record of {length} bytes cut short at {}", bytes.len() - RECORD_HEADER_BYTES));
    };
    if crc32c::crc32c(payload) != checksum {
        return Err("checksum mismatch".into());
    }
    let term = u64::from_le_bytes(payload[0..8].try_into().expect("8 bytes"));
    let index = u64::from_le_bytes(payload[8..16].try_into().expect("8 bytes"));
    let entry = Entry { term, index, data: payload[PAYLOAD_HEADER_BYTES..].to_vec() };
    Ok((entry, RECORD_HEADER_BYTES + length))
}

/// A bad record is a torn tail when it is the file's last: it runs past the
/// end, ends exactly at the end, or only zero bytes follow it (a crash after
/// the file grew but before its data reached the disk).
fn is_torn_tail(rest: &[u8]) -> bool {
    if rest.iter().all(|&byte| byte == 0) || rest.len() < RECORD_HEADER_BYTES {
        return true;
    }
    let length = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
    let record_end = RECORD_HEADER_BYTES.saturating_add(length);
    record_end >= rest.len() || rest[record_end..].iter().all(|&byte| byte == 0)
}

/// Whether an intact record (good checksum, index at or after `expected`)
/// starts anywhere after the first byte of `rest`. A torn tail holds none; a
/// record whose length field was corrupted does, and must not be cut.
fn holds_a_later_record(rest: &[u8], expected: LogIndex) -> bool {
    (1..rest.len()).any(|start| decode_record(&rest[start..]).is_ok_and(|(entry, _)| entry.index >= expected))
}

fn segment_first_index(path: &Path) -> Result<LogIndex, StorageError> {
    path.file_stem()
        .and_then(|stem| stem.to_str())
        .and_then(|stem| stem.parse().ok())
        .filter(|&index| index >= 1)
        .ok_or_else(|| StorageError { detail: format!("{} is not named <first index>.wal", path.display()) })
}

fn encode_hard_state(hard_state: HardState) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HARD_STATE_BYTES);
    bytes.extend_from_slice(HARD_STATE_MAGIC);
    bytes.push(HARD_STATE_VERSION);
    bytes.extend_from_slice(&hard_state.current_term.to_le_bytes());
    bytes.push(u8::from(hard_state.voted_for.is_some()));
    let vote = hard_state.voted_for.map_or(0, |node| u32::try_from(node).expect("node ids fit in u32"));
    bytes.extend_from_slice(&vote.to_le_bytes());
    let checksum = crc32c::crc32c(&bytes);
    bytes.extend_from_slice(&checksum.to_le_bytes());
    bytes
}

fn write_hard_state(directory: &Path, hard_state: HardState) -> Result<(), StorageError> {
    replace_file_atomically(directory, "hard_state", &encode_hard_state(hard_state))
}

fn read_hard_state(path: &Path) -> Result<HardState, StorageError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(HardState::default()),
        Err(error) => return Err(io_error("read", path, error)),
    };
    let corrupt =
        |why: &str| StorageError { detail: format!("{} is corrupt ({why}); refusing to start", path.display()) };
    if bytes.len() != HARD_STATE_BYTES || &bytes[0..4] != HARD_STATE_MAGIC || bytes[4] != HARD_STATE_VERSION {
        return Err(corrupt("wrong size, magic or version"));
    }
    let (body, checksum) = bytes.split_at(HARD_STATE_BYTES - 4);
    if crc32c::crc32c(body) != u32::from_le_bytes(checksum.try_into().expect("4 bytes")) {
        return Err(corrupt("checksum mismatch"));
    }
    let current_term = u64::from_le_bytes(body[5..13].try_into().expect("8 bytes"));
    let vote = u32::from_le_bytes(body[14..18].try_into().expect("4 bytes")) as usize;
    let voted_for = match body[13] {
        0 => None,
        1 => Some(vote),
        _ => return Err(corrupt("bad vote flag")),
    };
    Ok(HardState { current_term, voted_for })
}
