//! The snapshot file: `u32 magic "RMQS" | u8 version | u64 last index |
//! u64 last term | u64 data length | data | u32 crc32c of all before`.
//! Replaced atomically: temp file, fsync, rename, fsync of the directory.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use super::error::io_error;
use super::StorageError;
use crate::raft::Snapshot;

const MAGIC: &[u8; 4] = b"RMQS";
const VERSION: u8 = 1;
const HEADER_BYTES: usize = 4 + 1 + 8 + 8 + 8;
pub const SNAPSHOT_FILE: &str = "snapshot";
/// A snapshot's image goes to disk in pieces this large, each synced
/// before the next is written. A log fsync flushes the device, and so
/// waits for everything written before it that is not yet synced: after
/// images of 200-345 MB written whole, the log's fsyncs took 250-540 ms in
/// a 60 s flood, commits stalled and writes timed out (`docs/benchmarks.md`).
/// Piece by piece, a log fsync waits for one piece at most (about 4 ms on
/// the test machine's disk), and the image still goes at about 190 MB/s.
const SYNCED_PIECE_BYTES: usize = 1 << 20;

pub fn sync_directory(directory: &Path) -> Result<(), StorageError> {
    File::open(directory).and_then(|handle| handle.sync_all()).map_err(|e| io_error("sync directory", directory, e))
}

/// Write `bytes` to `directory/name` so that a crash leaves either the old
/// file or the new one, never a mix.
pub fn replace_file_atomically(directory: &Path, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
    let path = directory.join(name);
    let temporary = directory.join(format!("{name}.tmp"));
    let mut file = File::create(&temporary).map_err(|e| io_error("create", &temporary, e))?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if let Err(error) = written {
        let _ = fs::remove_file(&temporary); // do not leave a partial file taking space
        return Err(io_error("write", &temporary, error));
    }
    fs::rename(&temporary, &path).map_err(|e| io_error("replace", &path, e))?;
    sync_directory(directory)
}

/// Write the snapshot durably into `directory`; returns its size in bytes.
pub fn write_snapshot(directory: &Path, snapshot: &Snapshot) -> Result<u64, StorageError> {
    let temporary = directory.join(format!("{SNAPSHOT_FILE}.tmp"));
    write_snapshot_file(&temporary, snapshot)?;
    adopt_snapshot(directory, &temporary)
}

/// Write the snapshot file to `path`, synced; returns its size. The image
/// is written from where it lies, not copied behind a header first: a copy
/// of a 200 MB image was 200 MB more to allocate, fault in and free, which
/// under a client flood stalled the node's other threads on the process's
/// memory map.
fn write_snapshot_file(path: &Path, snapshot: &Snapshot) -> Result<u64, StorageError> {
    let mut header = Vec::with_capacity(HEADER_BYTES);
    header.extend_from_slice(MAGIC);
    header.push(VERSION);
    header.extend_from_slice(&snapshot.last_index.to_le_bytes());
    header.extend_from_slice(&snapshot.last_term.to_le_bytes());
    header.extend_from_slice(&(snapshot.data.len() as u64).to_le_bytes());
    let checksum = crc32c::crc32c_append(crc32c::crc32c(&header), &snapshot.data);
    let mut file = File::create(path).map_err(|e| io_error("create", path, e))?;
    let written = file
        .write_all(&header)
        .and_then(|()| write_in_synced_pieces(&mut file, &snapshot.data))
        .and_then(|()| file.write_all(&checksum.to_le_bytes()))
        .and_then(|()| file.sync_all());
    if let Err(error) = written {
        let _ = fs::remove_file(path); // do not leave a partial file taking space
        return Err(io_error("write", path, error));
    }
    Ok((HEADER_BYTES + snapshot.data.len() + 4) as u64)
}

/// Write `bytes`, syncing after every `SYNCED_PIECE_BYTES` (see there).
fn write_in_synced_pieces(file: &mut File, bytes: &[u8]) -> std::io::Result<()> {
    for piece in bytes.chunks(SYNCED_PIECE_BYTES) {
        file.write_all(piece)?;
        file.sync_data()?;
    }
    Ok(())
}

