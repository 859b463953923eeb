"""The chaos driver: a cluster of real raftmq-node processes, concurrent
clients recording every operation, and faults from a seeded schedule (kill -9
and restart, SIGSTOP/SIGCONT, partitions, one-way links, leadership
transfers, SIGTERM handovers). After the faults it heals the cluster, drains
every topic, and checks the whole history (chaos.checker).

The schedule is a function of the seed; the timing of real processes is
not, so a seed replays the same faults, not the same interleaving. Every
run writes its history, so a failure can be studied offline.
"""

from __future__ import annotations

import itertools
import json
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from raftmq_client import request

from .checker import check_history

#: How long a client keeps retrying one operation before calling its
#: outcome unknown.
OPERATION_DEADLINE_S = 6.0
ATTEMPT_TIMEOUT_MS = 500
#: Errors after which the request certainly was not applied.
NOT_APPLIED = {"not_leader", "storage_failed", "busy"}
#: Errors (and no reply) after which the outcome is unknown.
UNKNOWN = {"timeout", "leader_changed"}


@dataclass
class Fault:
    at_s: float
    kind: str
    duration_s: float
    choice: float  # picks the node, or the split, when the fault starts
    target: Optional[int] = None
    detail: str = ""


def schedule(seed: int, duration_s: float) -> list[Fault]:
    """Faults one after another with healthy gaps between, all from the seed."""
    rng = random.Random(seed)
    kinds = ["kill", "kill_leader", "stop", "stop_leader", "partition", "isolate_leader", "deaf", "mute",
             "transfer", "terminate_leader"]
    faults, clock = [], rng.uniform(0.5, 1.5)
    while clock < duration_s - 1.0:
        duration = rng.uniform(0.3, 2.5)
        faults.append(Fault(clock, rng.choice(kinds), duration, rng.random()))
        clock += duration + rng.uniform(0.3, 1.2)
    return faults


@dataclass
class RunResult:
    seed: int
    nodes: int
    operations: int = 0
    unknown: int = 0
    faults: list[Fault] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    history_path: Optional[Path] = None


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.history: list[dict] = []
        self.start = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.start

    def add(self, record: dict) -> None:
        with self.lock:
            self.history.append(record)


class ChaosClient:
    """One sequential client. Writes in a session are retried with the same
    seq until an answer is certain; bare writes are tried once past any
    ambiguity, so their outcome may stay unknown (at most once)."""

    def __init__(self, name: str, cluster, recorder: Recorder, rng: random.Random, problems: list[str]):
        self.name = name
        self.cluster = cluster
        self.recorder = recorder
        self.rng = rng
        self.problems = problems
        self.seq = itertools.count(1)
        self.endpoint = cluster.endpoint(rng.randrange(cluster.size))

    def perform(self, payload: dict, session: bool) -> None:
        record = {"client": self.name, **payload, "call": self.recorder.now(), "return": None, "result": None}
        if session:
            payload = dict(payload, client_id=self.name, seq=next(self.seq))
            record["seq"] = payload["seq"]
        retry_when_unknown = session or payload["op"] == "get_topics"
        deadline = time.monotonic() + OPERATION_DEADLINE_S
        while time.monotonic() < deadline:
            reply = request(self.endpoint, payload, ATTEMPT_TIMEOUT_MS)
            error = None if reply is None else reply.get("error")
            if reply is None or error in UNKNOWN:
                self.endpoint = self.cluster.endpoint(self.rng.randrange(self.cluster.size))
                if retry_when_unknown:
                    continue
                break
            if error in NOT_APPLIED:
                self.endpoint = reply.get("leader") or self.cluster.endpoint(self.rng.randrange(self.cluster.size))
                time.sleep(0.02)
                continue
            if error is not None:
                self.problems.append(f"{self.name}: unexpected reply {reply} to {payload}")
                break
            record["return"] = self.recorder.now()
            record["result"] = result_of(payload["op"], reply)
            break
        self.recorder.add(record)


