//! The bytes of the write-ahead log: the data directory's format version,
//! segment headers, batch frames and records (see the layout in wal.rs).
//! Encoding and decoding only; what a damaged byte means is wal_recovery's
//! business.

use std::fs;
use std::path::Path;

use super::snapshot_file::{io_error, replace_file_atomically};
use super::StorageError;
use crate::raft::{Entry, LogIndex};

/// Format 1: records back to back, no segment header, no batch frames.
/// Format 2: a segment header, then one batch frame per write.
pub const FORMAT_VERSION: u32 = 2;
pub const FORMAT_FILE: &str = "FORMAT";
const FORMAT_TEXT_PREFIX: &str = "raftmq write-ahead log format ";

pub const RECORD_HEADER_BYTES: usize = 8;
const PAYLOAD_HEADER_BYTES: usize = 16;
/// Bytes a log record adds to its entry's data.
pub const RECORD_OVERHEAD_BYTES: u64 = (RECORD_HEADER_BYTES + PAYLOAD_HEADER_BYTES) as u64;

const SEGMENT_MAGIC: &[u8; 4] = b"RMQW";
const SEGMENT_VERSION: u8 = 2;
/// `magic | u8 version | 3 zero bytes | u64 first index | u64 salt | u32
/// crc32c of the 24 bytes before`. The salt, random per segment, seeds the
/// checksum of every batch header in the segment: client data that holds a
/// copy of a batch frame (from this log or any other) is not an intact batch
/// here, so it cannot make a torn write look like damage.
pub const SEGMENT_HEADER_BYTES: usize = 4 + 1 + 3 + 8 + 8 + 4;

const BATCH_MAGIC: &[u8; 4] = b"RMQB";
/// `magic | u32 payload length | u32 crc32c(payload) | u32 crc32c of the
/// segment's salt and the 12 bytes before`.
pub const BATCH_HEADER_BYTES: usize = 4 + 4 + 4 + 4;

/// The data directory's format: `Some(version)` from its FORMAT file, or
/// `None` for a directory without one (new, or written by format 1).
pub fn read_format_version(directory: &Path) -> Result<Option<u32>, StorageError> {
    let path = directory.join(FORMAT_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io_error("read", &path, error)),
    };
    let version = text.trim().strip_prefix(FORMAT_TEXT_PREFIX).and_then(|number| number.parse::<u32>().ok());
    match version {
        Some(version) if version == FORMAT_VERSION => Ok(Some(version)),
        Some(found) => Err(StorageError::UnknownFormat { path, found, supported: FORMAT_VERSION }),
        None => Err(StorageError::CorruptFile { path, what: format!("expected \"{FORMAT_TEXT_PREFIX}<number>\"") }),
    }
}

pub fn write_format_version(directory: &Path) -> Result<(), StorageError> {
    replace_file_atomically(directory, FORMAT_FILE, format!("{FORMAT_TEXT_PREFIX}{FORMAT_VERSION}\n").as_bytes())
}

pub fn encode_segment_header(first_index: LogIndex, salt: u64) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(SEGMENT_HEADER_BYTES);
    bytes.extend_from_slice(SEGMENT_MAGIC);
    bytes.push(SEGMENT_VERSION);
    bytes.extend_from_slice(&[0; 3]);
    bytes.extend_from_slice(&first_index.to_le_bytes());
    bytes.extend_from_slice(&salt.to_le_bytes());
    let checksum = crc32c::crc32c(&bytes);
    bytes.extend_from_slice(&checksum.to_le_bytes());
    bytes
}

/// Whether `bytes` begin like a format 2 segment (a format 1 segment begins
/// with a record length, which these bytes would make 1.4 GB).
pub fn starts_like_a_segment_header(bytes: &[u8]) -> bool {
    bytes.starts_with(SEGMENT_MAGIC)
}

