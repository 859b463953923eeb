"""Course part 2: status and leader election."""

import json
import signal
import time

from conftest import STARTUP_WAIT_S, dealer, send_puts

STATUS_KEYS = {
    "role", "term", "leader", "commit_index", "last_applied", "log_size",
    "first_index", "snapshot_index", "disk_bytes", "disk_syncs", "storage", "state_digest", "repair",
}


def test_status_has_the_documented_format(make_cluster):
    cluster = make_cluster(3)
    time.sleep(STARTUP_WAIT_S)
    for index in range(3):
        status = cluster.status(index)
        assert set(status) == STATUS_KEYS
        assert status["role"] in {"Leader", "Follower", "Candidate"}
        assert isinstance(status["term"], int) and status["term"] >= 1
        assert status["leader"] is None or status["leader"] in range(3)
        for key in ["commit_index", "last_applied", "log_size", "first_index", "snapshot_index", "disk_bytes"]:
            assert isinstance(status[key], int) and status[key] >= 0
        assert status["last_applied"] <= status["commit_index"] <= status["log_size"]
        assert 1 <= status["first_index"] <= status["log_size"] + 1
        assert status["storage"] == "ok"
        assert status["repair"] == "intact"
        assert status["disk_bytes"] > 0


def test_status_answers_immediately_after_start_even_without_leader(make_cluster):
    cluster = make_cluster(3, start=False)
    cluster.start(0)
    assert cluster.wait_until(lambda: cluster.status(0) is not None, timeout_s=5)
    time.sleep(0.5)
    status = cluster.status(0)
    assert status["role"] in {"Follower", "Candidate"}
    assert status["leader"] is None


def test_single_node_is_leader_also_after_restart(make_cluster):
    cluster = make_cluster(1)
    assert cluster.find_leader_course_style() == 0
    cluster.kill(0)
    cluster.start(0)
    assert cluster.find_leader_course_style() == 0


def test_five_nodes_elect_exactly_one_leader_per_term(make_cluster):
    cluster = make_cluster(5)
    leader = cluster.find_leader_course_style()
    assert leader is not None
    statuses = [cluster.status(i) for i in range(5)]
    leader_term = statuses[leader]["term"]
    for index, status in enumerate(statuses):
        if index != leader:
            assert status["role"] == "Follower"
            assert status["leader"] == leader
            assert status["term"] == leader_term


def test_killed_leader_is_replaced_by_another_node(make_cluster):
    cluster = make_cluster(5)
    old_leader = cluster.find_leader_course_style()
    assert old_leader is not None
    old_term = cluster.status(old_leader)["term"]
    cluster.kill(old_leader)
    new_leader = cluster.find_leader_course_style()
    assert new_leader is not None and new_leader != old_leader
    assert cluster.status(new_leader)["term"] > old_term


def test_no_leader_while_majority_is_down_then_leader_again(make_cluster):
    cluster = make_cluster(5)
    leader = cluster.find_leader_course_style()
    assert leader is not None
    down = [leader] + [i for i in range(5) if i != leader][:2]
    for index in down:
        cluster.kill(index)
    assert cluster.find_leader_course_style() is None
    for index in down:
        cluster.start(index)
    assert cluster.find_leader_course_style() is not None


def test_leader_whose_followers_die_stops_claiming_leadership(make_cluster):
    cluster = make_cluster(5)
    leader = cluster.find_leader_course_style()
    assert leader is not None
    followers = [i for i in range(5) if i != leader]
    for index in followers[:3]:
        cluster.kill(index)
    assert cluster.find_leader_course_style() is None, "an isolated minority leader must step down"
    for index in followers[:3]:
        cluster.start(index)
    assert cluster.find_leader_course_style() is not None


def test_sigterm_and_sigint_stop_a_node_promptly(make_cluster):
    cluster = make_cluster(3)
    assert cluster.find_leader_course_style() is not None
    started = time.monotonic()
    assert cluster.terminate(0) == 0
    assert time.monotonic() - started < 2.0
    cluster.start(0)
    assert cluster.wait_until(lambda: cluster.status(0) is not None, timeout_s=5)
    process = cluster.processes[0]
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=2) == 0
    cluster.processes[0] = None


def test_sigterm_answers_every_waiting_request(make_cluster):
    # Requests that cannot commit (both followers are down) wait on the
    # leader; SIGTERM must still answer each one before the process exits.
    cluster = make_cluster(3, "--check-quorum", "false", "--request-deadline-ms", "30000")
    leader = cluster.leader_alone_with_topic("t")
    socket = dealer(cluster.endpoint(leader), timeout_ms=3000)
    send_puts(socket, "t", 20)
    assert cluster.wait_until(lambda: cluster.status(leader)["log_size"] >= 22, timeout_s=5), "requests not yet waiting"
    assert cluster.terminate(leader) == 0
    replies = [json.loads(socket.recv_multipart()[1]) for _ in range(20)]
    socket.close()
    assert sorted(reply["id"] for reply in replies) == list(range(20))
    for reply in replies:
        assert reply["success"] is False and reply["error"] == "leader_changed", reply
