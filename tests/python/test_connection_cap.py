"""Issue 11 part 3: file descriptors. At an open-file limit that more client
connections than it allows could exhaust, the leader used to spin at 100%
CPU in libzmq's accept loop, serving nobody. Now it caps client connections
below the limit: a connection past the cap is shut down as soon as it is
accepted, clients already connected and the peers are served as before,
and new clients are served again once connections close."""

import json
import resource
import socket
import subprocess
import time

import zmq

from conftest import node_binary

FILE_LIMIT = 256
CONNECTIONS_TRIED = 400


def low_file_limit() -> None:
    # Soft and hard: the node cannot raise it.
    resource.setrlimit(resource.RLIMIT_NOFILE, (FILE_LIMIT, FILE_LIMIT))


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in ticks of 1/100 s


def ask(socket_: zmq.Socket, payload: dict) -> dict:
    socket_.send_multipart([b"", json.dumps(payload).encode()])
    return json.loads(socket_.recv_multipart()[-1])


def test_client_connections_are_capped_below_the_file_limit(make_cluster):
    cluster = make_cluster(3, start=False)
    for index in range(3):
        log = open(cluster.directory / f"node-{index}.log", "ab")
        cluster.log_files.append(log)
        cluster.processes[index] = subprocess.Popen(
            [str(node_binary()), str(cluster.config_path), str(index)], cwd=cluster.directory,
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=low_file_limit)
    leader = cluster.find_leader_course_style()
    assert leader is not None
    term = cluster.status(leader)["term"]
    # A client connected before the flood of connections.
    early = zmq.Context.instance().socket(zmq.DEALER)
    early.setsockopt(zmq.LINGER, 0)
    early.setsockopt(zmq.RCVTIMEO, 2000)
    early.connect(cluster.endpoint(leader))
    assert ask(early, {"op": "put_topic", "topic": "capped"})["success"]

    held = []
    for _ in range(CONNECTIONS_TRIED):
        try:
            held.append(socket.create_connection(("127.0.0.1", cluster.addresses[leader]["port"]), timeout=1))
        except OSError:
            pass  # refused while the node's descriptors ran out: fine
    for connection in held:
        connection.setblocking(False)
    cap = FILE_LIMIT - (64 + 4 * 3)
    # Past the cap, connections are shut down by the node (so are bare TCP
    # connections that never greet, after 5 s: either way, at least these).
    assert cluster.wait_until(lambda: closed_by_node(held) >= len(held) - cap, timeout_s=20.0), \
        f"{closed_by_node(held)} of {len(held)} connections closed by the node; the cap is {cap}"
    pid = cluster.processes[leader].pid
    before = cpu_seconds(pid)
    time.sleep(2.0)
    used = cpu_seconds(pid) - before
    assert used < 1.0, f"the leader used {used:.2f} s of CPU in 2 s with idle connections (a busy loop?)"

    # The early client and the peers are served: writes commit, no election.
    for number in range(20):
        assert ask(early, {"op": "put_message", "topic": "capped", "message": f"m{number}"})["success"]
    assert ask(early, {"op": "status"})["term"] == term
    log = (cluster.directory / f"node-{leader}.log").read_text()
    assert f"(the cap is {cap}): refusing new ones until some close" in log

    for connection in held:
        connection.close()
    assert cluster.wait_until(lambda: cluster.status(leader) is not None, timeout_s=10.0), \
        "new clients are served again once connections close"
    assert cluster.client().get_message("capped") == "m0"


def closed_by_node(connections: list[socket.socket]) -> int:
    """How many of ``connections`` the node has closed (read past its greeting to the end)."""
    closed = 0
    for connection in connections:
        try:
            while chunk := connection.recv(4096):
                del chunk
            closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1  # reset
    return closed
