#!/usr/bin/env python3
"""Failover time: with a client writing continuously to a 3-node cluster,
kill -9 the leader and measure the time from the kill until a write commits
on the new leader. With --sigterm, stop the leader with SIGTERM instead (a
rolling restart): it hands leadership over before exiting.

Usage: scripts/failover.py [rounds, default 10] [--sigterm] [extra node options...]
Example: scripts/failover.py 20 --sigterm --pre-vote false"""

import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY / "tests" / "python"))

from conftest import LocalCluster  # noqa: E402


def write_until_success(cluster, message, deadline_s=10.0):
    """Try every live node quickly until one commits the write; the time taken."""
    started = time.monotonic()
    while time.monotonic() - started < deadline_s:
        for index in cluster.running():
            reply = cluster.ask(index, {"op": "put_message", "topic": "f", "message": message}, timeout_ms=200)
            if reply == {"success": True}:
                return time.monotonic() - started
        time.sleep(0.005)
    raise RuntimeError("no write committed within the deadline")


def parse_arguments(arguments: list[str]) -> tuple[int, bool, tuple[str, ...]]:
    """(rounds, graceful, node options); --help prints the usage and exits."""
    if "-h" in arguments or "--help" in arguments:
        print(__doc__)
        raise SystemExit(0)
    rounds = 10
    if arguments and not arguments[0].startswith("-"):
        if not arguments[0].isdigit() or int(arguments[0]) == 0:
            raise SystemExit(f"failover.py: rounds must be a positive integer, not {arguments[0]!r} (see --help)")
        rounds = int(arguments.pop(0))
    graceful = "--sigterm" in arguments
    node_options = tuple(argument for argument in arguments if argument != "--sigterm")
    return rounds, graceful, node_options


def main():
    rounds, graceful, extra = parse_arguments(sys.argv[1:])
    gaps = []
    with tempfile.TemporaryDirectory() as directory:
        cluster = LocalCluster(Path(directory), 3, extra)
        cluster.start_all()
        try:
            leader = cluster.find_leader_course_style(1.0)
            assert cluster.ask(leader, {"op": "put_topic", "topic": "f"})["success"]
            for round_number in range(rounds):
                leader = cluster.leaders()[0]
                write_until_success(cluster, f"before-{round_number}")
                if graceful:
                    process = cluster.processes[leader]
                    process.send_signal(signal.SIGTERM)
                    gap = write_until_success(cluster, f"after-{round_number}")
                    process.wait(timeout=10)
                    cluster.processes[leader] = None
                else:
                    cluster.kill(leader)
                    gap = write_until_success(cluster, f"after-{round_number}")
                gaps.append(gap)
                how = "stopped (SIGTERM)" if graceful else "killed"
                print(f"round {round_number}: {how} node {leader}, write committed again after {gap * 1000:.0f} ms")
                cluster.start(leader)
                time.sleep(1.0)
        finally:
            cluster.close()
    gaps.sort()
    print(
        f"failover over {rounds} rounds: median {statistics.median(gaps) * 1000:.0f} ms, "
        f"min {gaps[0] * 1000:.0f} ms, max {gaps[-1] * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
