"""Peer frames encoded in Python from the layout in docs/protocol.md ("Peer
protocol"), independently of the Rust codec: the tests forge frames with it,
and it wrote the cargo-fuzz seeds in fuzz/seeds/peer_decoder/."""

import struct

VERSION = 3


def cluster_hash(addresses: list[dict]) -> int:
    """The cluster id: FNV-1a (64 bits) over "ip:port:internal_port;" of every address."""
    value = 0xCBF29CE484222325
    for address in addresses:
        for byte in f"{address['ip']}:{address['port']}:{address['internal_port']};".encode():
            value ^= byte
            value = (value * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


def header(cluster_id: int, sender: int, kind: int) -> bytes:
    return struct.pack("<BQIB", VERSION, cluster_id, sender, kind)


def request_vote(cluster_id, sender, term, last_log_index=0, last_log_term=0, transfer=False, kind=1) -> bytes:
    """Kind 1 (RequestVote), or kind 7 (PreVote): the candidate is the sender."""
    return header(cluster_id, sender, kind) + struct.pack("<QIQQB", term, sender, last_log_index, last_log_term, transfer)


def vote_response(cluster_id, sender, term, granted, kind=2) -> bytes:
    """Kind 2 (RequestVoteResponse), or kind 8 (PreVoteResponse)."""
    return header(cluster_id, sender, kind) + struct.pack("<QB", term, granted)


def append_entries(cluster_id, sender, term, prev_log_index=0, prev_log_term=0, leader_commit=0, read_round=0,
                   entries=()) -> bytes:
    """Kind 3; ``entries`` are (term, data) pairs, indexed from prev_log_index + 1."""
    body = struct.pack("<QIQQQQI", term, sender, prev_log_index, prev_log_term, leader_commit, read_round,
                       len(entries))
    for position, (entry_term, data) in enumerate(entries):
        body += struct.pack("<QQI", entry_term, prev_log_index + 1 + position, len(data)) + data
    return header(cluster_id, sender, 3) + body


def append_entries_response(cluster_id, sender, term, success, index, conflict_index=0, conflict_term=None,
                            read_round=0) -> bytes:
    body = struct.pack("<QBQQ", term, success, index, conflict_index)
    body += b"\x00" if conflict_term is None else struct.pack("<BQ", 1, conflict_term)
    return header(cluster_id, sender, 4) + body + struct.pack("<Q", read_round)


def install_snapshot(cluster_id, sender, term, last_index, last_term, offset, total_bytes, data: bytes) -> bytes:
    body = struct.pack("<QIQQQQI", term, sender, last_index, last_term, offset, total_bytes, len(data)) + data
    return header(cluster_id, sender, 5) + body


def install_snapshot_response(cluster_id, sender, term, last_index, received_bytes, done) -> bytes:
    return header(cluster_id, sender, 6) + struct.pack("<QQQB", term, last_index, received_bytes, done)


def timeout_now(cluster_id, sender, term) -> bytes:
    return header(cluster_id, sender, 9) + struct.pack("<QI", term, sender)


def term_query(cluster_id, sender, term, nonce) -> bytes:
    """Kind 10: a node repairing a lost term asks for the receiver's."""
    return header(cluster_id, sender, 10) + struct.pack("<QQ", term, nonce)


def term_answer(cluster_id, sender, term, nonce, repairing) -> bytes:
    """Kind 11: the answer, echoing the question's nonce."""
    return header(cluster_id, sender, 11) + struct.pack("<QQB", term, nonce, repairing)


def one_of_each_kind(cluster_id: int = 0x5EEDC1A57E120001) -> dict[str, bytes]:
    return {
        "request_vote": request_vote(cluster_id, 1, 9, 40, 8),
        "request_vote_response": vote_response(cluster_id, 2, 9, True),
        "append_entries": append_entries(cluster_id, 2, 9, 3, 7, 3, 1, [(9, b"\x02"), (9, b"")]),
        "append_entries_response": append_entries_response(cluster_id, 1, 9, False, 3, 2, 7),
        "install_snapshot": install_snapshot(cluster_id, 2, 9, 70, 8, 16, 40, b"snapshot chunk"),
        "install_snapshot_response": install_snapshot_response(cluster_id, 1, 9, 70, 30, False),
        "pre_vote": request_vote(cluster_id, 1, 10, 40, 8, True, kind=7),
        "pre_vote_response": vote_response(cluster_id, 2, 10, False, kind=8),
        "timeout_now": timeout_now(cluster_id, 2, 9),
        "term_query": term_query(cluster_id, 1, 0, 0x0123456789ABCDEF),
        "term_answer": term_answer(cluster_id, 2, 12, 0x0123456789ABCDEF, True),
    }


if __name__ == "__main__":
    import sys
    from pathlib import Path

    directory = Path(sys.argv[1])
    for name, frame in one_of_each_kind().items():
        (directory / name).write_bytes(frame)
