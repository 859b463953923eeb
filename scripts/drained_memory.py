#!/usr/bin/env python3
"""Memory a node keeps after a drain: on a fresh 1-node cluster, put --count
messages of --message-kb (pipelined, 16 in flight), take them all, then
print the node's RSS and the log it holds (first_index, snapshot_index). The
entries kept below a snapshot are bounded in bytes (16 MiB) as well as in
count (4,096), so first_index trails snapshot_index by about 16 MiB of
entries, not by 4,096 large ones.

Usage: scripts/drained_memory.py [--count 2000] [--message-kb 64] [--node target/release/raftmq-node]
Compare two builds by running it once with each --node."""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
IN_FLIGHT = 16


def pipeline(socket, requests: list[dict]) -> None:
    """Every request on the DEALER, at most IN_FLIGHT waiting; each must succeed."""
    sent = answered = 0
    while answered < len(requests):
        while sent < len(requests) and sent - answered < IN_FLIGHT:
            socket.send_multipart([b"", json.dumps(dict(requests[sent], id=sent)).encode()])
            sent += 1
        reply = json.loads(socket.recv_multipart()[1])
        if not reply.get("success"):
            sys.exit(f"request {reply.get('id')} failed: {reply}")
        answered += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--message-kb", type=int, default=64)
    parser.add_argument("--node", type=Path, default=None, help="the raftmq-node binary (default: this build)")
    options = parser.parse_args()
    if options.node is not None:
        os.environ["RAFTMQ_NODE"] = str(options.node.resolve())
    sys.path.insert(0, str(REPOSITORY / "tests" / "python"))
    from conftest import LocalCluster, dealer  # noqa: E402 (imports pytest and zmq: after --help)
    from process_memory import rss_mb  # noqa: E402 (in tests/python, beside conftest)

    with tempfile.TemporaryDirectory() as directory:
        cluster = LocalCluster(Path(directory), 1)
        try:
            cluster.start_all()
            if not cluster.wait_until(lambda: (cluster.status(0) or {}).get("role") == "Leader"):
                sys.exit("no leader within 10 s")
            cluster.ask(0, {"op": "put_topic", "topic": "drained"})
            socket = dealer(cluster.endpoint(0), timeout_ms=20_000)
            message = "x" * (options.message_kb * 1024)
            pipeline(socket, [{"op": "put_message", "topic": "drained", "message": message}] * options.count)
            pid = cluster.processes[0].pid
            print(f"after {options.count} puts of {options.message_kb} KB: RSS {rss_mb(pid):.0f} MB")
            pipeline(socket, [{"op": "get_message", "topic": "drained"}] * options.count)
            socket.close()
            time.sleep(2)
            status = cluster.status(0)
            print(
                f"after taking them all: RSS {rss_mb(pid):.0f} MB; last_applied {status['last_applied']}, "
                f"first_index {status['first_index']}, snapshot_index {status['snapshot_index']}"
            )
        finally:
            cluster.close()


if __name__ == "__main__":
    main()
