//! The little-endian reader and writer shared by the binary formats (the
//! peer codec, the command codec, the queue's snapshot image). One overflow
//! policy for all of them: every read checks the bytes that remain and
//! returns an error instead of panicking, and every length or count read
//! from the input is checked against what remains (and any stated limit)
//! before anything is allocated for it.

use std::fmt;

/// Why bytes could not be read. Each format wraps it in its own error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// The input ends before a field of `wanted` bytes.
    Truncated {
        /// How many bytes the field needed.
        wanted: u64,
        /// How many bytes were left in the input.
        left: usize,
    },
    /// A length prefix above the format's limit for that field.
    TooLong {
        /// The length the input declared.
        length: u64,
        /// The most that field may hold, in bytes.
        limit: u64,
    },
    /// A count of items that cannot fit in the bytes that remain.
    CountTooLarge {
        /// The count the input declared.
        count: u64,
        /// How many bytes were left to hold those items.
        left: usize,
    },
    /// A boolean byte other than 0 or 1.
    NotBoolean(u8),
    /// Text that is not valid UTF-8.
    NotUtf8,
    /// Bytes left after the last field.
    Trailing(usize),
}

impl fmt::Display for ReadError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Truncated { wanted, left } => write!(formatter, "truncated: wanted {wanted} bytes, {left} left"),
            ReadError::TooLong { length, limit } => write!(formatter, "a length of {length} exceeds the limit {limit}"),
            ReadError::CountTooLarge { count, left } => write!(formatter, "{count} items cannot fit in {left} bytes"),
            ReadError::NotBoolean(value) => write!(formatter, "{value} is not a boolean"),
            ReadError::NotUtf8 => formatter.write_str("text is not UTF-8"),
            ReadError::Trailing(count) => write!(formatter, "{count} trailing bytes"),
        }
    }
}

impl std::error::Error for ReadError {}

/// For the formats whose errors are text (the queue's snapshot image).
impl From<ReadError> for String {
    fn from(error: ReadError) -> String {
        error.to_string()
    }
}

/// Reads fields front to back from a byte slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader positioned at the first byte of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { rest: bytes }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// The next `count` bytes as they are.
    /// Returns [`ReadError::Truncated`] if fewer remain.
    pub fn take(&mut self, count: usize) -> Result<&'a [u8], ReadError> {
        if self.rest.len() < count {
            return Err(ReadError::Truncated { wanted: count as u64, left: self.rest.len() });
        }
        let (taken, rest) = self.rest.split_at(count);
        self.rest = rest;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ReadError> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, ReadError> {
        Ok(self.array::<1>()?[0])
    }

    /// One byte that must be 0 (false) or 1 (true), else [`ReadError::NotBoolean`].
    pub fn bool(&mut self) -> Result<bool, ReadError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(ReadError::NotBoolean(other)),
        }
    }

    /// Four bytes, little-endian.
    pub fn u32(&mut self) -> Result<u32, ReadError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// Eight bytes, little-endian.
    pub fn u64(&mut self) -> Result<u64, ReadError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A u32 length, then that many bytes (at most `limit`).
    pub fn bytes(&mut self, limit: usize) -> Result<&'a [u8], ReadError> {
        let length = u64::from(self.u32()?);
        if length > limit as u64 {
            return Err(ReadError::TooLong { length, limit: limit as u64 });
        }
        if length > self.rest.len() as u64 {
            return Err(ReadError::Truncated { wanted: length, left: self.rest.len() });
        }
        self.take(length as usize)
    }

    /// `bytes`, as UTF-8 text.
    pub fn string(&mut self, limit: usize) -> Result<String, ReadError> {
        let bytes = self.bytes(limit)?;
        std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| ReadError::NotUtf8)
    }

    /// A count of items of at least `smallest_item_bytes` each, checked to
    /// fit in what remains, so a caller may allocate for that many.
    pub fn count_u32(&mut self, smallest_item_bytes: usize) -> Result<usize, ReadError> {
        let count = u64::from(self.u32()?);
        self.check_count(count, smallest_item_bytes)
    }

    /// `count_u32` for a u64 count.
    pub fn count_u64(&mut self, smallest_item_bytes: usize) -> Result<usize, ReadError> {
        let count = self.u64()?;
        self.check_count(count, smallest_item_bytes)
    }

    fn check_count(&self, count: u64, smallest_item_bytes: usize) -> Result<usize, ReadError> {
        let fits = (self.rest.len() / smallest_item_bytes.max(1)) as u64;
        if count > fits {
            return Err(ReadError::CountTooLarge { count, left: self.rest.len() });
        }
        Ok(count as usize)
    }

    /// The end of the input: an error if any bytes are left.
    pub fn finish(self) -> Result<(), ReadError> {
        match self.rest.len() {
            0 => Ok(()),
            left => Err(ReadError::Trailing(left)),
        }
    }
}

