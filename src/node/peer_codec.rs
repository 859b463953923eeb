//! The peer wire format: one ZMQ frame per Raft message, binary and
//! little-endian (docs/protocol.md, "Peer protocol"). Header: version (u8),
//! cluster id (u64), sender id (u32), kind (u8). Decoding arbitrary bytes
//! returns an error, never panics, never over-allocates (src/binary.rs).

use std::fmt;

use crate::binary::{ReadError, Reader, Writer};
use crate::raft::{
    AppendEntries, AppendEntriesResponse, Entry, InstallSnapshot, InstallSnapshotResponse, Message, NodeId,
    RequestVote, RequestVoteResponse, TermAnswer, TermQuery, TimeoutNow,
};

/// Version 2 added pre-votes, TimeoutNow, the ReadIndex round and the
/// transfer flag; version 3 the cluster id in the header. The term question
/// and answer of protocol-aware recovery are new kinds, which an older node
/// drops as unknown.
pub const VERSION: u8 = 3;
const KIND_REQUEST_VOTE: u8 = 1;
const KIND_REQUEST_VOTE_RESPONSE: u8 = 2;
const KIND_APPEND_ENTRIES: u8 = 3;
const KIND_APPEND_ENTRIES_RESPONSE: u8 = 4;
const KIND_INSTALL_SNAPSHOT: u8 = 5;
const KIND_INSTALL_SNAPSHOT_RESPONSE: u8 = 6;
const KIND_PRE_VOTE: u8 = 7;
const KIND_PRE_VOTE_RESPONSE: u8 = 8;
const KIND_TIMEOUT_NOW: u8 = 9;
const KIND_TERM_QUERY: u8 = 10;
const KIND_TERM_ANSWER: u8 = 11;
/// Every kind is in 1..=LAST_KIND.
pub const LAST_KIND: u8 = KIND_TERM_ANSWER;
/// Smallest encoded entry: term, index, data length.
const ENTRY_HEADER_BYTES: usize = 8 + 8 + 4;
/// A byte field (entry data, snapshot chunk) has no limit of its own: it is
/// bounded by the frame that holds it, which the reader checks first.
const FIELD_LIMIT_BYTES: usize = u32::MAX as usize;

/// Who sent a frame: the cluster (`ClusterConfig::cluster_hash`) and the
/// sender's index in that cluster's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The sender's cluster: a frame whose id is not this node's
    /// `ClusterConfig::cluster_hash` is dropped.
    pub cluster_id: u64,
    /// The sender's node id (its index in the config); decoding does not check
    /// it against the configuration, the peer listener does.
    pub from: NodeId,
}

/// Why a peer frame could not be decoded: wrong version, unknown kind, a
/// node id that does not fit, or a field the reader refused (truncated,
/// too long, not a boolean, trailing bytes). The frame is dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerDecodeError(pub String);

impl fmt::Display for PeerDecodeError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "bad peer message: {}", self.0)
    }
}

impl From<ReadError> for PeerDecodeError {
    fn from(error: ReadError) -> PeerDecodeError {
        PeerDecodeError(error.to_string())
    }
}

/// Encodes `message` from `header` as one frame into `out`, which is
/// cleared first so a caller may reuse one buffer.
pub fn encode(header: FrameHeader, message: &Message, out: &mut Vec<u8>) {
    out.clear();
    let mut writer = Writer::new(out);
    writer.u8(VERSION);
    writer.u64(header.cluster_id);
    writer.u32_from(header.from);
    writer.u8(kind(message));
    match message {
        Message::RequestVote(m) | Message::PreVote(m) => put_vote_request(&mut writer, m),
        Message::RequestVoteResponse(m) | Message::PreVoteResponse(m) => put_vote_response(&mut writer, m),
        Message::TimeoutNow(m) => {
            writer.u64(m.term);
            writer.u32_from(m.leader);
        }
        Message::TermQuery(m) => {
            writer.u64(m.term);
            writer.u64(m.nonce);
        }
        Message::TermAnswer(m) => {
            writer.u64(m.term);
            writer.u64(m.nonce);
            writer.bool(m.repairing);
        }
        Message::AppendEntries(m) => put_append_entries(&mut writer, m),
        Message::AppendEntriesResponse(m) => {
            writer.u64(m.term);
            writer.bool(m.success);
            writer.u64(m.index);
            writer.u64(m.conflict_index);
            match m.conflict_term {
                Some(term) => {
                    writer.bool(true);
                    writer.u64(term);
                }
                None => writer.bool(false),
            }
            writer.u64(m.read_round);
        }
        Message::InstallSnapshot(m) => {
            writer.u64(m.term);
            writer.u32_from(m.leader);
            writer.u64(m.last_index);
            writer.u64(m.last_term);
            writer.u64(m.offset);
            writer.u64(m.total_bytes);
            writer.bytes(&m.data);
        }
        Message::InstallSnapshotResponse(m) => {
            writer.u64(m.term);
            writer.u64(m.last_index);
            writer.u64(m.received_bytes);
            writer.bool(m.done);
        }
    }
}

