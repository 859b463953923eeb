//! Sizes in the WAL's format 2 on disk, as the tests that damage or tear
//! its files at chosen offsets need them.

/// Bytes before a segment's first batch: its header.
pub const SEGMENT_HEADER_BYTES: usize = 28;
/// A batch frame's header.
pub const BATCH_HEADER_BYTES: usize = 16;
/// Each record's header and entry header, before the entry's data.
pub const RECORD_OVERHEAD_BYTES: usize = 24;
/// The unit a disk writes whole or not at all.
pub const SECTOR_BYTES: usize = 512;
