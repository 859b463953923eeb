//! The peer wire format: one ZMQ frame per Raft message, binary and
//! little-endian. Header: version (u8), sender id (u32), kind (u8). Decoding
//! arbitrary bytes returns an error, never panics, never over-allocates.

use std::fmt;

use crate::raft::{
    AppendEntries, AppendEntriesResponse, Entry, InstallSnapshot, InstallSnapshotResponse, Message, NodeId,
    RequestVote, RequestVoteResponse, TimeoutNow,
};

/// Version 2 added pre-votes, TimeoutNow, the ReadIndex round and the
/// transfer flag.
const VERSION: u8 = 2;
const KIND_REQUEST_VOTE: u8 = 1;
const KIND_REQUEST_VOTE_RESPONSE: u8 = 2;
const KIND_APPEND_ENTRIES: u8 = 3;
const KIND_APPEND_ENTRIES_RESPONSE: u8 = 4;
const KIND_INSTALL_SNAPSHOT: u8 = 5;
const KIND_INSTALL_SNAPSHOT_RESPONSE: u8 = 6;
const KIND_PRE_VOTE: u8 = 7;
const KIND_PRE_VOTE_RESPONSE: u8 = 8;
const KIND_TIMEOUT_NOW: u8 = 9;
/// Smallest encoded entry: term, index, data length.
const ENTRY_HEADER_BYTES: usize = 8 + 8 + 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerDecodeError(pub String);

impl fmt::Display for PeerDecodeError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "bad peer message: {}", self.0)
    }
}

pub fn encode(from: NodeId, message: &Message, out: &mut Vec<u8>) {
    out.clear();
    out.push(VERSION);
    put_u32(out, from as u32);
    match message {
        Message::RequestVote(m) => {
            out.push(KIND_REQUEST_VOTE);
            put_vote_request(out, m);
        }
        Message::PreVote(m) => {
            out.push(KIND_PRE_VOTE);
            put_vote_request(out, m);
        }
        Message::RequestVoteResponse(m) => {
            out.push(KIND_REQUEST_VOTE_RESPONSE);
            put_u64(out, m.term);
            out.push(u8::from(m.vote_granted));
        }
        Message::PreVoteResponse(m) => {
            out.push(KIND_PRE_VOTE_RESPONSE);
            put_u64(out, m.term);
            out.push(u8::from(m.vote_granted));
        }
        Message::TimeoutNow(m) => {
            out.push(KIND_TIMEOUT_NOW);
            put_u64(out, m.term);
            put_u32(out, m.leader as u32);
        }
        Message::AppendEntries(m) => {
            out.push(KIND_APPEND_ENTRIES);
            put_u64(out, m.term);
            put_u32(out, m.leader as u32);
            put_u64(out, m.prev_log_index);
            put_u64(out, m.prev_log_term);
            put_u64(out, m.leader_commit);
            put_u64(out, m.read_round);
            put_u32(out, m.entries.len() as u32);
            for entry in &m.entries {
                put_u64(out, entry.term);
                put_u64(out, entry.index);
                put_u32(out, entry.data.len() as u32);
                out.extend_from_slice(&entry.data);
            }
        }
        Message::AppendEntriesResponse(m) => {
            out.push(KIND_APPEND_ENTRIES_RESPONSE);
            put_u64(out, m.term);
            out.push(u8::from(m.success));
            put_u64(out, m.index);
            put_u64(out, m.conflict_index);
            match m.conflict_term {
                Some(term) => {
                    out.push(1);
                    put_u64(out, term);
                }
                None => out.push(0),
            }
            put_u64(out, m.read_round);
        }
        Message::InstallSnapshot(m) => {
            out.push(KIND_INSTALL_SNAPSHOT);
            put_u64(out, m.term);
            put_u32(out, m.leader as u32);
            put_u64(out, m.last_index);
            put_u64(out, m.last_term);
            put_u64(out, m.offset);
            put_u64(out, m.total_bytes);
            put_u32(out, m.data.len() as u32);
            out.extend_from_slice(&m.data);
        }
        Message::InstallSnapshotResponse(m) => {
            out.push(KIND_INSTALL_SNAPSHOT_RESPONSE);
            put_u64(out, m.term);
            put_u64(out, m.last_index);
            put_u64(out, m.received_bytes);
            out.push(u8::from(m.done));
        }
    }
}

