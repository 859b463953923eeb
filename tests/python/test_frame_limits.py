"""Issue 11 part 3: an oversized frame is refused by ZeroMQ before it is
buffered (ZMQ_MAXMSGSIZE on both ports), so it costs the node no memory;
a request a little over the limit still gets `too_large`."""

import json
import time

import zmq

from conftest import dealer


def peak_memory_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc status")


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
