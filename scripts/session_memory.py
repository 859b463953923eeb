#!/usr/bin/env python3
"""Session memory after large replies: on a fresh 3-node cluster, --clients
clients each take one --message-kb message with get_message in an
exactly-once session, until the queue is empty; then plain writes push the
log past a snapshot. Prints each node's RSS and snapshot file size: the
sessions' share of both is bounded by the session byte limit (16 MiB,
docs/protocol.md) however many clients took large messages.

Usage: scripts/session_memory.py [--clients 100] [--message-kb 900] [--node target/release/raftmq-node]
Compare two builds by running it once with each --node."""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--message-kb", type=int, default=900)
    parser.add_argument("--node", type=Path, default=None, help="the raftmq-node binary (default: this build)")
    options = parser.parse_args()
    if options.node is not None:
        os.environ["RAFTMQ_NODE"] = str(options.node.resolve())
    sys.path.insert(0, str(REPOSITORY / "tests" / "python"))
    from conftest import LocalCluster  # noqa: E402 (imports pytest and zmq: after --help)

    with tempfile.TemporaryDirectory() as directory:
        arguments = ("--snapshot-threshold-bytes", "4194304", "--request-deadline-ms", "5000")
        cluster = LocalCluster(Path(directory), 3, arguments)
        cluster.start_all()
        try:
            run(cluster, options)
        finally:
            cluster.close()


def run(cluster, options) -> None:
    from process_memory import rss_mb  # in tests/python, which main put on sys.path

    leader = cluster.find_leader_course_style()
    if leader is None:
        raise SystemExit("no leader was elected")
    cluster.ask(leader, {"op": "put_topic", "topic": "big"})
    message = "x" * (options.message_kb * 1024)
    for _ in range(options.clients):
        reply = cluster.ask(leader, {"op": "put_message", "topic": "big", "message": message}, 10_000)
        assert reply == {"success": True}, reply
    for client in range(options.clients):
        request = {"op": "get_message", "topic": "big", "client_id": f"client-{client}", "seq": 1}
        reply = cluster.ask(leader, request, 10_000)
        assert reply is not None and reply["success"], reply
    # 300 log entries of 20 KB (puts to a topic that does not exist, so
    # refused and not stored): past the 4 MiB snapshot threshold, so the last
    # snapshot holds the empty queue and the sessions.
    for _ in range(300):
        cluster.ask(leader, {"op": "put_message", "topic": "absent", "message": "y" * 20_000}, 10_000)
    time.sleep(3)
    print(f"{options.clients} clients each took a {options.message_kb} KB message; binary {cluster_binary()}")
    for index in range(cluster.size):
        snapshot = cluster.data_directory(index) / "snapshot"
        size = snapshot.stat().st_size if snapshot.exists() else 0
        status = cluster.status(index)
        print(f"node {index}: RSS {rss_mb(cluster.processes[index].pid):.0f} MB, snapshot {size} bytes "
              f"(through index {status['snapshot_index']} of {status['last_applied']})")


def cluster_binary() -> str:
    from conftest import node_binary

    return str(node_binary())


if __name__ == "__main__":
    main()
