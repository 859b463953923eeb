//! Reading one log segment back after a crash, and telling a torn write
//! (bytes that were never synced: cut them) from damage to synced bytes
//! (refuse, naming the place). The rules are in wal.rs's module docs.

use super::wal_format::{
    decode_batch, decode_batch_header, decode_record, decode_segment_header, BatchHeader, BATCH_HEADER_BYTES,
    RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES,
};
use crate::raft::{Entry, LogIndex};

/// Where an entry's record starts. `segment` counts every segment this
/// process has known, so compaction need not renumber positions.
#[derive(Clone, Copy, Debug)]
pub struct Position {
    pub segment: usize,
    pub offset: u64,
}

/// The log as read so far: entries and where each one's record starts.
pub struct ReadLog {
    /// Index of `entries[0]` (the next index while empty).
    pub first_index: LogIndex,
    pub entries: Vec<Entry>,
    pub positions: Vec<Position>,
}

impl ReadLog {
    pub fn starting_at(first_index: LogIndex) -> ReadLog {
        ReadLog { first_index, entries: Vec::new(), positions: Vec::new() }
    }

    pub fn next_index(&self) -> LogIndex {
        self.first_index + self.entries.len() as LogIndex
    }

    /// Take `entry`, read at `position`. An entry that opens a batch may
    /// carry a lower index than the next one: the batch replaced the log's
    /// suffix from there (a conflicting append), back to `lowest_index` at
    /// most (its segment's first index). Otherwise indexes run on by one.
    fn accept(
        &mut self,
        entry: Entry,
        position: Position,
        opens_batch: bool,
        lowest_index: LogIndex,
    ) -> Result<(), String> {
        let next = self.next_index();
        let replaces = opens_batch && entry.index < next && entry.index >= lowest_index.max(self.first_index);
        if entry.index != next && !replaces {
            return Err(format!("holds index {} where {next} was expected", entry.index));
        }
        let kept = (entry.index - self.first_index) as usize;
        let previous_term = kept.checked_sub(1).map_or(0, |at| self.entries[at].term);
        if entry.term < previous_term {
            return Err(format!("holds index {} of term {} after term {previous_term}", entry.index, entry.term));
        }
        self.entries.truncate(kept);
        self.positions.truncate(kept);
        self.entries.push(entry);
        self.positions.push(position);
        Ok(())
    }
}

/// How a segment ends, when it is not damaged beyond a torn write.
#[derive(Debug)]
pub enum SegmentEnd {
    /// Every byte is intact.
    Whole,
    /// The last write was torn: cut the file at `offset`. `kept` are the
    /// records of the torn batch's intact prefix, already taken into the
    /// log at positions from `offset` on: write them again as one batch.
    Torn { offset: u64, kept: Vec<Entry>, problem: String },
    /// The segment's header never reached the disk, so nothing in it was
    /// ever synced: remove the file.
    NeverCreated { problem: String },
}

/// Damage to synced bytes: where and what was expected.
#[derive(Debug)]
pub struct Damage {
    pub offset: u64,
    pub what: String,
}

fn damage(offset: usize, what: impl Into<String>) -> Damage {
    Damage { offset: offset as u64, what: what.into() }
}

/// Read a format 2 segment: a header, then batches. Damage is a torn
/// write only in the last segment (every earlier one was synced whole
/// before the next was created) and only when no intact batch follows it.
/// Returns how the segment ends and its salt.
pub fn read_segment(
    bytes: &[u8],
    first_index: LogIndex,
    segment: usize,
    is_last: bool,
    log: &mut ReadLog,
) -> Result<(SegmentEnd, u64), Damage> {
    let salt = match decode_segment_header(bytes) {
        Ok((named, salt)) if named == first_index => salt,
        Ok((named, _)) => {
            return Err(damage(0, format!("the segment header names first index {named}, not {first_index}")));
        }
        Err(problem) if is_last && intact_batch_from(bytes, 0, None).is_none() => {
            return Ok((SegmentEnd::NeverCreated { problem }, 0));
        }
        Err(problem) => return Err(damage(0, format!("{problem}, and intact batches follow"))),
    };
    let mut offset = SEGMENT_HEADER_BYTES;
    while offset < bytes.len() {
        match decode_batch(&bytes[offset..], Some(salt)) {
            Ok(payload) => {
                read_batch(payload, offset, first_index, segment, log)?;
                offset += BATCH_HEADER_BYTES + payload.len();
            }
            Err(problem) => {
                let torn = Torn { bytes, offset, salt, first_index, segment };
                return Ok((torn_or_damaged(torn, problem, is_last, log)?, salt));
            }
        }
    }
    Ok((SegmentEnd::Whole, salt))
}

