"""Every bad input gets a clear error, and the node keeps serving."""

import json

import pytest

from conftest import STARTUP_WAIT_S, dealer


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    from conftest import LocalCluster

    cluster = LocalCluster(tmp_path_factory.mktemp("bad-input"), 1)
    cluster.start_all()
    assert cluster.find_leader_course_style(STARTUP_WAIT_S) == 0
    cluster.ask(0, {"op": "put_topic", "topic": "t"})
    yield cluster
    cluster.close()


def still_serving(node):
    assert node.status(0)["role"] == "Leader"
    assert node.ask(0, {"op": "put_message", "topic": "t", "message": "ok"}) == {"success": True}
    assert node.ask(0, {"op": "get_message", "topic": "t"}) == {"success": True, "message": "ok"}


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"not json", "not JSON"),
        (b"", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'"op"', "JSON object"),
        (b"{}", 'missing field "op"'),
        (b'{"op": 3}', '"op" must be a string'),
        (b'{"op": "explode"}', "unknown op"),
        (b'{"op": "put_topic"}', 'missing field "topic"'),
        (b'{"op": "put_topic", "topic": 5}', '"topic" must be a string'),
        (b'{"op": "put_topic", "topic": ["a"]}', '"topic" must be a string'),
        (b'{"op": "put_topic", "topic": ""}', "must not be empty"),
        (b'{"op": "put_message", "topic": "t"}', 'missing field "message"'),
        (b'{"op": "put_message", "topic": "t", "message": 1}', '"message" must be a string'),
        (b'{"op": "get_message"}', 'missing field "topic"'),
        (b"\xff\xfe\xfd", "UTF-8"),
        (b'{"op": "get_topics"', "not JSON"),
    ],
)
def test_malformed_request_is_a_bad_request(node, raw, reason):
    reply = node.ask(0, raw)
    assert reply["success"] is False
    assert reply["error"] == "bad_request"
    assert reason in reply["detail"]
    still_serving(node)


def test_bad_request_echoes_id(node):
    reply = node.ask(0, {"op": "explode", "id": "req-9"})
    assert reply["error"] == "bad_request" and reply["id"] == "req-9"


def test_oversized_request_is_too_large(node):
    huge = json.dumps({"op": "put_message", "topic": "t", "message": "x" * (2 << 20)})
    reply = node.ask(0, huge, timeout_ms=5000)
    assert reply["success"] is False and reply["error"] == "too_large"
    assert node.ask(0, {"op": "get_message", "topic": "t"}) == {"success": False}
    still_serving(node)


def test_multi_frame_request_is_refused(node):
    socket = dealer(node.endpoint(0))
    socket.send_multipart([b"", b'{"op":"get_topics"}', b"extra"])
    frames = socket.recv_multipart()
    assert frames[0] == b""
    assert json.loads(frames[1])["error"] == "bad_request"
    socket.close()
    still_serving(node)


def test_garbage_on_the_peer_port_is_ignored(node):
    with __import__("socket").create_connection(("127.0.0.1", node.addresses[0]["internal_port"])) as raw:
        raw.sendall(b"\x00" * 64 + b"garbage that is not ZMTP")
    socket = dealer(f"tcp://127.0.0.1:{node.addresses[0]['internal_port']}")
    for junk in [b"", b"\x01", b"\x01\x00\x00\x00\x00\x03" + b"\xff" * 40, b"\x07" * 100]:
        socket.send(junk)
    socket.close()
    still_serving(node)
