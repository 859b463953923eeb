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
import shutil
import subprocess
import threading
import time

from bench_cluster import BENCH, REPOSITORY, build, start, status, stop, write_config

RUN = REPOSITORY / "run" / "disk-bound"
PORTS = [7570, 7571, 7572]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration-s", type=float, default=60.0)
    options = parser.parse_args()
    build()
    shutil.rmtree(RUN, ignore_errors=True)
    RUN.mkdir(parents=True)
    config = write_config(RUN, PORTS)
    processes = start(config, RUN, [])
    samples: list[list[dict]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append([status(port) or {} for port in PORTS])
            time.sleep(1.0)

    try:
        time.sleep(2)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        bench = subprocess.run(
            [str(BENCH), "--config", str(config), "--clients", "64",
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
        stop(processes)
        shutil.rmtree(RUN, ignore_errors=True)


if __name__ == "__main__":
    main()
