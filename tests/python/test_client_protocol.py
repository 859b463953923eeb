"""The client socket serves REQ and pipelined DEALER clients, many at once."""

import json
import threading

from conftest import dealer, send_puts


def test_pipelined_dealer_gets_every_reply_with_its_id(make_cluster):
    cluster = make_cluster(3)
    leader = cluster.find_leader_course_style()
    assert leader is not None
    assert cluster.ask(leader, {"op": "put_topic", "topic": "p"}) == {"success": True}
    socket = dealer(cluster.endpoint(leader), timeout_ms=5000)
    count = 500
    for number in range(count):
        request = {"op": "put_message", "topic": "p", "message": str(number), "id": number}
        socket.send_multipart([b"", json.dumps(request).encode()])
    replies = {}
    for _ in range(count):
        empty, body = socket.recv_multipart()
        assert empty == b""
        reply = json.loads(body)
        replies[reply["id"]] = reply
    assert replies == {number: {"success": True, "id": number} for number in range(count)}
    for number in range(count):
        socket.send_multipart([b"", json.dumps({"op": "get_message", "topic": "p", "id": number}).encode()])
    got = {}
    for _ in range(count):
        reply = json.loads(socket.recv_multipart()[1])
        got[reply["id"]] = reply["message"]
    # Pipelined gets commit in send order, so the FIFO order shows through.
    assert [got[number] for number in range(count)] == [str(number) for number in range(count)]
    socket.close()


def test_many_concurrent_req_clients(make_cluster):
    cluster = make_cluster(3)
    leader = cluster.find_leader_course_style()
    assert leader is not None
    assert cluster.ask(leader, {"op": "put_topic", "topic": "c"}) == {"success": True}
    failures = []

    def worker(worker_number):
        for number in range(25):
            reply = cluster.ask(leader, {"op": "put_message", "topic": "c", "message": f"{worker_number}:{number}"})
            if reply != {"success": True}:
                failures.append(reply)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    received = []
    while True:
        reply = cluster.ask(leader, {"op": "get_message", "topic": "c"})
        if not reply["success"]:
            break
        received.append(reply["message"])
    assert sorted(received) == sorted(f"{w}:{n}" for w in range(16) for n in range(25))
    for worker_number in range(16):
        own = [m for m in received if m.startswith(f"{worker_number}:")]
        assert own == [f"{worker_number}:{n}" for n in range(25)], "each client's order is kept"


def test_busy_when_too_many_requests_wait(make_cluster):
    cluster = make_cluster(3, "--check-quorum", "false", "--max-pending-requests", "2", "--request-deadline-ms", "800")
    leader = cluster.leader_alone_with_topic("b")
    socket = dealer(cluster.endpoint(leader), timeout_ms=3000)
    send_puts(socket, "b", 6)
    codes = sorted(json.loads(socket.recv_multipart()[1]).get("error") for _ in range(6))
    socket.close()
    assert codes.count("busy") >= 4 and set(codes) <= {"busy", "timeout"}, codes


def test_status_never_lags_an_acknowledged_write(make_cluster):
    """Issue 9: the status report is published before a turn's replies go
    out, so a client that just had a write acknowledged reads a status that
    has applied it (`last_applied` moved past what it read before)."""
    cluster = make_cluster(1)
    assert cluster.find_leader_course_style() == 0
    client = cluster.client()
    assert client.put_topic("t")
    lagging = []
    for number in range(300):
        before = cluster.status(0)["last_applied"]
        assert client.put_message("t", f"m{number}")
        after = cluster.status(0)["last_applied"]
        if after <= before:
            lagging.append((number, before, after))
    assert lagging == [], f"status lagged an acknowledged write: {lagging[:5]}"
