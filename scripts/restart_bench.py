#!/usr/bin/env python3
"""Restart time of a 3-node cluster holding about a million entries.

Fills a fresh cluster (ports 7560-7565, data in run/restart-bench/) with
``--entries`` 100-byte puts, kills every node with -9, starts them again and
reports, per node, how long reading its data directory took (its
"recovered ..." log line) and, for the cluster, how long until a leader
served again with every entry applied. Run once with snapshots effectively
off (the whole log is replayed) and once with the default threshold (a
snapshot plus the log after it).

Usage: scripts/restart_bench.py [--entries 1000000]
"""

import argparse
import re
import shutil
import signal
import subprocess
import time

from bench_cluster import BENCH, REPOSITORY, build, start, status, stop, write_config

RUN = REPOSITORY / "run" / "restart-bench"


def wait_ready(ports: list[int], entries: int, timeout_s: float = 600) -> float:
    """Seconds until one leader leads and every node applied >= entries."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        statuses = [status(port) for port in ports]
        if all(statuses) and sum(s["role"] == "Leader" for s in statuses) == 1:
            if all(s["last_applied"] >= entries for s in statuses):
                return time.monotonic() - started
        time.sleep(0.02)
    raise SystemExit("the cluster did not come back in time")


def run_case(name: str, arguments: list[str], entries: int) -> None:
    shutil.rmtree(RUN, ignore_errors=True)
    RUN.mkdir(parents=True)
    ports = [7560, 7561, 7562]
    config = write_config(RUN, ports)
    processes = start(config, RUN, arguments)
    time.sleep(2)
    while True:
        leader_sizes = [s["log_size"] for s in map(status, ports) if s]
        if leader_sizes and max(leader_sizes) >= entries:
            break
        subprocess.run([str(BENCH), "--config", str(config), "--clients", "64", "--window", "16", "--duration-s", "5"],
                       check=True, stdout=subprocess.DEVNULL)
    wait_ready(ports, entries)
    before = [status(port) for port in ports]
    stop(processes, signal.SIGKILL)
    disk = sum(f.stat().st_size for f in RUN.rglob("*") if f.is_file() and ".data" in str(f))
    started = time.monotonic()
    processes = start(config, RUN, arguments)
    ready_s = wait_ready(ports, before[0]["last_applied"])
    recovered_ms = []
    for index in range(3):
        lines = re.findall(r"recovered .* in (\d+) ms", (RUN / f"node-{index}.log").read_text())
        recovered_ms.append(int(lines[-1]))
    stop(processes, signal.SIGKILL)
    print(f"{name}: entries={before[0]['log_size']} snapshot_index={before[0]['snapshot_index']} "
          f"data_bytes_all_nodes={disk} read_data_dir_ms={recovered_ms} "
          f"cluster_serving_again_s={ready_s:.2f} (start to leader with all applied; "
          f"measured {time.monotonic() - started:.2f} s wall)")
    shutil.rmtree(RUN, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000)
    options = parser.parse_args()
    build()
    run_case("log only (no snapshot)", ["--snapshot-threshold-bytes", str(1 << 40)], options.entries)
    run_case("snapshot + log tail", [], options.entries)


if __name__ == "__main__":
    main()
