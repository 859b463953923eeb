"""Process-level test harness: real raftmq-node processes from a generated
config.json on free loopback ports, as the course's test scripts run them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import pytest
import zmq

REPOSITORY = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPOSITORY / "clients" / "python"))

from raftmq_client import Client, request  # noqa: E402

#: Course timings: a cluster is probed 2.0 s after start; after a kill a new
#: leader must show within 2.0 s plus three probes 0.5 s apart; a client
#: waits 1 s for a reply.
STARTUP_WAIT_S = 2.0
PROBE_INTERVAL_S = 0.5
PROBES = 3
REPLY_TIMEOUT_MS = 1000


def node_binary() -> Path:
    configured = os.environ.get("RAFTMQ_NODE")
    if configured:
        return Path(configured)
    binary = REPOSITORY / "target" / "release" / "raftmq-node"
    if not binary.exists():
        subprocess.run(["cargo", "build", "--release", "--bin", "raftmq-node"], cwd=REPOSITORY, check=True)
    return binary


def free_ports(count: int) -> list[int]:
    """Ports the kernel hands out, held open together so they are distinct."""
    sockets = []
    try:
        for _ in range(count):
            held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.bind(("127.0.0.1", 0))
            sockets.append(held)
        return [held.getsockname()[1] for held in sockets]
    finally:
        for held in sockets:
            held.close()


def dealer(endpoint: str, timeout_ms: int = REPLY_TIMEOUT_MS) -> zmq.Socket:
    """A DEALER socket connected to ``endpoint``, for pipelined requests."""
    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.RCVTIMEO, timeout_ms)
    socket.connect(endpoint)
    return socket


def send_frames(cluster: "LocalCluster", node: int, frames: list[bytes]) -> None:
    """Send raw frames to ``node``'s peer port, as a peer's DEALER would."""
    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 1000)
    socket.connect(f"tcp://127.0.0.1:{cluster.addresses[node]['internal_port']}")
    for frame in frames:
        socket.send(frame)
    socket.close()  # LINGER lets the queued frames leave first


def send_puts(socket: zmq.Socket, topic: str, count: int) -> None:
    """``count`` pipelined put_message requests on a DEALER, ids 0..count-1."""
    for number in range(count):
        request = {"op": "put_message", "topic": topic, "message": "m", "id": number}
        socket.send_multipart([b"", json.dumps(request).encode()])


def keygen_binary() -> Path:
    """raftmq-keygen, built beside the node binary."""
    binary = node_binary().parent / "raftmq-keygen"
    if not binary.exists():
        subprocess.run(["cargo", "build", "--release", "--bin", "raftmq-keygen"], cwd=REPOSITORY, check=True)
    return binary


def make_key(secret_key_file: Path) -> str:
    """A new CURVE key pair: the secret in ``secret_key_file``; returns the public key (Z85)."""
    result = subprocess.run([str(keygen_binary()), str(secret_key_file)], capture_output=True, text=True, check=True)
    return result.stdout.strip()


class LocalCluster:
    def __init__(self, directory: Path, size: int, extra_arguments: tuple[str, ...] = (), keyed: bool = False):
        """``keyed``: every node gets a CURVE key pair (peers authenticate)."""
        self.directory = directory
        self.size = size
        self.extra_arguments = list(extra_arguments)
        ports = free_ports(2 * size)
        self.addresses = [
            {"ip": "127.0.0.1", "port": ports[2 * i], "internal_port": ports[2 * i + 1]} for i in range(size)
        ]
        if keyed:
            for index, address in enumerate(self.addresses):
                address["public_key"] = make_key(self.key_file(index))
            self.extra_arguments += ["--peer-key-file", str(directory / "node{index}.key")]
        self.config_path = directory / "config.json"
        self.config_path.write_text(json.dumps({"addresses": self.addresses}, indent=2))
        self.processes: list[Optional[subprocess.Popen]] = [None] * size
        self.log_files = []

    def endpoint(self, index: int) -> str:
        return f"tcp://127.0.0.1:{self.addresses[index]['port']}"

    def key_file(self, index: int) -> Path:
        return self.directory / f"node{index}.key"

    @property
    def endpoints(self) -> list[str]:
        return [self.endpoint(i) for i in range(self.size)]

    def start(self, index: int) -> None:
        assert self.processes[index] is None, f"node {index} is already running"
        log_file = open(self.directory / f"node-{index}.log", "ab")
        self.log_files.append(log_file)
        self.processes[index] = subprocess.Popen(
            [str(node_binary()), str(self.config_path), str(index)]
            + [argument.format(index=index, directory=self.directory) for argument in self.extra_arguments],
            # The default data directory is beside the config, in this directory.
            cwd=self.directory,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )

    def start_all(self) -> None:
        for index in range(self.size):
            self.start(index)

    def kill(self, index: int) -> None:
        """kill -9, as the course tests do."""
        process = self.processes[index]
        assert process is not None, f"node {index} is not running"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        self.processes[index] = None

    def terminate(self, index: int) -> int:
        process = self.processes[index]
        assert process is not None
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=10)
        self.processes[index] = None
        return code

    def data_directory(self, index: int) -> Path:
        """The node's default data directory (there is one per cluster id)."""
        found = sorted((self.directory / "raftmq-data").glob(f"*-node{index}"))
        assert len(found) == 1, f"expected one data directory for node {index}, found {found}"
        return found[0]

    def kill_all(self) -> None:
        """kill -9 every running node at once, then reap them."""
        running = [(index, self.processes[index]) for index in self.running()]
        for _, process in running:
            process.send_signal(signal.SIGKILL)
        for index, process in running:
            process.wait(timeout=10)
            self.processes[index] = None

    def leader_alone_with_topic(self, topic: str) -> int:
        """Elect a leader, create ``topic``, then kill every follower, so
        that writes to the leader can no longer commit; returns the leader."""
        leader = self.find_leader_course_style()
        assert leader is not None
        assert self.ask(leader, {"op": "put_topic", "topic": topic}) == {"success": True}
        for follower in [i for i in range(self.size) if i != leader]:
            self.kill(follower)
        return leader

    def running(self) -> list[int]:
        return [i for i, process in enumerate(self.processes) if process is not None]

    def status(self, index: int) -> Optional[dict]:
        return request(self.endpoint(index), {"op": "status"}, REPLY_TIMEOUT_MS)

    def ask(self, index: int, payload, timeout_ms: int = REPLY_TIMEOUT_MS) -> Optional[dict]:
        return request(self.endpoint(index), payload, timeout_ms)

    def leaders(self) -> list[int]:
        return [i for i in self.running() if (self.status(i) or {}).get("role") == "Leader"]

    def find_leader_course_style(self, initial_wait_s: float = STARTUP_WAIT_S) -> Optional[int]:
        """Wait, then probe up to three times 0.5 s apart for exactly one leader."""
        time.sleep(initial_wait_s)
        for probe in range(PROBES):
            leaders = self.leaders()
            if len(leaders) == 1:
                return leaders[0]
            if probe < PROBES - 1:
                time.sleep(PROBE_INTERVAL_S)
        return None

    def wait_until(self, condition, timeout_s: float = 10.0, interval_s: float = 0.05) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(interval_s)
        return condition()

    def client(self) -> Client:
        return Client(self.endpoints, timeout_ms=REPLY_TIMEOUT_MS)

    def close(self) -> None:
        for index in self.running():
            self.kill(index)
        for log_file in self.log_files:
            log_file.close()


@pytest.fixture
def make_cluster(tmp_path):
    clusters = []

    def make(size: int, *extra_arguments: str, start: bool = True, keyed: bool = False) -> LocalCluster:
        directory = tmp_path / f"cluster-{len(clusters)}"
        directory.mkdir()
        cluster = LocalCluster(directory, size, extra_arguments, keyed=keyed)
        clusters.append(cluster)
        if start:
            cluster.start_all()
        return cluster

    yield make
    for cluster in clusters:
        cluster.close()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach the tail of every node's log to the report."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        tmp = item.funcargs.get("tmp_path")
        if tmp:
            for log in sorted(Path(tmp).glob("cluster-*/node-*.log")):
                tail = log.read_text(errors="replace").splitlines()[-30:]
                report.sections.append((f"log {log.parent.name}/{log.name}", "\n".join(tail)))
