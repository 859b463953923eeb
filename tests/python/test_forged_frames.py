"""Issue 11 part 2: frames a member's address could send (right cluster id,
a configured sender) but that no honest member would. Without peer
authentication any process on the peer port can send them; the core must
drop them, never crash, never lose its leader for good. Frames are forged
from the documented layout (peer_frame.py); each case is one the security
review ended a cluster or a node with."""

import time

import peer_frame
from conftest import send_frames

MAX_TERM = 2**64 - 1


def leader_and_term(cluster) -> tuple[int, int]:
    leader = cluster.find_leader_course_style()
    assert leader is not None
    return leader, cluster.status(leader)["term"]


def test_a_term_at_the_top_of_the_range_is_dropped_everywhere(make_cluster):
    cluster = make_cluster(3)
    leader, term = leader_and_term(cluster)
    ours = peer_frame.cluster_hash(cluster.addresses)
    for node in range(3):
        sender = (node + 1) % 3
        send_frames(cluster, node, [peer_frame.append_entries(ours, sender, term=MAX_TERM)])
    time.sleep(0.5)
    for node in range(3):
        status = cluster.status(node)
        assert status is not None, f"node {node} stopped"
        assert status["term"] < 2**62, status
    # The cluster still elects and commits: the term was never adopted.
    assert cluster.client().put_topic("after-max-term")
    assert all(cluster.processes[node].poll() is None for node in range(3))


def test_a_second_leader_in_the_leaders_term_does_not_stop_it(make_cluster):
    cluster = make_cluster(3)
    leader, term = leader_and_term(cluster)
    ours = peer_frame.cluster_hash(cluster.addresses)
    impostor = (leader + 1) % 3
    # "Two leaders in term N" made the leader exit on an assertion.
    send_frames(cluster, leader, [peer_frame.append_entries(ours, impostor, term=term) for _ in range(10)])
    time.sleep(0.5)
    assert cluster.processes[leader].poll() is None, "the leader exited"
    status = cluster.status(leader)
    assert status["role"] == "Leader" and status["term"] == term, status
    assert cluster.client().put_topic("still-leading")


def test_entries_over_a_committed_index_do_not_stop_a_follower(make_cluster):
    cluster = make_cluster(3)
    leader, term = leader_and_term(cluster)
    client = cluster.client()
    for number in range(5):
        assert client.put_topic(f"t{number}")
    follower = (leader + 1) % 3
    assert cluster.wait_until(lambda: cluster.status(follower)["commit_index"] >= 6)
    ours = peer_frame.cluster_hash(cluster.addresses)
    # An entry at index 2 with another term, "from the leader", in its term:
    # it conflicts with a committed entry, which the follower would have had
    # to overwrite (it exited on the assertion instead).
    forged = peer_frame.append_entries(ours, leader, term=term, prev_log_index=1, prev_log_term=term,
                                       entries=[(0, b"\x01\x01\x00\x00\x00x")])
    send_frames(cluster, follower, [forged])
    time.sleep(0.3)
    assert cluster.processes[follower].poll() is None, "the follower exited"
    before = cluster.status(follower)["state_digest"]
    assert client.put_topic("after-forgery")
    assert cluster.wait_until(lambda: cluster.status(follower)["state_digest"] != before)
    assert cluster.wait_until(
        lambda: cluster.status(follower)["state_digest"] == cluster.status(leader)["state_digest"]
    ), "the follower's state matches the leader's"


def test_timeout_now_from_a_follower_moves_no_leadership(make_cluster):
    cluster = make_cluster(3)
    leader, term = leader_and_term(cluster)
    ours = peer_frame.cluster_hash(cluster.addresses)
    target = (leader + 1) % 3
    impostor = (leader + 2) % 3
    send_frames(cluster, target, [peer_frame.timeout_now(ours, impostor, term) for _ in range(5)])
    time.sleep(0.5)
    status = cluster.status(leader)
    assert status["role"] == "Leader" and status["term"] == term, status


def test_a_snapshot_that_fails_its_check_is_refused_not_fatal(make_cluster):
    cluster = make_cluster(3)
    leader, term = leader_and_term(cluster)
    ours = peer_frame.cluster_hash(cluster.addresses)
    follower = (leader + 1) % 3
    garbage = b"not a queue snapshot image " * 40
    # "From the leader", whole in one chunk: the follower used to install it
    # and exit 70 on finding it unreadable.
    send_frames(cluster, follower, [peer_frame.install_snapshot(ours, leader, term, last_index=1000, last_term=term,
                                                                offset=0, total_bytes=len(garbage), data=garbage)])
    time.sleep(0.5)
    assert cluster.processes[follower].poll() is None, "the follower exited"
    status = cluster.status(follower)
    assert status["role"] == "Follower" and status["term"] == term and status["commit_index"] < 1000, status
    assert cluster.client().put_topic("after-garbage-snapshot")
    assert cluster.wait_until(lambda: cluster.status(follower)["last_applied"] == cluster.status(leader)["last_applied"])
    log = (cluster.directory / f"node-{follower}.log").read_text()
    assert "a snapshot that fails its check" in log, log[-2000:]


def test_a_snapshot_announcing_a_terabyte_is_dropped(make_cluster):
    cluster = make_cluster(3)
    leader, term = leader_and_term(cluster)
    ours = peer_frame.cluster_hash(cluster.addresses)
    follower = (leader + 1) % 3
    # 2^40 bytes announced, a small first chunk sent: a follower used to
    # grow its memory toward the announced size.
    chunk = b"x" * 1024
    frames = [peer_frame.install_snapshot(ours, leader, term, last_index=1000, last_term=term,
                                          offset=offset, total_bytes=2**40, data=chunk)
              for offset in range(0, 64 * len(chunk), len(chunk))]
    send_frames(cluster, follower, frames)
    time.sleep(0.5)
    assert cluster.processes[follower].poll() is None, "the follower exited"
    status = cluster.status(follower)
    assert status["role"] == "Follower" and status["term"] == term, status
    log = (cluster.directory / f"node-{follower}.log").read_text()
    assert "snapshot larger than CoreConfig::max_snapshot_bytes" in log, log[-2000:]
    assert cluster.client().put_topic("after-terabyte-snapshot")
