"""Limits of the replicated state (docs/protocol.md, "Limits"): a topic name
over 256 bytes is a bad_request naming the limit, in every op that carries
one; a new topic beyond 10,000 is too_many_topics, and the get_topics reply
stays within the documented bound. The 1 GiB queue limit (queue_full) is
tested in Rust only (src/queue/state_machine.rs): filling it would cost the
test a gigabyte per node."""

import json
import time

import pytest
import zmq
from conftest import dealer
from raftmq_client import RaftMQError, TooManyTopics

MAX_TOPIC_NAME_BYTES = 256
MAX_TOPICS = 10_000
IN_FLIGHT = 500
CREATE_DEADLINE_S = 60.0


def test_a_topic_name_over_256_bytes_is_a_bad_request_naming_the_limit(make_cluster):
    cluster = make_cluster(1)
    assert cluster.wait_until(lambda: (cluster.status(0) or {}).get("role") == "Leader")
    longest = "é" * (MAX_TOPIC_NAME_BYTES // 2)  # 256 UTF-8 bytes
    assert cluster.ask(0, {"op": "put_topic", "topic": longest}) == {"success": True}
    too_long = longest + "x"
    for request in [
        {"op": "put_topic", "topic": too_long},
        {"op": "put_message", "topic": too_long, "message": "m"},
        {"op": "get_message", "topic": too_long},
    ]:
        reply = cluster.ask(0, dict(request, id=7))
        assert reply["success"] is False and reply["error"] == "bad_request", reply
        assert "at most 256 bytes, not 257" in reply["detail"], reply
        assert reply["id"] == 7
    assert cluster.ask(0, {"op": "get_topics"}) == {"success": True, "topics": [longest]}
    with pytest.raises(RaftMQError, match="at most 256 bytes"):
        cluster.client().put_topic("t" * (MAX_TOPIC_NAME_BYTES + 1))


def create_topics(endpoint: str, names: list[str]) -> None:
    """put_topic of every name, pipelined on one DEALER with at most
    IN_FLIGHT requests waiting; every reply must be a success."""
    socket = dealer(endpoint, timeout_ms=10_000)
    deadline = time.monotonic() + CREATE_DEADLINE_S
    sent = answered = 0
    try:
        while answered < len(names):
            assert time.monotonic() < deadline, f"{answered} of {len(names)} topics created in time"
            while sent < len(names) and sent - answered < IN_FLIGHT:
                request = {"op": "put_topic", "topic": names[sent], "id": sent}
                socket.send_multipart([b"", json.dumps(request).encode()])
                sent += 1
            _, frame = socket.recv_multipart()
            reply = json.loads(frame)
            assert reply["success"] is True, reply
            answered += 1
    finally:
        socket.close()


def test_a_new_topic_beyond_10000_is_refused_and_get_topics_stays_bounded(make_cluster):
    cluster = make_cluster(1)
    assert cluster.wait_until(lambda: (cluster.status(0) or {}).get("role") == "Leader")
    names = [f"{number:05d}".ljust(MAX_TOPIC_NAME_BYTES, "n") for number in range(MAX_TOPICS)]
    create_topics(cluster.endpoint(0), names)

    refused = cluster.ask(0, {"op": "put_topic", "topic": "one-too-many"})
    assert refused["success"] is False and refused["error"] == "too_many_topics", refused
    assert "10000 topics" in refused["detail"]
    assert cluster.ask(0, {"op": "put_topic", "topic": names[0]}) == {"success": False}, "an existing topic"
    with pytest.raises(TooManyTopics):
        cluster.client().put_topic("another")

    socket = zmq.Context.instance().socket(zmq.REQ)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.RCVTIMEO, 10_000)
    try:
        socket.connect(cluster.endpoint(0))
        socket.send(json.dumps({"op": "get_topics"}).encode())
        frame = socket.recv()
    finally:
        socket.close()
    assert json.loads(frame)["topics"] == names
    # Plain names: their bytes plus 3 each (docs/protocol.md, "Limits").
    assert len(frame) <= MAX_TOPICS * (MAX_TOPIC_NAME_BYTES + 3) + 64, len(frame)