/// The kind byte that stands for `message` on the wire.
pub fn kind(message: &Message) -> u8 {
    match message {
        Message::RequestVote(_) => KIND_REQUEST_VOTE,
        Message::RequestVoteResponse(_) => KIND_REQUEST_VOTE_RESPONSE,
        Message::AppendEntries(_) => KIND_APPEND_ENTRIES,
        Message::AppendEntriesResponse(_) => KIND_APPEND_ENTRIES_RESPONSE,
        Message::InstallSnapshot(_) => KIND_INSTALL_SNAPSHOT,
        Message::InstallSnapshotResponse(_) => KIND_INSTALL_SNAPSHOT_RESPONSE,
        Message::PreVote(_) => KIND_PRE_VOTE,
        Message::PreVoteResponse(_) => KIND_PRE_VOTE_RESPONSE,
        Message::TimeoutNow(_) => KIND_TIMEOUT_NOW,
        Message::TermQuery(_) => KIND_TERM_QUERY,
        Message::TermAnswer(_) => KIND_TERM_ANSWER,
    }
}

/// Decodes one frame into its header and message, the inverse of
/// [`encode`]. Any input is safe: it returns a [`PeerDecodeError`] for a
/// version other than [`VERSION`], an unknown kind, a truncated or oversized
/// field, or trailing bytes, and never allocates more than the frame holds.
pub fn decode(bytes: &[u8]) -> Result<(FrameHeader, Message), PeerDecodeError> {
    let mut reader = Reader::new(bytes);
    let version = reader.u8()?;
    if version != VERSION {
        return Err(PeerDecodeError(format!("unsupported version {version}")));
    }
    let header = FrameHeader { cluster_id: reader.u64()?, from: node_id(&mut reader)? };
    let message = match reader.u8()? {
        KIND_REQUEST_VOTE => Message::RequestVote(decode_vote_request(&mut reader)?),
        KIND_PRE_VOTE => Message::PreVote(decode_vote_request(&mut reader)?),
        KIND_REQUEST_VOTE_RESPONSE => Message::RequestVoteResponse(decode_vote_response(&mut reader)?),
        KIND_PRE_VOTE_RESPONSE => Message::PreVoteResponse(decode_vote_response(&mut reader)?),
        KIND_TIMEOUT_NOW => Message::TimeoutNow(TimeoutNow { term: reader.u64()?, leader: node_id(&mut reader)? }),
        KIND_TERM_QUERY => Message::TermQuery(TermQuery { term: reader.u64()?, nonce: reader.u64()? }),
        KIND_TERM_ANSWER => {
            Message::TermAnswer(TermAnswer { term: reader.u64()?, nonce: reader.u64()?, repairing: reader.bool()? })
        }
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
    reader.finish()?;
    Ok((header, message))
}

fn node_id(reader: &mut Reader<'_>) -> Result<NodeId, PeerDecodeError> {
    NodeId::try_from(reader.u32()?).map_err(|_| PeerDecodeError("a node id does not fit this machine".into()))
}

fn put_append_entries(writer: &mut Writer<'_>, request: &AppendEntries) {
    writer.u64(request.term);
    writer.u32_from(request.leader);
    writer.u64(request.prev_log_index);
    writer.u64(request.prev_log_term);
    writer.u64(request.leader_commit);
    writer.u64(request.read_round);
    writer.u32_from(request.entries.len());
    for entry in &request.entries {
        writer.u64(entry.term);
        writer.u64(entry.index);
        writer.bytes(&entry.data);
    }
}

fn decode_append_entries(reader: &mut Reader<'_>) -> Result<AppendEntries, PeerDecodeError> {
    let term = reader.u64()?;
    let leader = node_id(reader)?;
    let prev_log_index = reader.u64()?;
    let prev_log_term = reader.u64()?;
    let leader_commit = reader.u64()?;
    let read_round = reader.u64()?;
    let count = reader.count_u32(ENTRY_HEADER_BYTES)?;
    let mut entries = Vec::with_capacity(count);
    for position in 0..count {
        let entry =
            Entry { term: reader.u64()?, index: reader.u64()?, data: reader.bytes(FIELD_LIMIT_BYTES)?.to_vec() };
        if prev_log_index.checked_add(1 + position as u64) != Some(entry.index) {
            return Err(PeerDecodeError("entries are not contiguous after prev_log_index".into()));
        }
        entries.push(entry);
    }
    Ok(AppendEntries { term, leader, prev_log_index, prev_log_term, entries, leader_commit, read_round })
}

fn put_vote_request(writer: &mut Writer<'_>, request: &RequestVote) {
    writer.u64(request.term);
    writer.u32_from(request.candidate);
    writer.u64(request.last_log_index);
    writer.u64(request.last_log_term);
    writer.bool(request.leadership_transfer);
}

fn decode_vote_request(reader: &mut Reader<'_>) -> Result<RequestVote, PeerDecodeError> {
    Ok(RequestVote {
        term: reader.u64()?,
        candidate: node_id(reader)?,
        last_log_index: reader.u64()?,
        last_log_term: reader.u64()?,
        leadership_transfer: reader.bool()?,
    })
}

fn put_vote_response(writer: &mut Writer<'_>, response: &RequestVoteResponse) {
    writer.u64(response.term);
    writer.bool(response.vote_granted);
}

fn decode_vote_response(reader: &mut Reader<'_>) -> Result<RequestVoteResponse, PeerDecodeError> {
    Ok(RequestVoteResponse { term: reader.u64()?, vote_granted: reader.bool()? })
}

fn decode_install_snapshot(reader: &mut Reader<'_>) -> Result<InstallSnapshot, PeerDecodeError> {
    let request = InstallSnapshot {
        term: reader.u64()?,
        leader: node_id(reader)?,
        last_index: reader.u64()?,
        last_term: reader.u64()?,
        offset: reader.u64()?,
        total_bytes: reader.u64()?,
        data: reader.bytes(FIELD_LIMIT_BYTES)?.to_vec(),
    };
    let end = request.offset.checked_add(request.data.len() as u64);
    if end.is_none_or(|end| end > request.total_bytes) {
        return Err(PeerDecodeError("snapshot chunk runs past the snapshot's size".into()));
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: FrameHeader = FrameHeader { cluster_id: 0x0123_4567_89ab_cdef, from: 3 };

    fn vote_request(leadership_transfer: bool) -> RequestVote {
        RequestVote { term: 7, candidate: 2, last_log_index: 9, last_log_term: 6, leadership_transfer }
    }

    /// One or more of every kind of message.
    fn samples() -> Vec<Message> {
        vec![
            Message::RequestVote(vote_request(false)),
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
                read_round: 11,
            }),
            Message::AppendEntriesResponse(AppendEntriesResponse {
                term: 3,
                success: false,
                index: 4,
                conflict_index: 2,
                conflict_term: Some(1),
                read_round: 0,
            }),
            Message::AppendEntriesResponse(AppendEntriesResponse {
                term: 3,
                success: true,
                index: 6,
                conflict_index: 0,
                conflict_term: None,
                read_round: 11,
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
            Message::PreVote(vote_request(true)),
            Message::PreVoteResponse(RequestVoteResponse { term: 8, vote_granted: false }),
            Message::TimeoutNow(TimeoutNow { term: 5, leader: 1 }),
            Message::TermQuery(TermQuery { term: 0, nonce: 0x0123_4567_89ab_cdef }),
            Message::TermAnswer(TermAnswer { term: 12, nonce: u64::MAX, repairing: true }),
        ]
    }

    #[test]
    fn the_samples_cover_every_kind() {
        let mut kinds: Vec<u8> = samples().iter().map(kind).collect();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds, (1..=LAST_KIND).collect::<Vec<u8>>());
    }

    #[test]
    fn every_message_round_trips_with_its_header() {
        let mut buffer = Vec::new();
        for message in samples() {
            encode(HEADER, &message, &mut buffer);
            assert_eq!(buffer[0], VERSION);
            assert_eq!(buffer[1..9], HEADER.cluster_id.to_le_bytes(), "the cluster id follows the version");
            assert_eq!(decode(&buffer), Ok((HEADER, message)));
        }
    }

    #[test]
    fn every_truncation_and_extension_is_rejected() {
        let mut buffer = Vec::new();
        for message in samples() {
            encode(HEADER, &message, &mut buffer);
            for cut in 0..buffer.len() {
                assert!(decode(&buffer[..cut]).is_err(), "{message:?} cut at {cut}");
            }
            let mut extended = buffer.clone();
            extended.push(0);
            assert!(decode(&extended).is_err());
        }
    }

    #[test]
    fn an_older_version_is_refused() {
        let mut buffer = Vec::new();
        encode(HEADER, &Message::TimeoutNow(TimeoutNow { term: 1, leader: 3 }), &mut buffer);
        buffer[0] = 2;
        assert!(decode(&buffer).unwrap_err().0.contains("unsupported version 2"));
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
        encode(HEADER, &Message::AppendEntries(empty), &mut buffer);
        let count_at = buffer.len() - 4;
        buffer[count_at..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&buffer).unwrap_err().0.contains("cannot fit"));
    }

    #[test]
    fn entries_past_the_largest_index_are_refused() {
        let mut buffer = Vec::new();
        let wrapping = AppendEntries {
            term: 1,
            leader: 0,
            prev_log_index: u64::MAX,
            prev_log_term: 1,
            entries: vec![Entry { term: 1, index: 0, data: vec![1] }],
            leader_commit: 0,
            read_round: 0,
        };
        encode(HEADER, &Message::AppendEntries(wrapping), &mut buffer);
        assert!(decode(&buffer).unwrap_err().0.contains("contiguous"));
    }
}
