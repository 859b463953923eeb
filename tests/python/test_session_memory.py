"""Sessions keep a bounded number of bytes (16 MiB, docs/protocol.md,
"Session memory"): clients that each took a 900 KB message do not leave
every reply in the replicas and snapshots once the queue is empty. A retry
of a recent request still gets its message; a retry of one whose reply was
dropped gets reply_dropped and takes nothing more."""

import itertools

import pytest
from raftmq_client import ReplyDropped

MESSAGE_BYTES = 900 * 1024
CLIENTS = 30  # 27 MB of replies: past the 16 MiB bound


def test_large_replies_of_many_clients_are_bounded_and_retries_stay_exactly_once(make_cluster):
    cluster = make_cluster(1, "--request-deadline-ms", "5000")
    assert cluster.wait_until(lambda: (cluster.status(0) or {}).get("role") == "Leader")
    assert cluster.ask(0, {"op": "put_topic", "topic": "big"}) == {"success": True}
    messages = [f"{client:03d}".ljust(MESSAGE_BYTES, "x") for client in range(CLIENTS)]
    for message in messages:
        assert cluster.ask(0, {"op": "put_message", "topic": "big", "message": message}, 10_000) == {"success": True}
    for client in range(CLIENTS):
        get = {"op": "get_message", "topic": "big", "client_id": f"c{client}", "seq": 1}
        assert cluster.ask(0, get, 10_000) == {"success": True, "message": messages[client]}
    assert cluster.ask(0, {"op": "put_message", "topic": "big", "message": "left"}) == {"success": True}

    latest = {"op": "get_message", "topic": "big", "client_id": f"c{CLIENTS - 1}", "seq": 1}
    assert cluster.ask(0, latest, 10_000) == {"success": True, "message": messages[-1]}, "a recent retry is answered"
    oldest = cluster.ask(0, {"op": "get_message", "topic": "big", "client_id": "c0", "seq": 1}, 10_000)
    assert oldest["success"] is False and oldest["error"] == "reply_dropped", oldest
    assert cluster.ask(0, {"op": "get_message", "topic": "big"}) == {"success": True, "message": "left"}, (
        "neither retry took another message"
    )

    # The Python client raises ReplyDropped for it: here, as the client "c1"
    # retrying its seq 1 after a lost reply would.
    client = cluster.client()
    client.client_id, client._seq = "c1", itertools.count(1)
    with pytest.raises(ReplyDropped):
        client.get_message("big")