/// The first index and salt a segment header holds, or what is wrong with it.
pub fn decode_segment_header(bytes: &[u8]) -> Result<(LogIndex, u64), String> {
    let Some(header) = bytes.get(..SEGMENT_HEADER_BYTES) else {
        return Err(format!("segment header cut short at {} of {SEGMENT_HEADER_BYTES} bytes", bytes.len()));
    };
    if &header[0..4] != SEGMENT_MAGIC || header[4] != SEGMENT_VERSION {
        return Err(format!("expected the segment header \"RMQW\" version {SEGMENT_VERSION}"));
    }
    let checksum = u32::from_le_bytes(header[24..28].try_into().expect("4 bytes"));
    if crc32c::crc32c(&header[..24]) != checksum {
        return Err("segment header checksum mismatch".into());
    }
    let first_index = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
    Ok((first_index, u64::from_le_bytes(header[16..24].try_into().expect("8 bytes"))))
}

/// Room for a batch header at the end of `out`, filled in by `seal_batch`.
pub fn begin_batch(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0; BATCH_HEADER_BYTES]);
}

fn batch_header_checksum(salt: u64, header: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&salt.to_le_bytes()), &header[..12])
}

/// Fill in the header of the batch that starts at `out[0]`, for a segment
/// with `salt`.
pub fn seal_batch(out: &mut [u8], salt: u64) {
    let (header, payload) = out.split_at_mut(BATCH_HEADER_BYTES);
    let length = u32::try_from(payload.len()).expect("one write is far below 4 GiB");
    header[0..4].copy_from_slice(BATCH_MAGIC);
    header[4..8].copy_from_slice(&length.to_le_bytes());
    header[8..12].copy_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    let header_checksum = batch_header_checksum(salt, header);
    header[12..16].copy_from_slice(&header_checksum.to_le_bytes());
}

/// What the front of `bytes` holds where a batch should start.
pub enum BatchHeader {
    /// An intact header: the payload's length and checksum.
    Intact {
        payload_bytes: usize,
        checksum: u32,
    },
    Damaged(String),
}

/// The batch header at the front of `bytes`, checked against the segment's
/// `salt`; without one (the segment header is unreadable) only the payload
/// checksum vouches for the batch.
pub fn decode_batch_header(bytes: &[u8], salt: Option<u64>) -> BatchHeader {
    let Some(header) = bytes.get(..BATCH_HEADER_BYTES) else {
        return BatchHeader::Damaged(format!(
            "batch header cut short at {} of {BATCH_HEADER_BYTES} bytes",
            bytes.len()
        ));
    };
    if &header[0..4] != BATCH_MAGIC {
        return BatchHeader::Damaged("expected a batch header (\"RMQB\")".into());
    }
    let checksum = u32::from_le_bytes(header[12..16].try_into().expect("4 bytes"));
    if salt.is_some_and(|salt| batch_header_checksum(salt, header) != checksum) {
        return BatchHeader::Damaged("batch header checksum mismatch".into());
    }
    let payload_bytes = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes")) as usize;
    let checksum = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    BatchHeader::Intact { payload_bytes, checksum }
}

/// The payload of the intact batch at the front of `bytes`, or what is wrong.
pub fn decode_batch(bytes: &[u8], salt: Option<u64>) -> Result<&[u8], String> {
    match decode_batch_header(bytes, salt) {
        BatchHeader::Damaged(problem) => Err(problem),
        BatchHeader::Intact { payload_bytes, checksum } => {
            let end = BATCH_HEADER_BYTES.saturating_add(payload_bytes);
            let Some(payload) = bytes.get(BATCH_HEADER_BYTES..end) else {
                return Err(format!(
                    "batch of {payload_bytes} bytes cut short at {}",
                    bytes.len() - BATCH_HEADER_BYTES
                ));
            };
            if crc32c::crc32c(payload) != checksum {
                return Err(format!("batch checksum mismatch over its {payload_bytes} bytes"));
            }
            Ok(payload)
        }
    }
}

pub fn encode_record(entry: &Entry, out: &mut Vec<u8>) {
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
pub fn decode_record(bytes: &[u8]) -> Result<(Entry, usize), String> {
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
        return Err("record checksum mismatch".into());
    }
    let term = u64::from_le_bytes(payload[0..8].try_into().expect("8 bytes"));
    let index = u64::from_le_bytes(payload[8..16].try_into().expect("8 bytes"));
    let entry = Entry { term, index, data: payload[PAYLOAD_HEADER_BYTES..].to_vec() };
    Ok((entry, RECORD_HEADER_BYTES + length))
}