/// Where a damaged batch lies.
struct Torn<'a> {
    bytes: &'a [u8],
    offset: usize,
    salt: u64,
    first_index: LogIndex,
    segment: usize,
}

/// Every record of an intact batch, or the damage: a batch whose checksum
/// holds was written whole, so a bad record in it is not a tear.
fn read_batch(
    payload: &[u8],
    batch_offset: usize,
    first_index: LogIndex,
    segment: usize,
    log: &mut ReadLog,
) -> Result<(), Damage> {
    let mut at = 0;
    while at < payload.len() {
        let offset = batch_offset + BATCH_HEADER_BYTES + at;
        let (entry, size) = decode_record(&payload[at..]).map_err(|problem| damage(offset, problem))?;
        let position = Position { segment, offset: offset as u64 };
        log.accept(entry, position, at == 0, first_index).map_err(|problem| damage(offset, problem))?;
        at += size;
    }
    Ok(())
}

/// A damaged batch at `offset`: the torn last write if no intact batch
/// follows it in the last segment, else damage.
fn torn_or_damaged(torn: Torn, problem: String, is_last: bool, log: &mut ReadLog) -> Result<SegmentEnd, Damage> {
    let Torn { bytes, offset, salt, first_index, segment } = torn;
    if !is_last {
        let what = format!("{problem}; this segment was synced whole before the next one was started");
        return Err(damage(offset, what));
    }
    // An intact header says where this write ends: a later write can start
    // only there, never inside this one's payload (which holds client data).
    let (batch_end, later_from) = match decode_batch_header(&bytes[offset..], Some(salt)) {
        BatchHeader::Intact { payload_bytes, .. } => {
            let end = offset.saturating_add(BATCH_HEADER_BYTES).saturating_add(payload_bytes);
            (end.min(bytes.len()), end)
        }
        BatchHeader::Damaged(_) => (bytes.len(), offset + 1),
    };
    if let Some(later) = intact_batch_from(bytes, later_from, Some(salt)) {
        let what = format!("{problem}, yet an intact batch follows at offset {later}: synced data was damaged");
        return Err(damage(offset, what));
    }
    let kept = intact_prefix(&bytes[offset..batch_end], offset, first_index, segment, log);
    Ok(SegmentEnd::Torn { offset: offset as u64, kept, problem })
}

/// The records at the front of a torn batch that are intact and continue
/// the log, taken into `log`.
fn intact_prefix(
    batch: &[u8],
    batch_offset: usize,
    first_index: LogIndex,
    segment: usize,
    log: &mut ReadLog,
) -> Vec<Entry> {
    let mut kept = Vec::new();
    let mut at = BATCH_HEADER_BYTES;
    while let Some(Ok((entry, size))) = batch.get(at..).map(decode_record) {
        let position = Position { segment, offset: (batch_offset + at) as u64 };
        if log.accept(entry.clone(), position, kept.is_empty(), first_index).is_err() {
            break;
        }
        kept.push(entry);
        at += size;
    }
    kept
}

/// The offset of the first intact batch at or after `from` (checked against
/// `salt` when the segment header gave one).
fn intact_batch_from(bytes: &[u8], from: usize, salt: Option<u64>) -> Option<usize> {
    let last_start = bytes.len().checked_sub(BATCH_HEADER_BYTES)?;
    (from..=last_start).find(|&start| bytes[start] == b'R' && decode_batch(&bytes[start..], salt).is_ok())
}

/// Read a format 1 segment (records back to back, written before batch
/// frames existed), with that format's rule: a bad record in the last
/// segment is a torn tail when it runs to the end of the file, or only
/// zeros follow it, and no intact record follows it.
pub fn read_segment_format_1(
    bytes: &[u8],
    segment: usize,
    is_last: bool,
    log: &mut ReadLog,
) -> Result<SegmentEnd, Damage> {
    let mut offset = 0usize;
    while offset < bytes.len() {
        let problem = match decode_record(&bytes[offset..]) {
            Ok((entry, size)) => {
                let position = Position { segment, offset: offset as u64 };
                match log.accept(entry, position, false, 0) {
                    Ok(()) => {
                        offset += size;
                        continue;
                    }
                    Err(problem) => problem,
                }
            }
            Err(problem) => problem,
        };
        let rest = &bytes[offset..];
        if is_last && is_torn_tail_format_1(rest) && !holds_a_later_record(rest, log.next_index()) {
            return Ok(SegmentEnd::Torn { offset: offset as u64, kept: Vec::new(), problem });
        }
        return Err(damage(offset, problem));
    }
    Ok(SegmentEnd::Whole)
}

/// A bad format 1 record is a torn tail when it is the file's last: it runs
/// past the end, ends exactly at the end, or only zero bytes follow it.
fn is_torn_tail_format_1(rest: &[u8]) -> bool {
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