/// Appends fields to a buffer; the counterpart of `Reader`.
#[derive(Debug)]
pub struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> Writer<'a> {
    /// A writer that appends to `out` (it does not clear it first).
    pub fn new(out: &'a mut Vec<u8>) -> Writer<'a> {
        Writer { out }
    }

    /// One byte.
    pub fn u8(&mut self, value: u8) {
        self.out.push(value);
    }

    /// One byte: 1 for true, 0 for false (what [`Reader::bool`] accepts).
    pub fn bool(&mut self, value: bool) {
        self.out.push(u8::from(value));
    }

    /// Four bytes, little-endian.
    pub fn u32(&mut self, value: u32) {
        self.out.extend_from_slice(&value.to_le_bytes());
    }

    /// Eight bytes, little-endian.
    pub fn u64(&mut self, value: u64) {
        self.out.extend_from_slice(&value.to_le_bytes());
    }

    /// A count or index that fits a u32 field by our own construction
    /// (node ids, entries per message).
    pub fn u32_from(&mut self, value: usize) {
        self.u32(u32::try_from(value).expect("the value fits the format's u32 field"));
    }

    /// A u32 length, then the bytes. Every caller bounds its byte strings
    /// (requests by `--max-request-bytes`, snapshot chunks by their size)
    /// far below 4 GiB.
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.u32_from(bytes.len());
        self.out.extend_from_slice(bytes);
    }

    /// A string as [`Writer::bytes`] of its UTF-8 encoding (read back by [`Reader::string`]).
    pub fn string(&mut self, text: &str) {
        self.bytes(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut out = Vec::new();
        let mut writer = Writer::new(&mut out);
        writer.u8(7);
        writer.bool(true);
        writer.u32(0xdead_beef);
        writer.u64(u64::MAX - 1);
        writer.string("ünï");
        writer.bytes(&[]);
        out
    }

    type Sample = (u8, bool, u32, u64, String, Vec<u8>);

    fn read_sample(bytes: &[u8]) -> Result<Sample, ReadError> {
        let mut reader = Reader::new(bytes);
        let fields = (reader.u8()?, reader.bool()?, reader.u32()?, reader.u64()?, reader.string(16)?, {
            reader.bytes(0)?.to_vec()
        });
        reader.finish()?;
        Ok(fields)
    }

    #[test]
    fn what_is_written_reads_back() {
        assert_eq!(read_sample(&sample()), Ok((7, true, 0xdead_beef, u64::MAX - 1, "ünï".to_string(), vec![])));
    }

    #[test]
    fn every_cut_and_every_extension_is_an_error() {
        let bytes = sample();
        for cut in 0..bytes.len() {
            assert!(read_sample(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut extended = bytes.clone();
        extended.push(0);
        assert_eq!(read_sample(&extended), Err(ReadError::Trailing(1)));
    }

    #[test]
    fn lengths_and_counts_are_checked_before_allocation() {
        let mut out = Vec::new();
        Writer::new(&mut out).u32(u32::MAX);
        assert_eq!(
            Reader::new(&out).bytes(usize::MAX),
            Err(ReadError::Truncated { wanted: u64::from(u32::MAX), left: 0 })
        );
        assert_eq!(Reader::new(&out).bytes(10), Err(ReadError::TooLong { length: u64::from(u32::MAX), limit: 10 }));
        assert_eq!(
            Reader::new(&out).count_u32(1),
            Err(ReadError::CountTooLarge { count: u64::from(u32::MAX), left: 0 })
        );
        let mut counted = Vec::new();
        Writer::new(&mut counted).u64(2);
        counted.extend_from_slice(&[0; 16]);
        assert_eq!(Reader::new(&counted).count_u64(8), Ok(2));
        assert!(Reader::new(&counted).count_u64(9).is_err());
    }

    #[test]
    fn booleans_and_text_are_validated() {
        assert_eq!(Reader::new(&[2]).bool(), Err(ReadError::NotBoolean(2)));
        let mut out = Vec::new();
        Writer::new(&mut out).bytes(&[0xff, 0xfe]);
        assert_eq!(Reader::new(&out).string(8), Err(ReadError::NotUtf8));
    }
}
