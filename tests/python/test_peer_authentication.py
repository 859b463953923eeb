"""Issue 11 part 1: peers authenticate with CURVE. With a "public_key" for
every node in config.json, only members' keys get through the peer port's
ZAP handler, each speaking only for itself; the attacks of
test_forged_frames.py come to nothing before any frame is decoded."""

import json
import os
import stat
import struct
import subprocess
import time

import pytest
import zmq

import peer_frame
from conftest import dealer, keygen_binary, make_key, node_binary

FAR_TERM_JUMP = 1000


def leader_and_term(cluster) -> tuple[int, int]:
    leader = cluster.find_leader_course_style()
    assert leader is not None, "no leader"
    return leader, cluster.status(leader)["term"]


def peer_socket(cluster, node: int, secret_key: bytes = None, public_key: bytes = None) -> zmq.Socket:
    """A DEALER to ``node``'s peer port; a CURVE client when given a key pair."""
    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 500)
    if secret_key is not None:
        socket.curve_secretkey = secret_key
        socket.curve_publickey = public_key
        socket.curve_serverkey = cluster.addresses[node]["public_key"].encode()
    socket.connect(f"tcp://127.0.0.1:{cluster.addresses[node]['internal_port']}")
    return socket


def member_key_pair(cluster, node: int) -> tuple[bytes, bytes]:
    secret = cluster.key_file(node).read_text().strip().encode()
    return secret, cluster.addresses[node]["public_key"].encode()


def node_log(cluster, node: int) -> str:
    return (cluster.directory / f"node-{node}.log").read_text(errors="replace")


def test_a_keyed_cluster_elects_replicates_and_fails_over(make_cluster):
    cluster = make_cluster(3, keyed=True)
    leader, _ = leader_and_term(cluster)
    client = cluster.client()
    assert client.put_topic("secured")
    assert client.put_message("secured", "over CURVE")
    cluster.kill(leader)
    assert cluster.wait_until(lambda: len(cluster.leaders()) == 1, timeout_s=5.0), "no failover"
    assert cluster.client().get_message("secured") == "over CURVE"
    assert "peers authenticate with CURVE; 3 member keys admitted" in node_log(cluster, 0)


def test_frames_from_outside_the_membership_are_never_heard(make_cluster):
    cluster = make_cluster(3, keyed=True)
    leader, term = leader_and_term(cluster)
    ours = peer_frame.cluster_hash(cluster.addresses)
    stranger_public, stranger_secret = zmq.curve_keypair()
    sockets = []
    for node in range(3):
        sender = (node + 1) % 3
        forged = [
            peer_frame.append_entries(ours, sender, term=term + FAR_TERM_JUMP),
            peer_frame.request_vote(ours, sender, term=term + FAR_TERM_JUMP, last_log_index=10**6,
                                    last_log_term=term + FAR_TERM_JUMP, transfer=True),
            peer_frame.timeout_now(ours, sender, term=term),
        ]
        # Plain TCP (no CURVE), and CURVE with a key that is not a member's.
        for socket in (peer_socket(cluster, node),
                       peer_socket(cluster, node, stranger_secret, stranger_public)):
            for frame in forged:
                socket.send(frame)
            sockets.append(socket)
    time.sleep(1.0)
    for socket in sockets:
        socket.close()
    assert cluster.leaders() == [leader], "leadership moved"
    for node in range(3):
        assert cluster.status(node)["term"] == term, cluster.status(node)
    logs = "".join(node_log(cluster, node) for node in range(3))
    assert "is not a member's" in logs, "the stranger's key was refused by ZAP"
    assert cluster.client().put_topic("after-strangers")