/// Write the snapshot to its own temporary file in `directory`, synced, for
/// `adopt_snapshot` to put in place later. Done off the log's thread, so a
/// large snapshot never holds up log writes.
pub fn write_snapshot_temporary(directory: &Path, snapshot: &Snapshot) -> Result<PathBuf, StorageError> {
    let path = directory.join(format!("snapshot-{:020}.tmp", snapshot.last_index));
    write_snapshot_file(&path, snapshot)?;
    Ok(path)
}

/// Make a temporary snapshot file the snapshot: rename, then sync the
/// directory. Returns the file's size.
pub fn adopt_snapshot(directory: &Path, temporary: &Path) -> Result<u64, StorageError> {
    let path = directory.join(SNAPSHOT_FILE);
    let size = fs::metadata(temporary).map_err(|e| io_error("read", temporary, e))?.len();
    fs::rename(temporary, &path).map_err(|e| io_error("replace", &path, e))?;
    sync_directory(directory)?;
    Ok(size)
}

/// Remove temporary snapshot files a crash left behind.
pub fn remove_temporary_snapshots(directory: &Path) -> Result<(), StorageError> {
    let listing = fs::read_dir(directory).map_err(|e| io_error("list", directory, e))?;
    for item in listing {
        let path = item.map_err(|e| io_error("list", directory, e))?.path();
        let name = path.file_name().and_then(|name| name.to_str()).unwrap_or("");
        if name.starts_with("snapshot") && name.ends_with(".tmp") {
            fs::remove_file(&path).map_err(|e| io_error("remove", &path, e))?;
        }
    }
    Ok(())
}

/// The snapshot in `directory`, if any, and its file size. A damaged file is
/// an error: the log before it is gone, so there is nothing to fall back on.
pub fn read_snapshot(directory: &Path) -> Result<Option<(Snapshot, u64)>, StorageError> {
    let path = directory.join(SNAPSHOT_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io_error("read", &path, error)),
    };
    let corrupt = |why: &str| StorageError::CorruptFile { path: path.clone(), what: why.to_string() };
    if bytes.len() < HEADER_BYTES + 4 || &bytes[..4] != MAGIC || bytes[4] != VERSION {
        return Err(corrupt("wrong size, magic or version"));
    }
    let (body, checksum) = bytes.split_at(bytes.len() - 4);
    if crc32c::crc32c(body) != u32::from_le_bytes(checksum.try_into().expect("4 bytes")) {
        return Err(corrupt("checksum mismatch"));
    }
    let field = |at: usize| u64::from_le_bytes(body[at..at + 8].try_into().expect("8 bytes"));
    let (last_index, last_term, length) = (field(5), field(13), field(21));
    if length != (body.len() - HEADER_BYTES) as u64 {
        return Err(corrupt("data length does not match the file"));
    }
    let data = Arc::new(body[HEADER_BYTES..].to_vec());
    Ok(Some((Snapshot { last_index, last_term, data }, bytes.len() as u64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    // An image of several synced pieces and a partial last one reads back
    // whole, and its checksum covers every piece.
    #[test]
    fn an_image_written_in_synced_pieces_reads_back_whole() {
        let directory = std::env::temp_dir().join(format!("raftmq-snapshot-pieces-{}", std::process::id()));
        fs::create_dir_all(&directory).unwrap();
        let data: Vec<u8> = (0..(2 * SYNCED_PIECE_BYTES + 12_345)).map(|byte| (byte % 251) as u8).collect();
        let snapshot = Snapshot { last_index: 42, last_term: 3, data: Arc::new(data) };
        let size = write_snapshot(&directory, &snapshot).unwrap();
        assert_eq!(size, (HEADER_BYTES + snapshot.data.len() + 4) as u64);
        let (read, read_size) = read_snapshot(&directory).unwrap().expect("a snapshot is there");
        assert_eq!((read.last_index, read.last_term, read_size), (42, 3, size));
        assert_eq!(read.data, snapshot.data);
        fs::remove_dir_all(&directory).unwrap();
    }
}
