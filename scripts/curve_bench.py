#!/usr/bin/env python3
"""What CURVE on the peer port costs: the same 3-node cluster (ports
7570-7575, data in run/curve-bench/) with unauthenticated peers and with
CURVE peers, rounds interleaved in one run so both see the same machine.
Each round starts a fresh cluster and runs raftmq-bench's scenarios
(100-byte durable puts) for --duration-s seconds each; the table gives the
median over rounds of throughput and p50/p99 latency, and CURVE's change.

Usage: scripts/curve_bench.py [--rounds 3] [--duration-s 5]
"""

import argparse
import json
import re
import shutil
import statistics
import subprocess
import time

from bench_cluster import BENCH, NODE, REPOSITORY, status, stop, write_config

RUN = REPOSITORY / "run" / "curve-bench"
PORTS = [7570, 7571, 7572]
SCENARIOS = [(1, 1), (64, 1), (64, 16)]
KEYGEN = REPOSITORY / "target" / "release" / "raftmq-keygen"


def build() -> None:
    subprocess.run(["cargo", "build", "--release", "--bin", "raftmq-node", "--bin", "raftmq-bench",
                    "--bin", "raftmq-keygen"], cwd=REPOSITORY, check=True)


def fresh_cluster(curve: bool):
    """Start a new cluster; its processes and config file."""
    shutil.rmtree(RUN, ignore_errors=True)
    RUN.mkdir(parents=True)
    config = write_config(RUN, PORTS)
    arguments = []
    if curve:
        subprocess.run([str(KEYGEN), "--cluster", str(config), "--out-dir", str(RUN / "keys")],
                       check=True, stdout=subprocess.DEVNULL)
        config = RUN / "keys" / "config.json"
        assert all("public_key" in address for address in json.loads(config.read_text())["addresses"])
    processes = []
    for index in range(len(PORTS)):
        # Each node its own key file, so not bench_cluster.start.
        extra = ["--peer-key-file", str(RUN / "keys" / f"node{index}.key")] if curve else []
        log = open(RUN / f"node-{index}.log", "ab")
        command = [str(NODE), str(config), str(index), "--data-dir", str(RUN / f"node-{index}.data"), *extra]
        processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))
    return processes, config


def wait_for_leader(timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        statuses = [status(port) for port in PORTS]
        if all(statuses) and sum(s["role"] == "Leader" for s in statuses) == 1:
            return
        time.sleep(0.05)
    raise SystemExit("no leader")


def measure(config, clients: int, window: int, duration_s: float) -> dict:
    output = subprocess.run([str(BENCH), "--config", str(config), "--clients", str(clients), "--window", str(window),
                             "--duration-s", str(duration_s)], check=True, capture_output=True, text=True).stdout
    fields = dict(re.findall(r"(\w+)=([\d.]+)", output))
    return {"throughput": float(fields["throughput_ops_s"]), "p50": float(fields["p50_ms"]),
            "p99": float(fields["p99_ms"]), "errors": int(fields["errors"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration-s", type=float, default=5)
    arguments = parser.parse_args()
    build()
    results = {(mode, scenario): [] for mode in ("plain", "curve") for scenario in SCENARIOS}
    for round_number in range(arguments.rounds):
        for mode in ("plain", "curve") if round_number % 2 == 0 else ("curve", "plain"):
            processes, config = fresh_cluster(mode == "curve")
            try:
                wait_for_leader()
                for scenario in SCENARIOS:
                    result = measure(config, *scenario, arguments.duration_s)
                    results[(mode, scenario)].append(result)
                    print(f"round {round_number + 1} {mode:5} clients={scenario[0]} window={scenario[1]} "
                          f"throughput_ops_s={result['throughput']:.0f} p50_ms={result['p50']:.3f} "
                          f"p99_ms={result['p99']:.3f} errors={result['errors']}", flush=True)
            finally:
                stop(processes)
    print(f"\n# median of {arguments.rounds} rounds, {arguments.duration_s:g} s each, 3 nodes on loopback, "
          "100-byte puts, fsync on")
    print("| clients x window | plain ops/s | CURVE ops/s | change | plain p50/p99 ms | CURVE p50/p99 ms |")
    print("|---|---|---|---|---|---|")
    for scenario in SCENARIOS:
        plain, curve = results[("plain", scenario)], results[("curve", scenario)]
        median = lambda runs, key: statistics.median(run[key] for run in runs)  # noqa: E731
        change = (median(curve, "throughput") / median(plain, "throughput") - 1) * 100
        print(f"| {scenario[0]} x {scenario[1]} | {median(plain, 'throughput'):.0f} | {median(curve, 'throughput'):.0f} "
              f"| {change:+.1f}% | {median(plain, 'p50'):.3f} / {median(plain, 'p99'):.3f} "
              f"| {median(curve, 'p50'):.3f} / {median(curve, 'p99'):.3f} |")
    shutil.rmtree(RUN, ignore_errors=True)


if __name__ == "__main__":
    main()