def test_a_member_speaks_only_for_itself(make_cluster):
    cluster = make_cluster(3, keyed=True)
    leader, term = leader_and_term(cluster)
    ours = peer_frame.cluster_hash(cluster.addresses)
    follower, other = [node for node in range(3) if node != leader]
    # With `follower`'s own key, frames claiming to come from the leader.
    secret, public = member_key_pair(cluster, follower)
    socket = peer_socket(cluster, other, secret, public)
    for _ in range(5):
        socket.send(peer_frame.append_entries(ours, leader, term=term + FAR_TERM_JUMP))
        socket.send(peer_frame.timeout_now(ours, leader, term=term))
    time.sleep(1.0)
    socket.close()
    assert cluster.leaders() == [leader]
    assert cluster.status(other)["term"] == term
    assert f"node {follower} (by its key) sent a frame as node {leader}" in node_log(cluster, other)


def start_failing(cluster, index: int, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(node_binary()), str(cluster.config_path), str(index), *arguments],
        cwd=cluster.directory, capture_output=True, text=True, timeout=20,
    )


def test_a_node_refuses_to_start_without_its_key_or_with_another(make_cluster):
    cluster = make_cluster(3, keyed=True, start=False)
    without = start_failing(cluster, 0)
    assert without.returncode != 0
    assert "start node 0 with --peer-key-file FILE" in without.stderr, without.stderr
    wrong = start_failing(cluster, 0, "--peer-key-file", str(cluster.key_file(1)))
    assert wrong.returncode != 0
    assert "wrong key file or wrong node index" in wrong.stderr, wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1, wrong.stderr


def test_unauthenticated_peers_off_loopback_need_an_explicit_flag(make_cluster):
    cluster = make_cluster(1, start=False)
    cluster.addresses[0]["ip"] = "0.0.0.0"
    cluster.config_path.write_text(json.dumps({"addresses": cluster.addresses}))
    refused = start_failing(cluster, 0)
    assert refused.returncode != 0
    assert "refusing to serve peers unauthenticated on tcp://0.0.0.0:" in refused.stderr, refused.stderr
    assert "--insecure-peers" in refused.stderr


def test_keygen_writes_a_private_key_once_and_keys_a_whole_config(tmp_path):
    public = make_key(tmp_path / "node.key")
    assert len(public) == 40
    assert stat.S_IMODE(os.stat(tmp_path / "node.key").st_mode) == 0o600
    again = subprocess.run([str(keygen_binary()), str(tmp_path / "node.key")], capture_output=True, text=True)
    assert again.returncode != 0 and "never overwritten" in again.stderr, again.stderr
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"addresses": [
        {"ip": "127.0.0.1", "port": 5550 + i, "internal_port": 6550 + i, "note": f"n{i}"} for i in range(3)]}))
    subprocess.run([str(keygen_binary()), "--cluster", str(config), "--out-dir", str(tmp_path / "keys")],
                   check=True, capture_output=True)
    keyed = json.loads((tmp_path / "keys" / "config.json").read_text())
    keys = [address["public_key"] for address in keyed["addresses"]]
    assert len(set(keys)) == 3 and all(len(key) == 40 for key in keys)
    assert keyed["addresses"][2]["note"] == "n2", "other fields are kept"
    assert all((tmp_path / "keys" / f"node{i}.key").exists() for i in range(3))


def keyed_clients(cluster, tmp_path) -> tuple[tuple[str, str], tuple[str, str]]:
    """List an admin client and a plain client in the cluster's config."""
    admin_public, admin_secret = (key.decode() for key in zmq.curve_keypair())
    plain_public, plain_secret = (key.decode() for key in zmq.curve_keypair())
    config = {"addresses": cluster.addresses,
              "clients": [{"public_key": admin_public, "admin": True}, {"public_key": plain_public}]}
    cluster.config_path.write_text(json.dumps(config))
    return (admin_public, admin_secret), (plain_public, plain_secret)


