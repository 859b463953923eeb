#!/usr/bin/env python3
"""Two node binaries side by side: the same raftmq-bench scenarios against a
fresh 3-node cluster of each (ports 7580-7585, data in run/ab-bench/),
rounds interleaved (A B, B A, ...) in one run so both see the same machine.
Prints each run and the median throughput per scenario.

Usage: scripts/ab_bench.py A_BINARY B_BINARY [--rounds 3] [--duration-s 5]
                           [--scenario CLIENTSxWINDOW ...]
"""

import argparse
import re
import shutil
import statistics
import subprocess
import time

from bench_cluster import BENCH, REPOSITORY, status, stop, write_config

RUN = REPOSITORY / "run" / "ab-bench"
PORTS = [7580, 7581, 7582]


def start_cluster(binary: str):
    shutil.rmtree(RUN, ignore_errors=True)
    RUN.mkdir(parents=True)
    config = write_config(RUN, PORTS)
    processes = []
    for index in range(len(PORTS)):
        log = open(RUN / f"node-{index}.log", "ab")
        command = [binary, str(config), str(index), "--data-dir", str(RUN / f"node-{index}.data")]
        processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        statuses = [status(port) for port in PORTS]
        if all(statuses) and sum(s["role"] == "Leader" for s in statuses) == 1:
            return processes, config
        time.sleep(0.05)
    stop(processes)
    raise SystemExit(f"no leader with {binary}")


def measure(config, clients: int, window: int, duration_s: float) -> float:
    output = subprocess.run([str(BENCH), "--config", str(config), "--clients", str(clients), "--window", str(window),
                             "--duration-s", str(duration_s)], check=True, capture_output=True, text=True).stdout
    return float(re.search(r"throughput_ops_s=([\d.]+)", output).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration-s", type=float, default=5)
    parser.add_argument("--scenario", action="append", default=None, help="CLIENTSxWINDOW, e.g. 64x16")
    arguments = parser.parse_args()
    scenarios = [tuple(map(int, text.split("x"))) for text in (arguments.scenario or ["1x1", "64x1", "64x16"])]
    results = {(name, scenario): [] for name in "ab" for scenario in scenarios}
    for round_number in range(arguments.rounds):
        for name in ("a", "b") if round_number % 2 == 0 else ("b", "a"):
            processes, config = start_cluster(getattr(arguments, name))
            try:
                for scenario in scenarios:
                    value = measure(config, *scenario, arguments.duration_s)
                    results[(name, scenario)].append(value)
                    print(f"round {round_number + 1} {name} {scenario[0]}x{scenario[1]} throughput_ops_s={value:.0f}",
                          flush=True)
            finally:
                stop(processes)
    print(f"\n# A = {arguments.a}\n# B = {arguments.b}\n# median of {arguments.rounds} rounds, "
          f"{arguments.duration_s:g} s each")
    print("| clients x window | A ops/s | B ops/s | B vs A |\n|---|---|---|---|")
    for scenario in scenarios:
        a, b = (statistics.median(results[(name, scenario)]) for name in "ab")
        print(f"| {scenario[0]} x {scenario[1]} | {a:.0f} | {b:.0f} | {(b / a - 1) * 100:+.1f}% |")
    shutil.rmtree(RUN, ignore_errors=True)


if __name__ == "__main__":
    main()
