"""Issue 11 part 3: an oversized frame is refused by ZeroMQ before it is
buffered (ZMQ_MAXMSGSIZE on both ports), so it costs the node no memory;
a request a little over the limit still gets `too_large`."""

import json
import time

import zmq

from conftest import dealer
from process_memory import peak_memory_kib


def send_raw(endpoint: str, frame: bytes) -> None:
    context = zmq.Context.instance()
    socket = context.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 2000)
    socket.connect(endpoint)
    socket.send_multipart([b"", frame])
    time.sleep(1.0)
    socket.close()


def test_huge_frames_on_either_port_cost_no_memory(make_cluster):
    cluster = make_cluster(1)
    assert cluster.find_leader_course_style() == 0
    pid = cluster.processes[0].pid
    before_kib = peak_memory_kib(pid)
    huge = b"x" * (64 << 20)
    send_raw(cluster.endpoint(0), huge)
    send_raw(f"tcp://127.0.0.1:{cluster.addresses[0]['internal_port']}", huge)
    growth_kib = peak_memory_kib(pid) - before_kib
    assert growth_kib < 32 << 10, f"two 64 MiB frames grew the node's peak memory by {growth_kib} KiB"
    client = cluster.client()
    assert client.put_topic("still-serving")


def test_a_request_a_little_too_large_is_answered_too_large(make_cluster):
    cluster = make_cluster(1, "--max-request-bytes", "1000")
    assert cluster.find_leader_course_style() == 0
    socket = dealer(cluster.endpoint(0))
    request = {"op": "put_topic", "topic": "t" * 2000, "id": 7}
    socket.send_multipart([b"", json.dumps(request).encode()])
    reply = json.loads(socket.recv_multipart()[-1])
    assert reply["error"] == "too_large", reply


def zmtp_dealer_handshake(connection) -> None:
    """Speak ZMTP 3.1 as a DEALER with the NULL mechanism, by hand: greeting
    (signature, version 3.1, "NULL", as-server 0, filler), then READY."""
    connection.sendall(b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x01" + b"NULL".ljust(20, b"\x00") + b"\x00" * 32)
    greeting = b""
    while len(greeting) < 64:
        chunk = connection.recv(64 - len(greeting))
        assert chunk, "the node closed the connection during the greeting"
        greeting += chunk
    ready = b"\x05READY" + b"\x0bSocket-Type" + (6).to_bytes(4, "big") + b"DEALER"
    connection.sendall(b"\x04" + bytes([len(ready)]) + ready)


def test_a_client_stalled_halfway_through_a_frame_is_disconnected(make_cluster):
    import socket
    cluster = make_cluster(1)
    assert cluster.wait_until(lambda: (cluster.status(0) or {}).get("role") == "Leader")
    port = cluster.addresses[0]["port"]
    connection = socket.create_connection(("127.0.0.1", port), timeout=30)
    zmtp_dealer_handshake(connection)
    # A long frame of 1 MiB announced, 1,000 bytes of it sent, then silence
    # (and no answer to the node's heartbeats: we are mid-frame).
    connection.sendall(b"\x02" + (1 << 20).to_bytes(8, "big") + b"x" * 1000)
    started = time.monotonic()
    closed = False
    while time.monotonic() - started < 30:
        try:
            data = connection.recv(4096)
        except TimeoutError:
            break
        if not data:
            closed = True
            break
    elapsed = time.monotonic() - started
    connection.close()
    assert closed, "the stalled connection was kept"
    assert elapsed >= 5, f"closed after {elapsed:.1f} s: too soon for a heartbeat timeout (10 s)"
    assert cluster.status(0)["role"] == "Leader"
