"""Leadership under partitions: ReadIndex reads, PreVote with CheckQuorum,
and leadership transfer (by request and on SIGTERM). Partitions act on the
real processes through the nodes' test-only network fault switch."""

import time

import pytest

NETWORK_FAULTS = ("--inject-network-faults", "{directory}/network-{index}.rules")


def cut_off(cluster, node: int) -> None:
    """Drop every peer message to and from ``node`` (clients still reach it)."""
    (cluster.directory / f"network-{node}.rules").write_text("in *\nout *\n")
    time.sleep(0.1)  # the nodes re-read the rules every 10 ms


def heal(cluster) -> None:
    for node in range(cluster.size):
        (cluster.directory / f"network-{node}.rules").write_text("")
    time.sleep(0.1)


def other_leader(cluster, old: int):
    leaders = [node for node in cluster.leaders() if node != old]
    return leaders[0] if len(leaders) == 1 else None


def test_reads_are_served_without_a_log_write(make_cluster):
    cluster = make_cluster(3)
    leader = cluster.find_leader_course_style()
    assert leader is not None
    assert cluster.ask(leader, {"op": "put_topic", "topic": "a"}) == {"success": True}
    log_size = cluster.status(leader)["log_size"]
    for _ in range(20):
        assert cluster.ask(leader, {"op": "get_topics"}) == {"success": True, "topics": ["a"]}
    assert cluster.status(leader)["log_size"] == log_size, "ReadIndex reads append nothing"
    follower = next(node for node in range(3) if node != leader)
    refused = cluster.ask(follower, {"op": "get_topics"})
    assert refused["error"] == "not_leader" and refused["leader"] == cluster.endpoint(leader)


def test_a_leader_cut_off_from_its_majority_never_answers_a_read_with_stale_data(make_cluster):
    cluster = make_cluster(3, *NETWORK_FAULTS)
    old = cluster.find_leader_course_style()
    assert old is not None
    assert cluster.ask(old, {"op": "put_topic", "topic": "before"}) == {"success": True}
    cut_off(cluster, old)
    # Until CheckQuorum makes it step down, the old leader still believes it
    # leads; it must answer timeout (or, once it stepped down, not_leader).
    reply = cluster.ask(old, {"op": "get_topics"}, timeout_ms=3000)
    assert reply["success"] is False and reply["error"] in ("timeout", "not_leader"), reply
    assert cluster.wait_until(lambda: other_leader(cluster, old) is not None, timeout_s=10)
    new = other_leader(cluster, old)
    assert cluster.ask(new, {"op": "put_topic", "topic": "after"}) == {"success": True}
    for _ in range(5):
        reply = cluster.ask(old, {"op": "get_topics"}, timeout_ms=3000)
        assert reply["success"] is False, f"the cut-off node served a read: {reply}"
    heal(cluster)
    assert cluster.wait_until(lambda: cluster.status(old)["leader"] == new, timeout_s=10)
    assert cluster.ask(new, {"op": "get_topics"}) == {"success": True, "topics": ["before", "after"]}


@pytest.mark.parametrize("pre_vote", ["true", "false"])
def test_a_returning_node_does_not_depose_a_healthy_leader(make_cluster, pre_vote):
    """With PreVote and CheckQuorum (the default), a follower cut off for many
    election timeouts comes back without raising the term. Without PreVote it
    raises its term while alone and deposes the leader when it returns: the
    second case shows the test can tell the difference."""
    cluster = make_cluster(3, *NETWORK_FAULTS, "--pre-vote", pre_vote)
    leader = cluster.find_leader_course_style()
    assert leader is not None
    term = cluster.status(leader)["term"]
    follower = next(node for node in range(3) if node != leader)
    cut_off(cluster, follower)
    time.sleep(2.0)  # about ten election timeouts
    heal(cluster)
    time.sleep(1.0)
    statuses = [cluster.status(node) for node in range(3)]
    if pre_vote == "true":
        assert statuses[leader]["role"] == "Leader" and statuses[leader]["term"] == term, statuses
        assert all(status["term"] == term and status["leader"] == leader for status in statuses), statuses
    else:
        assert statuses[follower]["term"] > term or statuses[leader]["term"] > term, statuses


def test_transfer_leader_hands_over_on_request(make_cluster):
    cluster = make_cluster(3)
    leader = cluster.find_leader_course_style()
    assert leader is not None
    assert cluster.ask(leader, {"op": "put_topic", "topic": "t"}) == {"success": True}
    target = (leader + 1) % 3
    reply = cluster.ask(leader, {"op": "transfer_leader", "to": target, "id": 5}, timeout_ms=3000)
    assert reply == {"success": True, "id": 5}
    assert cluster.wait_until(lambda: cluster.leaders() == [target], timeout_s=5)
    assert cluster.ask(target, {"op": "get_topics"}) == {"success": True, "topics": ["t"]}
    not_leader = cluster.ask(leader, {"op": "transfer_leader", "to": leader})
    assert not_leader["error"] == "not_leader"
    invalid = cluster.ask(target, {"op": "transfer_leader", "to": 7})
    assert invalid["error"] == "bad_request"
    assert cluster.ask(target, {"op": "transfer_leader", "to": target}) == {"success": True}


def test_sigterm_on_the_leader_hands_leadership_over_before_exiting(make_cluster):
    cluster = make_cluster(3)
    leader = cluster.find_leader_course_style()
    assert leader is not None
    client = cluster.client()
    client.put_topic("rolling")
    for number in range(50):
        assert client.put_message("rolling", str(number))
    term = cluster.status(leader)["term"]
    assert cluster.terminate(leader) == 0
    log = (cluster.directory / f"node-{leader}.log").read_text()
    assert "handing leadership to node" in log, log[-2000:]
    target = int(log.split("handing leadership to node ")[1].split()[0])
    status = cluster.status(target)
    # TimeoutNow makes the target campaign at once: one election, one term up.
    assert status["role"] == "Leader" and status["term"] == term + 1, status
    assert [client.get_message("rolling") for _ in range(50)] == [str(number) for number in range(50)]


def test_sigterm_handover_in_a_two_node_cluster_gets_the_leaders_own_vote(make_cluster):
    """With two nodes the target needs the departing leader's vote, so the
    leader must stay until that vote is out."""
    cluster = make_cluster(2)
    leader = cluster.find_leader_course_style()
    assert leader is not None
    term = cluster.status(leader)["term"]
    assert cluster.terminate(leader) == 0
    target = 1 - leader
    log = (cluster.directory / f"node-{target}.log").read_text()
    assert f"Leader in term {term + 1}" in log, log[-2000:]
