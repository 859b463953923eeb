#!/usr/bin/env python3
"""How long a cluster stops acknowledging writes while a damaged follower
repairs from it (docs/storage.md, "Repair from the cluster"). For each kind
of damage (a flipped byte in a synced log segment; a data directory wiped but
for IDENTITY), a fresh 3-node cluster of target/release/raftmq-node (free
loopback ports, data in a temporary directory) takes writes from one client
without pause; a follower is killed, damaged and restarted. Prints how long
after its restart it was repaired, and the longest and median gap between
acknowledged writes from half a second before the restart to a second after
the repair. A node that kept its term deposes the leader of its old term once
(one election), which is the longest gap.

Usage: scripts/repair_gap.py [--rounds 1]
"""

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY / "tests" / "python"))

from conftest import LocalCluster  # noqa: E402
from test_repair import flip_a_byte_in_a_synced_segment, wipe_all_but_identity  # noqa: E402


def writes_until_stopped(cluster: LocalCluster, acknowledged: list, stop: threading.Event) -> None:
    client = cluster.client()
    number = 0
    while not stop.is_set():
        try:
            if client.put_message("t", f"t-{number}"):
                acknowledged.append(time.monotonic())
        except Exception:  # a write whose outcome is unknown: the gap shows it
            pass
        number += 1


def measure(damage) -> str:
    cluster = LocalCluster(Path(tempfile.mkdtemp(prefix="raftmq-repair-gap-")), 3, ("--wal-segment-bytes", "4096"))
    try:
        cluster.start_all()
        leader = cluster.find_leader_course_style()
        if leader is None or not cluster.client().put_topic("t"):
            return f"{damage.__name__}: no leader"
        acknowledged: list[float] = []
        stop = threading.Event()
        writer = threading.Thread(target=writes_until_stopped, args=(cluster, acknowledged, stop), daemon=True)
        writer.start()
        while len(acknowledged) < 300:
            time.sleep(0.05)
        follower = next(index for index in range(3) if index != leader)
        directory = cluster.data_directory(follower)
        cluster.kill(follower)
        damage(directory)
        restarted = time.monotonic()
        cluster.start(follower)
        repaired = cluster.wait_until(lambda: (cluster.status(follower) or {}).get("repair") == "intact",
                                      timeout_s=30, interval_s=0.01)
        repaired_at = time.monotonic()
        time.sleep(1)
        stop.set()
        writer.join(5)
        if not repaired:
            return f"{damage.__name__}: not repaired within 30 s"
        window = [at for at in acknowledged if restarted - 0.5 <= at <= repaired_at + 1]
        gaps = sorted(later - earlier for earlier, later in zip(window, window[1:]))
        return (f"{damage.__name__}: repaired {repaired_at - restarted:.2f} s after the restart; "
                f"{len(window)} writes acknowledged meanwhile; longest gap {gaps[-1] * 1000:.0f} ms, "
                f"median {gaps[len(gaps) // 2] * 1000:.1f} ms")
    finally:
        cluster.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=1, help="measurements of each kind of damage")
    arguments = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "--bin", "raftmq-node"], cwd=REPOSITORY, check=True)
    for _ in range(arguments.rounds):
        for damage in (flip_a_byte_in_a_synced_segment, wipe_all_but_identity):
            print(measure(damage), flush=True)


if __name__ == "__main__":
    main()
