"""Leader stability under a client flood (issue 9, part 2): a leader flooded
with twice what it can commit keeps its term and its followers, answers the
surplus `busy` at once, and keeps committing.

"Twice the capacity" is measured, not assumed: the cluster's own throughput
C (puts/s, at a load it answers well within the request deadline D) gives
the number of requests it can answer within one deadline, C x D (Little's
law). The flood keeps 2 x C x D plain puts in flight for 20 s; a client
answered `busy` waits D before its next request, so each slot turns over
about once per D and the flood also offers about 2 x C puts/s. Every bound
below is relative to C or D, so a slow machine does not fail the test.

Measured figures (busy and success latency percentiles, good puts/s) are
printed by `scripts/bench.sh` and recorded in REPORT.md; here only what the
node must guarantee is asserted."""

import json
import math
import os
import subprocess
from pathlib import Path

from conftest import REPOSITORY

REQUEST_DEADLINE_MS = 500  # the node's default --request-deadline-ms
WINDOW = 64  # requests in flight per logical client, as in the notes' flood
FLOOD_S = 20.0
GRACE_S = 3.0  # replies owed after the flood; six request deadlines


def flood_binary() -> Path:
    configured = os.environ.get("RAFTMQ_FLOOD")
    if configured:
        return Path(configured)
    binary = REPOSITORY / "target" / "release" / "raftmq-flood"
    if not binary.exists():
        subprocess.run(["cargo", "build", "--release", "--bin", "raftmq-flood"], cwd=REPOSITORY, check=True)
    return binary


def run_flood(cluster, clients: int, window: int, duration_s: float, *options: str) -> dict:
    """Run raftmq-flood against ``cluster``; its JSON summary."""
    command = [
        str(flood_binary()), "--config", str(cluster.config_path), "--json",
        "--clients", str(clients), "--window", str(window), "--sockets", str(min(16, clients)),
        "--duration-s", str(duration_s), "--grace-s", str(GRACE_S), *options,
    ]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=duration_s + GRACE_S + 10)
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout)


def measured_capacity_per_s(cluster) -> float:
    """Good puts/s with 1,024 requests in flight, a load this cluster answers
    well within the request deadline (the run checks that it did; a node
    that admits fewer may answer some `busy`)."""
    run = run_flood(cluster, 64, 16, 3.0)
    answered = run["replies"]["success"] + run["replies"]["busy"]
    assert answered == run["sent"] and run["replies"]["success"] > 0, run
    assert run["success_latency_ms"]["p99"] < REQUEST_DEADLINE_MS, run
    return run["good_puts_per_s"]


def test_a_flood_at_twice_capacity_keeps_the_leader_and_is_answered_busy(make_cluster):
    cluster = make_cluster(3)
    assert cluster.find_leader_course_style() is not None
    capacity = measured_capacity_per_s(cluster)
    deadline_s = REQUEST_DEADLINE_MS / 1000
    clients = math.ceil(2 * capacity * deadline_s / WINDOW)
    run = run_flood(cluster, clients, WINDOW, FLOOD_S, "--busy-backoff-ms", str(REQUEST_DEADLINE_MS))
    summary = f"capacity {capacity:.0f} puts/s, flood {clients} x {WINDOW} in flight: {json.dumps(run)}"
    leadership = run["leadership"]
    # Raft §5.2: a leader whose heartbeats arrive keeps its followers, so no
    # election is started; client work must not delay the heartbeats.
    assert leadership["leader_changes"] == 0 and leadership["terms_advanced"] == 0, summary
    # Followers that briefly lost their leader (a heartbeat not read within
    # the lease, 150 ms) are reported in the summary, not asserted: on two
    # shared cores a compaction or a snapshot write can still delay one, and
    # PreVote with CheckQuorum keeps such a lapse from becoming an election
    # (asserted above). REPORT.md records the measured count.
    assert run["unanswered_at_end"] == 0 and run["no_reply_in_time"] == 0, f"requests went unanswered: {summary}"
    assert run["late_replies"] == 0 and run["unmatched_replies"] == 0, summary
    busy = run["busy_latency_ms"]
    assert busy["count"] > 0, f"the surplus was never answered busy: {summary}"
    # The surplus is answered `busy`, not left to time out: timeouts stay a
    # small share of what was answered.
    replies = run["replies"]
    assert replies["timeout"] <= (replies["success"] + replies["busy"]) / 10, f"too many timeouts: {summary}"
    # A closed-loop flood's latency is set by Little's law: requests in
    # flight / replies per second, whatever the node does, and on a machine
    # whose cores the flood itself saturates every reply waits its turn in
    # the socket; so latency is measured (scripts/bench.sh), not asserted.
    # Commits go on all along: every whole second brings at least a tenth
    # of the measured capacity.
    slowest_second = min(run["successes_per_second"])
    assert slowest_second >= capacity / 10, f"slowest second {slowest_second} puts: {summary}"
