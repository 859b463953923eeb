"""Course part 3: log replication and fault tolerance."""

import time



def fill(cluster, leader, topics, messages_per_topic):
    for topic in topics:
        assert cluster.ask(leader, {"op": "put_topic", "topic": topic}) == {"success": True}
        for number in range(messages_per_topic):
            message = f"{topic}-{number}"
            reply = cluster.ask(leader, {"op": "put_message", "topic": topic, "message": message})
            assert reply == {"success": True}


def test_topics_and_messages_survive_two_successive_leader_kills(make_cluster):
    cluster = make_cluster(5)
    leader = cluster.find_leader_course_style()
    assert leader is not None
    fill(cluster, leader, ["orders", "events"], 6)
    for kill_round in range(2):
        cluster.kill(leader)
        leader = cluster.find_leader_course_style()
        assert leader is not None, f"no leader after kill {kill_round + 1}"
        assert cluster.ask(leader, {"op": "get_topics"}) == {"success": True, "topics": ["orders", "events"]}
        for topic in ["orders", "events"]:
            for number in range(3 * kill_round, 3 * kill_round + 3):
                reply = cluster.ask(leader, {"op": "get_message", "topic": topic})
                assert reply == {"success": True, "message": f"{topic}-{number}"}


def test_killed_follower_restarts_and_catches_up(make_cluster):
    cluster = make_cluster(3)
    leader = cluster.find_leader_course_style()
    assert leader is not None
    follower = (leader + 1) % 3
    cluster.kill(follower)
    fill(cluster, leader, ["t"], 50)
    cluster.start(follower)
    target = cluster.status(leader)["commit_index"]

    def caught_up():
        status = cluster.status(follower)
        return status is not None and status["last_applied"] >= target and status["leader"] == leader

    assert cluster.wait_until(caught_up, timeout_s=10)
    # The caught-up follower can now carry the data: stop the other follower
    # and the leader in turn; the restarted node plus one keeps everything.
    other = 3 - leader - follower
    cluster.kill(leader)
    new_leader = cluster.find_leader_course_style()
    assert new_leader in (follower, other)
    assert cluster.ask(new_leader, {"op": "get_message", "topic": "t"}) == {"success": True, "message": "t-0"}


def test_follower_redirects_to_the_leader(make_cluster):
    cluster = make_cluster(3)
    leader = cluster.find_leader_course_style()
    assert leader is not None
    for follower in [i for i in range(3) if i != leader]:
        for request in [
            {"op": "put_topic", "topic": "x"},
            {"op": "get_topics"},
            {"op": "put_message", "topic": "x", "message": "m"},
            {"op": "get_message", "topic": "x"},
        ]:
            reply = cluster.ask(follower, request)
            assert reply["success"] is False
            assert reply["error"] == "not_leader"
            assert reply["leader"] == cluster.endpoint(leader)


def test_client_follows_redirects_from_any_node(make_cluster):
    cluster = make_cluster(3)
    assert cluster.find_leader_course_style() is not None
    client = cluster.client()
    client.leader = cluster.endpoint(0)  # possibly a follower: must redirect
    assert client.put_topic("redirected") is True
    assert client.put_message("redirected", "m") is True
    assert client.get_topics() == ["redirected"]
    assert client.get_message("redirected") == "m"


def test_leader_that_lost_its_majority_neither_commits_nor_reads(make_cluster):
    cluster = make_cluster(3)
    leader = cluster.find_leader_course_style()
    assert leader is not None
    assert cluster.ask(leader, {"op": "put_topic", "topic": "t"}) == {"success": True}
    for follower in [i for i in range(3) if i != leader]:
        cluster.kill(follower)
    for request in [
        {"op": "put_message", "topic": "t", "message": "lost"},
        {"op": "get_topics"},
        {"op": "get_message", "topic": "t"},
        {"op": "put_topic", "topic": "u"},
    ]:
        reply = cluster.ask(leader, request)
        # No reply within 1 s, or an explicit error: never a success.
        assert reply is None or (reply["success"] is False and "error" in reply), reply
    status = cluster.status(leader)
    assert status["commit_index"] == status["last_applied"]


def test_uncommitted_write_gets_timeout_then_commits_nothing(make_cluster):
    cluster = make_cluster(3, "--check-quorum", "false", "--request-deadline-ms", "300")
    leader = cluster.find_leader_course_style()
    assert leader is not None
    assert cluster.ask(leader, {"op": "put_topic", "topic": "t"}) == {"success": True}
    commit_before = cluster.status(leader)["commit_index"]
    for follower in [i for i in range(3) if i != leader]:
        cluster.kill(follower)
    reply = cluster.ask(leader, {"op": "put_message", "topic": "t", "message": "m", "id": 5})
    assert reply["success"] is False and reply["error"] == "timeout" and reply["id"] == 5
    assert cluster.status(leader)["commit_index"] == commit_before


def test_writes_keep_flowing_while_one_follower_is_down(make_cluster):
    cluster = make_cluster(3)
    leader = cluster.find_leader_course_style()
    assert leader is not None
    cluster.kill((leader + 2) % 3)
    started = time.monotonic()
    fill(cluster, leader, ["t"], 20)
    assert time.monotonic() - started < 20 * 1.0
    assert cluster.ask(leader, {"op": "get_message", "topic": "t"}) == {"success": True, "message": "t-0"}


def test_waiting_write_gets_leader_changed_when_leader_steps_down(make_cluster):
    # Long election timeouts make the order certain: the write is pending well
    # before CheckQuorum (one to two election timeouts after the followers
    # die) deposes the leader, and well before its 10 s deadline.
    cluster = make_cluster(
        3,
        "--election-timeout-min-ms", "1000",
        "--election-timeout-max-ms", "1200",
        "--request-deadline-ms", "10000",
    )
    leader = cluster.find_leader_course_style(initial_wait_s=3.0)
    assert leader is not None
    assert cluster.ask(leader, {"op": "put_topic", "topic": "t"}) == {"success": True}
    for follower in [i for i in range(3) if i != leader]:
        cluster.kill(follower)
    reply = cluster.ask(leader, {"op": "put_message", "topic": "t", "message": "m", "id": "w"}, timeout_ms=5000)
    assert reply["success"] is False
    assert reply["error"] == "leader_changed", reply
    assert reply["leader"] is None and reply["id"] == "w"
    assert cluster.status(leader)["role"] != "Leader"
