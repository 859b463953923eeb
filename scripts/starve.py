#!/usr/bin/env python3
"""CPU starvation and leader stability (issue 9, part 2).

Starts two 3-node clusters on free loopback ports: one idle, one with a
client putting 1 request at a time. Then runs CPU hogs (`yes > /dev/null`,
at normal priority; two by default, enough to saturate both cores of the
reference machine) for the whole watch, and reports for each cluster the
leader changes, terms advanced and the followers that lost their leader
(the outside sign of missed heartbeats), as measured by raftmq-flood's
status polls every 50 ms (`--clients 0` only watches). Everything stops by
itself after --duration-s (at most 600 s); the clusters' data is deleted
unless --keep is given.

Usage: scripts/starve.py [--duration-s 60] [--hogs 2] [--no-hogs] [--keep]
                         [extra node options after --, e.g. -- --fsync false]"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY / "tests" / "python"))

from conftest import LocalCluster  # noqa: E402

FLOOD = REPOSITORY / "target" / "release" / "raftmq-flood"
NODE = REPOSITORY / "target" / "release" / "raftmq-node"


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration-s", type=float, default=60.0, help="how long the hogs run and the clusters are watched (default 60, at most 600)")
    parser.add_argument("--hogs", type=int, default=2, help="`yes > /dev/null` processes at normal priority (default 2)")
    parser.add_argument("--no-hogs", action="store_true", help="watch without hogs (the baseline)")
    parser.add_argument("--keep", action="store_true", help="keep the clusters' directories (logs and data)")
    parser.add_argument("node_options", nargs="*", help="options for every node, after --")
    arguments = parser.parse_args()
    if not 0 < arguments.duration_s <= 600:
        parser.error("--duration-s must be in (0, 600]")
    if not 0 <= arguments.hogs <= 64:
        parser.error("--hogs must be in [0, 64]")
    return arguments


def build() -> None:
    if not (FLOOD.exists() and NODE.exists()):
        subprocess.run(["cargo", "build", "--release", "--bin", "raftmq-node", "--bin", "raftmq-flood"],
                       cwd=REPOSITORY, check=True)


def started_cluster(directory: Path, node_options: list[str]) -> LocalCluster:
    directory.mkdir()
    cluster = LocalCluster(directory, 3, tuple(node_options))
    cluster.start_all()
    if cluster.find_leader_course_style() is None:
        raise RuntimeError(f"no leader in {directory} after start")
    return cluster


def watch(cluster: LocalCluster, clients: int, duration_s: float) -> subprocess.Popen:
    """raftmq-flood with `clients` logical clients of 1 request in flight."""
    command = [str(FLOOD), "--config", str(cluster.config_path), "--json", "--clients", str(clients),
               "--window", "1", "--sockets", "1", "--duration-s", str(duration_s), "--grace-s", "2",
               "--polls-out", str(cluster.directory / "polls.jsonl")]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def summary_of(name: str, watcher: subprocess.Popen, duration_s: float) -> dict:
    out, err = watcher.communicate(timeout=duration_s + 60)
    if watcher.returncode != 0:
        raise RuntimeError(f"{name}: raftmq-flood failed: {err.strip()}")
    return json.loads(out)


def print_summary(name: str, run: dict) -> None:
    leadership = run["leadership"]
    slowest_status_ms = max(node["latency_ms"]["max"] for node in leadership["status_polls"])
    status_timeouts = sum(node["timed_out"] for node in leadership["status_polls"])
    line = (f"{name}: term {run['settings']['term']} leader {run['settings']['leader']}: "
            f"terms_advanced={leadership['terms_advanced']} leader_changes={leadership['leader_changes']} "
            f"first_change_at_s={leadership['first_change_at_s']} "
            f"follower_lapses={leadership['follower_lapse_episodes']} ({leadership['follower_lapse_answers']} answers) "
            f"max_same_leader_gap_ms={leadership['max_same_leader_gap_ms']:.0f} "
            f"slowest_status_ms={slowest_status_ms:.0f} status_timeouts={status_timeouts}")
    if run["sent"]:
        line += (f" puts_ok={run['replies']['success']} of {run['sent']} good_puts_per_s={run['good_puts_per_s']:.0f} "
                 f"p50_ms={run['success_latency_ms']['p50']} p99_ms={run['success_latency_ms']['p99']} "
                 f"max_ms={run['success_latency_ms']['max']}")
    print(line, flush=True)


def main() -> int:
    arguments = parse_arguments()
    build()
    hogs = 0 if arguments.no_hogs else arguments.hogs
    root = Path(tempfile.mkdtemp(prefix="raftmq-starve-"))
    clusters, hog_processes = [], []
    summaries = {}
    try:
        idle = started_cluster(root / "idle", arguments.node_options)
        clusters.append(idle)
        loaded = started_cluster(root / "loaded", arguments.node_options)
        clusters.append(loaded)
        watchers = {"idle": watch(idle, 0, arguments.duration_s), "loaded": watch(loaded, 1, arguments.duration_s)}
        hog_processes = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) for _ in range(hogs)]
        print(f"# {hogs} hog(s) for {arguments.duration_s:.0f} s on {len(os.sched_getaffinity(0))} "
              f"cores; nodes: {' '.join(arguments.node_options) or 'default options'}", flush=True)
        summaries = {name: summary_of(name, watcher, arguments.duration_s) for name, watcher in watchers.items()}
    except Exception:
        print(f"# failed; logs in {root}", file=sys.stderr)
        raise
    finally:
        for hog in hog_processes:
            hog.kill()
            hog.wait(timeout=10)
        for cluster in clusters:
            cluster.close()
    for name, run in summaries.items():
        print_summary(name, run)
    if arguments.keep:
        print(f"# logs, status timelines (polls.jsonl) and data in {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
