#!/usr/bin/env python3
"""Disk use over a long run of puts and gets stays bounded.

Starts a fresh 3-node cluster (ports 7570-7575, data in run/disk-bound/, fsync
on, default snapshot threshold and segment size), drives it with
``raftmq-bench --put-get`` (64 clients x 16 in flight, alternating
put_message and get_message) for ``--duration-s``, and samples every node's
``disk_bytes`` once a second. Prints the operations done, the log's growth
(last index) and the largest and last disk use per node: bounded means the
largest stays near the snapshot threshold plus a segment plus the state,
however many operations ran.

Usage: scripts/disk_bound.py [--duration-s 60]
"""

import argparse
import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY / "clients" / "python"))
from raftmq_client import request  # noqa: E402

RUN = REPOSITORY / "run" / "disk-bound"
PORTS = [7570, 7571, 7572]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration-s", type=float, default=60.0)
    options = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "--bin", "raftmq-node", "--bin", "raftmq-bench"],
                   cwd=REPOSITORY, check=True)
    shutil.rmtree(RUN, ignore_errors=True)
    RUN.mkdir(parents=True)
    config = RUN / "config.json"
    config.write_text(json.dumps({"addresses": [{"ip": "127.0.0.1", "port": p, "internal_port": p + 3} for p in PORTS]}))
    node = REPOSITORY / "target" / "release" / "raftmq-node"
    processes = [
        subprocess.Popen([str(node), str(config), str(i), "--data-dir", str(RUN / f"node-{i}.data")],
                         stdout=open(RUN / f"node-{i}.log", "wb"), stderr=subprocess.STDOUT)
        for i in range(3)
    ]
    samples: list[list[dict]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append([request(f"tcp://127.0.0.1:{port}", {"op": "status"}, 1000) or {} for port in PORTS])
            time.sleep(1.0)

    try:
        time.sleep(2)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        bench = subprocess.run(
            [str(REPOSITORY / "target" / "release" / "raftmq-bench"), "--config", str(config), "--clients", "64",
             "--window", "16", "--put-get", "--duration-s", str(options.duration_s)],
            check=True, capture_output=True, text=True)
        done.set()
        sampler.join()
        print(bench.stdout.strip())
        for index in range(3):
            disk = [row[index].get("disk_bytes", 0) for row in samples if row[index]]
            last = next(row[index] for row in reversed(samples) if row[index])
            print(f"node {index}: last_index={last['log_size']} snapshot_index={last['snapshot_index']} "
                  f"max_disk_bytes={max(disk)} last_disk_bytes={disk[-1]} samples={len(disk)}")
        timeline = [max(row[i].get("disk_bytes", 0) for i in range(3)) for row in samples]
        print("largest node's disk_bytes each 10 s (MB):",
              " ".join(f"{value / 1e6:.1f}" for value in timeline[::10]))
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)
        shutil.rmtree(RUN, ignore_errors=True)


if __name__ == "__main__":
    main()
