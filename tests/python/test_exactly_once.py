"""Exactly-once requests: a request carrying (client_id, seq) is applied at
most once however often it is retried, and a retry gets the first reply
(Raft dissertation §6.3)."""

import json

from conftest import dealer


def session(payload: dict, client_id: str, seq: int) -> dict:
    return dict(payload, client_id=client_id, seq=seq)


def drain(cluster, leader: int, topic: str) -> list[str]:
    messages = []
    while True:
        reply = cluster.ask(leader, {"op": "get_message", "topic": topic})
        if not reply["success"]:
            return messages
        messages.append(reply["message"])


def test_a_retried_put_is_enqueued_once_and_a_retried_get_pops_once(make_cluster):
    cluster = make_cluster(3)
    leader = cluster.find_leader_course_style()
    assert leader is not None
    assert cluster.ask(leader, session({"op": "put_topic", "topic": "t"}, "a", 1)) == {"success": True}
    put = session({"op": "put_message", "topic": "t", "message": "only"}, "a", 2)
    assert cluster.ask(leader, put) == {"success": True}
    assert cluster.ask(leader, put) == {"success": True}, "the retry gets the first reply"
    assert cluster.ask(leader, {"op": "put_message", "topic": "t", "message": "second"}) == {"success": True}
    get = session({"op": "get_message", "topic": "t"}, "b", 1)
    assert cluster.ask(leader, get) == {"success": True, "message": "only"}
    assert cluster.ask(leader, get) == {"success": True, "message": "only"}, "not a second pop"
    stale = cluster.ask(leader, session({"op": "put_message", "topic": "t", "message": "x"}, "a", 1))
    assert stale["success"] is False and stale["error"] == "stale_seq"
    assert drain(cluster, leader, "t") == ["second"]


def test_retries_after_a_leader_crash_apply_each_request_once(make_cluster):
    """Forty clients each send one put; the leader is killed with the replies
    in flight; every client retries on the new leader until it gets an
    answer. Each message must then be in the topic exactly once."""
    cluster = make_cluster(3)
    leader = cluster.find_leader_course_style()
    assert leader is not None
    assert cluster.ask(leader, {"op": "put_topic", "topic": "crash"}) == {"success": True}
    socket = dealer(cluster.endpoint(leader))
    requests = [
        session({"op": "put_message", "topic": "crash", "message": f"m{number}"}, f"client-{number}", 1)
        for number in range(40)
    ]
    for request in requests:
        socket.send_multipart([b"", json.dumps(request).encode()])
    socket.recv_multipart()  # at least one is applied before the crash
    cluster.kill(leader)
    socket.close()
    assert cluster.wait_until(lambda: len(cluster.leaders()) == 1, timeout_s=10)
    new_leader = cluster.leaders()[0]
    for request in requests:
        reply = None
        for _ in range(50):
            reply = cluster.ask(new_leader, request)
            if reply is not None and reply.get("error") not in ("timeout", "leader_changed", "not_leader"):
                break
        assert reply == {"success": True}, request
    messages = drain(cluster, new_leader, "crash")
    assert sorted(messages, key=lambda m: int(m[1:])) == [f"m{number}" for number in range(40)]


FLOOD_SESSIONS = 101_000  # past the 100,000 sessions a cluster keeps
FLOOD_WINDOW = 2_000


def test_a_flood_of_fresh_client_ids_cannot_make_a_retry_apply_twice(make_cluster):
    """Issue 11: 100,000 cheap requests under fresh client ids used to push
    a live client's session out, and its retry was applied a second time."""
    cluster = make_cluster(3)
    leader = cluster.find_leader_course_style()
    assert leader is not None
    assert cluster.ask(leader, {"op": "put_topic", "topic": "t"}) == {"success": True}
    put = session({"op": "put_message", "topic": "t", "message": "once"}, "victim", 1)
    assert cluster.ask(leader, put) == {"success": True}
    socket = dealer(cluster.endpoint(leader), timeout_ms=30_000)
    counts: dict[str, int] = {}
    sent = received = 0
    while received < FLOOD_SESSIONS:
        while sent < FLOOD_SESSIONS and sent - received < FLOOD_WINDOW:
            flood = session({"op": "put_topic", "topic": "t"}, f"flood-{sent}", 1)
            socket.send_multipart([b"", json.dumps(flood).encode()])
            sent += 1
        reply = json.loads(socket.recv_multipart()[-1])
        outcome = "success" if reply.get("success") else reply.get("error", json.dumps(reply))
        counts[outcome] = counts.get(outcome, 0) + 1
        received += 1
    socket.close()
    assert cluster.ask(leader, put) == {"success": True}, "the retry is answered from the victim's session"
    assert drain(cluster, leader, "t") == ["once"], "applied exactly once"
    assert counts.get("too_many_sessions", 0) > 0, counts