def result_of(op: str, reply: dict):
    if op == "get_message":
        return reply["message"] if reply["success"] else None
    if op == "get_topics":
        return reply["topics"]
    return reply["success"]


class ChaosRun:
    def __init__(self, cluster, seed: int, duration_s: float, clients: int = 6, topics: int = 3):
        self.cluster = cluster
        self.seed = seed
        self.duration_s = duration_s
        self.client_count = clients
        self.topics = [f"topic-{number}" for number in range(topics)]
        self.recorder = Recorder()
        self.problems: list[str] = []
        self.stop_clients = threading.Event()
        self.rng = random.Random(seed)
        self.stopped: set[int] = set()
        self.log: list[str] = []

    # -- faults ------------------------------------------------------------

    def rules(self, node: int, text: str) -> None:
        (self.cluster.directory / f"network-{node}.rules").write_text(text)

    def leader(self) -> Optional[int]:
        leaders = [node for node in self.cluster.running() if node not in self.stopped
                   and (self.cluster.status(node) or {}).get("role") == "Leader"]
        return leaders[0] if len(leaders) == 1 else None

    def pick(self, fault: Fault, prefer_leader: bool) -> int:
        live = [node for node in self.cluster.running() if node not in self.stopped]
        leader = self.leader() if prefer_leader else None
        if leader is not None:
            return leader
        return live[int(fault.choice * len(live))] if live else 0

    def inject(self, fault: Fault) -> None:
        size = self.cluster.size
        kind = fault.kind
        if kind in ("kill", "kill_leader"):
            fault.target = self.pick(fault, kind == "kill_leader")
            if fault.target in self.cluster.running():
                self.cluster.kill(fault.target)
        elif kind in ("stop", "stop_leader"):
            fault.target = self.pick(fault, kind == "stop_leader")
            if fault.target in self.cluster.running():
                self.cluster.processes[fault.target].send_signal(signal.SIGSTOP)
                self.stopped.add(fault.target)
        elif kind == "partition":
            nodes = list(range(size))
            random.Random(fault.choice).shuffle(nodes)
            minority = nodes[: (size - 1) // 2]
            majority = nodes[len(minority):]
            fault.detail = f"{minority} | {majority}"
            for node in range(size):
                other_side = majority if node in minority else minority
                words = " ".join(map(str, other_side))
                self.rules(node, f"in {words}\nout {words}\n")
        elif kind == "isolate_leader":
            fault.target = self.pick(fault, True)
            self.rules(fault.target, "in *\nout *\n")
        elif kind == "deaf":  # sends but hears nothing
            fault.target = self.pick(fault, fault.choice < 0.5)
            self.rules(fault.target, "in *\n")
        elif kind == "mute":  # hears but nothing it sends arrives
            fault.target = self.pick(fault, fault.choice < 0.5)
            self.rules(fault.target, "out *\n")
        elif kind == "transfer":
            fault.target = self.leader()
            if fault.target is not None:
                to = (fault.target + 1 + int(fault.choice * (size - 1))) % size
                reply = self.cluster.ask(fault.target, {"op": "transfer_leader", "to": to}, timeout_ms=2000)
                fault.detail = f"to {to}: {reply}"
        elif kind == "terminate_leader":
            fault.target = self.leader()
            if fault.target is not None:
                self.cluster.terminate(fault.target)

    def repair(self, fault: Fault) -> None:
        if fault.kind in ("kill", "kill_leader", "terminate_leader") and fault.target is not None:
            if fault.target not in self.cluster.running():
                self.cluster.start(fault.target)
        elif fault.kind in ("stop", "stop_leader") and fault.target in self.stopped:
            self.cluster.processes[fault.target].send_signal(signal.SIGCONT)
            self.stopped.discard(fault.target)
        elif fault.kind in ("partition", "isolate_leader", "deaf", "mute"):
            for node in range(self.cluster.size):
                self.rules(node, "")

    def heal_everything(self) -> None:
        for node in list(self.stopped):
            self.cluster.processes[node].send_signal(signal.SIGCONT)
        self.stopped.clear()
        for node in range(self.cluster.size):
            self.rules(node, "")
            if node not in self.cluster.running():
                self.cluster.start(node)

    def run_faults(self, faults: list[Fault]) -> None:
        start = time.monotonic()
        for fault in faults:
            time.sleep(max(0.0, fault.at_s - (time.monotonic() - start)))
            self.inject(fault)
            self.log.append(f"{fault.at_s:6.2f}s {fault.kind} node={fault.target} {fault.detail}".rstrip())
            time.sleep(fault.duration_s)
            self.repair(fault)

    # -- clients -----------------------------------------------------------

    def client_loop(self, client: ChaosClient) -> None:
        rng = client.rng
        while not self.stop_clients.is_set():
            topic = rng.choice(self.topics)
            session = rng.random() < 0.7
            draw = rng.random()
            if draw < 0.45:
                message = f"{client.name}-{rng.getrandbits(40):x}"
                client.perform({"op": "put_message", "topic": topic, "message": message}, session)
            elif draw < 0.80:
                client.perform({"op": "get_message", "topic": topic}, session)
            elif draw < 0.92:
                client.perform({"op": "get_topics"}, False)
            else:
                client.perform({"op": "put_topic", "topic": topic}, session)

    def drain(self) -> None:
        drainer = ChaosClient("drain", self.cluster, self.recorder, random.Random(self.seed), self.problems)
        for topic in self.topics:
            for _ in range(100_000):
                before = len(self.recorder.history)
                drainer.perform({"op": "get_message", "topic": topic}, True)
                last = self.recorder.history[before]
                if last["return"] is not None and last["result"] is None:
                    break
        drainer.perform({"op": "get_topics"}, False)

    def replicas_converge(self, timeout_s: float = 20.0) -> bool:
        def converged():
            statuses = [self.cluster.status(node) for node in range(self.cluster.size)]
            if any(status is None for status in statuses):
                return False
            applied = {status["last_applied"] for status in statuses}
            digests = {status["state_digest"] for status in statuses}
            return len(applied) == 1 and len(digests) == 1
        return self.cluster.wait_until(converged, timeout_s=timeout_s, interval_s=0.2)

    def run(self) -> RunResult:
        result = RunResult(self.seed, self.cluster.size)
        faults = schedule(self.seed, self.duration_s)
        if self.cluster.find_leader_course_style() is None:
            result.problems.append("no leader at start")
            return result
        setup = ChaosClient("setup", self.cluster, self.recorder, random.Random(self.seed), self.problems)
        for topic in self.topics:
            setup.perform({"op": "put_topic", "topic": topic}, True)
        threads = []
        for number in range(self.client_count):
            client = ChaosClient(f"c{number}", self.cluster, self.recorder,
                                 random.Random(self.seed * 1000 + number), self.problems)
            threads.append(threading.Thread(target=self.client_loop, args=(client,), daemon=True))
        for thread in threads:
            thread.start()
        self.run_faults(faults)
        remaining = self.duration_s - self.recorder.now()
        if remaining > 0:
            time.sleep(remaining)
        self.stop_clients.set()
        self.heal_everything()
        for thread in threads:
            thread.join(timeout=OPERATION_DEADLINE_S + 5)
        if not self.cluster.wait_until(lambda: self.leader() is not None, timeout_s=20):
            self.problems.append("no leader after healing")
        else:
            self.drain()
            if not self.replicas_converge():
                statuses = [self.cluster.status(node) for node in range(self.cluster.size)]
                self.problems.append(f"replicas did not converge: {statuses}")
        history = self.recorder.history
        result.faults = faults
        result.operations = len(history)
        result.unknown = sum(1 for record in history if record["return"] is None)
        result.problems = self.problems + check_history(history)
        result.history_path = self.cluster.directory / f"history-seed{self.seed}-{self.cluster.size}nodes.json"
        result.history_path.write_text(json.dumps({"seed": self.seed, "faults": self.log, "history": history}))
        return result