def test_listed_clients_only_and_admin_operations_for_admin_keys(make_cluster, tmp_path):
    from raftmq_client import Client, RaftMQError, request as plain_request
    cluster = make_cluster(3, keyed=True, start=False)
    admin, plain = keyed_clients(cluster, tmp_path)
    cluster.start_all()
    client = Client.from_config(str(cluster.config_path), client_key=plain)
    assert client.put_topic("curve-clients")
    assert client.put_message("curve-clients", "hello")
    leader = client.leader
    assert leader is not None
    # Without CURVE, or with a key that is not listed: no answer at all.
    assert plain_request(leader, {"op": "status"}, 500) is None
    stranger = tuple(key.decode() for key in zmq.curve_keypair())
    assert Client.from_config(str(cluster.config_path), client_key=stranger, give_up_after_s=1.0).find_leader() is None
    # transfer_leader needs the admin key, loopback or not.
    target = next(index for index in range(3) if cluster.endpoint(index) != leader)
    with pytest.raises(RaftMQError, match="forbidden: transfer_leader is an admin operation: it needs a client key"):
        client.call({"op": "transfer_leader", "to": target})
    admin_client = Client.from_config(str(cluster.config_path), client_key=admin)
    assert admin_client.call({"op": "transfer_leader", "to": target}).get("success"), "the admin key may"
    target_endpoint = cluster.endpoint(target)
    assert cluster.wait_until(lambda: (admin_client.status(target_endpoint) or {}).get("role") == "Leader",
                              timeout_s=5.0)
    assert admin_client.get_message("curve-clients") == "hello"
    logs = "".join(node_log(cluster, node) for node in range(3))
    assert "clients authenticate with CURVE; 2 client keys admitted" in logs
    assert "is not listed" in logs


def outsiders(cluster, node: int) -> list:
    """Sockets to ``node``'s peer port from outside the membership: plain
    TCP, and CURVE with a stranger's key."""
    stranger_public, stranger_secret = zmq.curve_keypair()
    return [peer_socket(cluster, node), peer_socket(cluster, node, stranger_secret, stranger_public)]


def test_a_forged_entry_at_the_next_index_is_never_taken(make_cluster):
    # Without keys, such an entry "from the leader" made a follower skip the
    # real entry at that index, and an acknowledged put was lost after a
    # leadership transfer to it.
    cluster = make_cluster(3, keyed=True)
    leader, term = leader_and_term(cluster)
    client = cluster.client()
    assert client.put_topic("real-1")
    follower = (leader + 1) % 3
    assert cluster.wait_until(lambda: cluster.status(follower)["commit_index"] == cluster.status(leader)["commit_index"])
    last = cluster.status(follower)["commit_index"]
    ours = peer_frame.cluster_hash(cluster.addresses)
    command = b"\x01" + struct.pack("<I", 6) + b"forged"
    forged = peer_frame.append_entries(ours, leader, term=term, prev_log_index=last, prev_log_term=term,
                                       leader_commit=last + 1, entries=[(term, command)])
    sockets = outsiders(cluster, follower)
    for socket in sockets:
        socket.send(forged)
    time.sleep(0.5)
    for socket in sockets:
        socket.close()
    assert client.put_topic("real-2")
    assert cluster.wait_until(lambda: len({cluster.status(node)["state_digest"] for node in range(3)}) == 1)
    assert "forged" not in client.get_topics()
    assert {"real-1", "real-2"} <= set(client.get_topics())


def test_forged_acknowledgements_cannot_commit_for_a_lone_leader(make_cluster):
    # Without keys, acknowledgements "from" dead followers let a lone leader
    # acknowledge puts that were lost at failover.
    cluster = make_cluster(3, keyed=True)
    leader, term = leader_and_term(cluster)
    commit_before = cluster.status(leader)["commit_index"]
    ours = peer_frame.cluster_hash(cluster.addresses)
    for node in range(3):
        if node != leader:
            cluster.kill(node)
    socket = dealer(cluster.endpoint(leader), timeout_ms=3000)
    socket.send_multipart([b"", json.dumps({"op": "put_topic", "topic": "lone"}).encode()])
    sockets = outsiders(cluster, leader)
    for index in range(commit_before + 1, commit_before + 4):
        for follower in range(3):
            if follower != leader:
                for outsider in sockets:
                    outsider.send(peer_frame.append_entries_response(ours, follower, term, True, index))
    reply = json.loads(socket.recv_multipart()[-1])
    socket.close()
    for outsider in sockets:
        outsider.close()
    assert not reply.get("success"), reply
    status = cluster.status(leader)
    assert status["commit_index"] == commit_before, status
