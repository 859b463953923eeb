#!/usr/bin/env python3
"""Shared by the benchmark scripts: build the binaries, and run a fresh
3-node cluster on fixed loopback ports with its data under run/<name>/.

Usage: a module, not a command. Imported by scripts/disk_bound.py and
scripts/restart_bench.py (run those); run directly, it prints this text."""

import json
import signal
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY / "clients" / "python"))
from raftmq_client import request  # noqa: E402

NODE = REPOSITORY / "target" / "release" / "raftmq-node"
BENCH = REPOSITORY / "target" / "release" / "raftmq-bench"


def build() -> None:
    subprocess.run(["cargo", "build", "--release", "--bin", "raftmq-node", "--bin", "raftmq-bench"],
                   cwd=REPOSITORY, check=True)


def status(port: int):
    return request(f"tcp://127.0.0.1:{port}", {"op": "status"}, 1000)


def write_config(run: Path, ports: list[int]) -> Path:
    """A config for nodes serving clients on `ports` and peers on port + 3."""
    config = run / "config.json"
    config.write_text(json.dumps({"addresses": [{"ip": "127.0.0.1", "port": p, "internal_port": p + 3} for p in ports]}))
    return config


def start(config: Path, run: Path, arguments: list[str]) -> list[subprocess.Popen]:
    """Start every node of `config`, each with its data in run/node-<i>.data."""
    processes = []
    for index in range(len(json.loads(config.read_text())["addresses"])):
        log = open(run / f"node-{index}.log", "ab")
        command = [str(NODE), str(config), str(index), "--data-dir", str(run / f"node-{index}.data"), *arguments]
        processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))
    return processes


def stop(processes: list[subprocess.Popen], sig: int = signal.SIGTERM) -> None:
    for process in processes:
        process.send_signal(sig)
    for process in processes:
        process.wait(timeout=30)


if __name__ == "__main__":
    print(__doc__)
    raise SystemExit(0 if sys.argv[1:] in (["-h"], ["--help"]) else 2)