pub fn decode(bytes: &[u8]) -> Result<(NodeId, Message), PeerDecodeError> {
    let mut reader = Reader { rest: bytes };
    let version = reader.u8()?;
    if version != VERSION {
        return Err(PeerDecodeError(format!("unsupported version {version}")));
    }
    let from = reader.u32()? as NodeId;
    let message = match reader.u8()? {
        KIND_REQUEST_VOTE => Message::RequestVote(decode_vote_request(&mut reader)?),
        KIND_PRE_VOTE => Message::PreVote(decode_vote_request(&mut reader)?),
        KIND_REQUEST_VOTE_RESPONSE => {
            Message::RequestVoteResponse(RequestVoteResponse { term: reader.u64()?, vote_granted: reader.bool()? })
        }
        KIND_PRE_VOTE_RESPONSE => {
            Message::PreVoteResponse(RequestVoteResponse { term: reader.u64()?, vote_granted: reader.bool()? })
        }
        KIND_TIMEOUT_NOW => Message::TimeoutNow(TimeoutNow { term: reader.u64()?, leader: reader.u32()? as NodeId }),
        KIND_APPEND_ENTRIES => Message::AppendEntries(decode_append_entries(&mut reader)?),
        KIND_APPEND_ENTRIES_RESPONSE => Message::AppendEntriesResponse(AppendEntriesResponse {
            term: reader.u64()?,
            success: reader.bool()?,
            index: reader.u64()?,
            conflict_index: reader.u64()?,
            conflict_term: if reader.bool()? { Some(reader.u64()?) } else { None },
            read_round: reader.u64()?,
        }),
        KIND_INSTALL_SNAPSHOT => Message::InstallSnapshot(decode_install_snapshot(&mut reader)?),
        KIND_INSTALL_SNAPSHOT_RESPONSE => Message::InstallSnapshotResponse(InstallSnapshotResponse {
            term: reader.u64()?,
            last_index: reader.u64()?,
            received_bytes: reader.u64()?,
            done: reader.bool()?,
        }),
        kind => return Err(PeerDecodeError(format!("unknown message kind {kind}"))),
    };
    if !reader.rest.is_empty() {
        return Err(PeerDecodeError(format!("{} trailing bytes", reader.rest.len())));
    }
    Ok((from, message))
}

fn decode_append_entries(reader: &mut Reader<'_>) -> Result<AppendEntries, PeerDecodeError> {
    let term = reader.u64()?;
    let leader = reader.u32()? as NodeId;
    let prev_log_index = reader.u64()?;
    let prev_log_term = reader.u64()?;
    let leader_commit = reader.u64()?;
    let read_round = reader.u64()?;
    let count = reader.u32()? as usize;
    if count > reader.rest.len() / ENTRY_HEADER_BYTES {
        return Err(PeerDecodeError(format!("{count} entries cannot fit in {} bytes", reader.rest.len())));
    }
    let mut entries = Vec::with_capacity(count);
    for position in 0..count {
        let entry = Entry { term: reader.u64()?, index: reader.u64()?, data: reader.bytes()?.to_vec() };
        if entry.index != prev_log_index + 1 + position as u64 {
            return Err(PeerDecodeError("entries are not contiguous after prev_log_index".into()));
        }
        entries.push(entry);
    }
    Ok(AppendEntries { term, leader, prev_log_index, prev_log_term, entries, leader_commit, read_round })
}

fn put_vote_request(out: &mut Vec<u8>, request: &RequestVote) {
    put_u64(out, request.term);
    put_u32(out, request.candidate as u32);
    put_u64(out, request.last_log_index);
    put_u64(out, request.last_log_term);
    out.push(u8::from(request.leadership_transfer));
}

fn decode_vote_request(reader: &mut Reader<'_>) -> Result<RequestVote, PeerDecodeError> {
    Ok(RequestVote {
        term: reader.u64()?,
        candidate: reader.u32()? as NodeId,
        last_log_index: reader.u64()?,
        last_log_term: reader.u64()?,
        leadership_transfer: reader.bool()?,
    })
}

