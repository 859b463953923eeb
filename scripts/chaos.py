#!/usr/bin/env python3
"""Long chaos campaigns: many seeded runs of real raftmq-node clusters under
faults, each history checked (tests/python/chaos). Usage:

    scripts/chaos.py --runs 20 --duration 60            # 3- and 5-node runs alternate
    scripts/chaos.py --runs 1 --seed 1234 --nodes 5     # replay one seed's schedule

A failing run prints its seed and keeps its directory (node logs, history).
"""

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY / "tests" / "python"))
sys.path.insert(0, str(REPOSITORY / "clients" / "python"))

from chaos import NODE_ARGUMENTS  # noqa: E402
from chaos.driver import ChaosRun  # noqa: E402
from conftest import LocalCluster  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of faults per run")
    parser.add_argument("--nodes", default="3,5", help="cluster sizes, used in turn")
    parser.add_argument("--seed", type=int, default=None, help="first seed (default: from the clock)")
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--keep", action="store_true", help="keep every run's directory, not only failures")
    arguments = parser.parse_args()
    sizes = [int(size) for size in arguments.nodes.split(",")]
    first_seed = arguments.seed if arguments.seed is not None else int(time.time()) % 1_000_000
    root = Path(tempfile.mkdtemp(prefix="raftmq-chaos-"))
    failures = 0
    totals = {"operations": 0, "unknown": 0, "faults": 0}
    started = time.monotonic()
    for run in range(arguments.runs):
        seed = first_seed + run
        size = sizes[run % len(sizes)]
        directory = root / f"seed-{seed}-{size}nodes"
        directory.mkdir()
        cluster = LocalCluster(directory, size, NODE_ARGUMENTS)
        cluster.start_all()
        try:
            result = ChaosRun(cluster, seed, arguments.duration, clients=arguments.clients).run()
        finally:
            cluster.close()
        totals["operations"] += result.operations
        totals["unknown"] += result.unknown
        totals["faults"] += len(result.faults)
        kinds = sorted({fault.kind for fault in result.faults})
        verdict = "ok" if not result.problems else f"FAILED ({len(result.problems)} problems)"
        print(f"run {run + 1}/{arguments.runs} seed={seed} nodes={size}: {result.operations} operations "
              f"({result.unknown} unknown), {len(result.faults)} faults {kinds}: {verdict}", flush=True)
        if result.problems:
            failures += 1
            for problem in result.problems[:20]:
                print(f"    {problem}")
            print(f"    replay: scripts/chaos.py --runs 1 --seed {seed} --nodes {size} "
                  f"--duration {arguments.duration}; history and logs in {directory}")
        elif not arguments.keep:
            shutil.rmtree(directory, ignore_errors=True)
    elapsed = time.monotonic() - started
    print(f"{arguments.runs} runs, {failures} failed, {totals['operations']} operations checked "
          f"({totals['unknown']} of unknown outcome), {totals['faults']} faults, {elapsed:.0f} s")
    if failures == 0 and not arguments.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