fn decode_install_snapshot(reader: &mut Reader<'_>) -> Result<InstallSnapshot, PeerDecodeError> {
    let request = InstallSnapshot {
        term: reader.u64()?,
        leader: reader.u32()? as NodeId,
        last_index: reader.u64()?,
        last_term: reader.u64()?,
        offset: reader.u64()?,
        total_bytes: reader.u64()?,
        data: reader.bytes()?.to_vec(),
    };
    let end = request.offset.checked_add(request.data.len() as u64);
    if end.is_none_or(|end| end > request.total_bytes) {
        return Err(PeerDecodeError("snapshot chunk runs past the snapshot's size".into()));
    }
    Ok(request)
}

fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], PeerDecodeError> {
        if self.rest.len() < count {
            return Err(PeerDecodeError(format!("truncated: wanted {count} bytes, {} left", self.rest.len())));
        }
        let (taken, rest) = self.rest.split_at(count);
        self.rest = rest;
        Ok(taken)
    }
    fn u8(&mut self) -> Result<u8, PeerDecodeError> {
        Ok(self.take(1)?[0])
    }
    fn bool(&mut self) -> Result<bool, PeerDecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(PeerDecodeError(format!("{other} is not a boolean"))),
        }
    }
    fn u32(&mut self) -> Result<u32, PeerDecodeError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Result<u64, PeerDecodeError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn bytes(&mut self) -> Result<&'a [u8], PeerDecodeError> {
        let length = self.u32()? as usize;
        self.take(length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Message> {
        vec![
            Message::RequestVote(RequestVote {
                term: 7,
                candidate: 2,
                last_log_index: 9,
                last_log_term: 6,
                leadership_transfer: false,
            }),
            Message::RequestVoteResponse(RequestVoteResponse { term: 7, vote_granted: true }),
            Message::AppendEntries(AppendEntries {
                term: 3,
                leader: 1,
                prev_log_index: 4,
                prev_log_term: 2,
                entries: vec![
                    Entry { term: 3, index: 5, data: vec![] },
                    Entry { term: 3, index: 6, data: b"payload".to_vec() },
                ],
                leader_commit: 4,
                read_round: 0,
            }),
            Message::AppendEntriesResponse(AppendEntriesResponse {
                term: 3,
                success: false,
                index: 4,
                conflict_index: 2,
                conflict_term: Some(1),
                read_round: 0,
            }),
            Message::InstallSnapshot(InstallSnapshot {
                term: 4,
                leader: 2,
                last_index: 90,
                last_term: 3,
                offset: 10,
                total_bytes: 30,
                data: b"chunk".to_vec(),
            }),
            Message::InstallSnapshotResponse(InstallSnapshotResponse {
                term: 4,
                last_index: 90,
                received_bytes: 15,
                done: false,
            }),
            Message::AppendEntriesResponse(AppendEntriesResponse {
                term: 3,
                success: true,
                index: 6,
                conflict_index: 0,
                conflict_term: None,
                read_round: 0,
            }),
        ]
    }

    #[test]
    fn every_message_round_trips() {
        let mut buffer = Vec::new();
        for message in samples() {
            encode(3, &message, &mut buffer);
            assert_eq!(decode(&buffer), Ok((3, message)));
        }
    }

    #[test]
    fn every_truncation_and_extension_is_rejected() {
        let mut buffer = Vec::new();
        for message in samples() {
            encode(0, &message, &mut buffer);
            for cut in 0..buffer.len() {
                assert!(decode(&buffer[..cut]).is_err(), "{message:?} cut at {cut}");
            }
            let mut extended = buffer.clone();
            extended.push(0);
            assert!(decode(&extended).is_err());
        }
    }

    #[test]
    fn huge_entry_count_does_not_allocate() {
        let mut buffer = Vec::new();
        let empty = AppendEntries {
            term: 1,
            leader: 0,
            prev_log_index: 0,
            prev_log_term: 0,
            entries: vec![],
            leader_commit: 0,
            read_round: 0,
        };
        encode(0, &Message::AppendEntries(empty), &mut buffer);
        let count_at = buffer.len() - 4;
        buffer[count_at..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&buffer).unwrap_err().0.contains("cannot fit"));
    }
}
