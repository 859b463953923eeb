"""Peer frames from outside the cluster: a node of another cluster left on
reused ports, or a sender not in the configuration, is not heard. The frames
are forged in Python from the layout in docs/protocol.md (peer_frame.py)."""

import time

import peer_frame
from conftest import send_frames


def test_another_clusters_frames_do_not_depose_the_leader(make_cluster):
    cluster = make_cluster(3)
    leader = cluster.find_leader_course_style()
    assert leader is not None
    term = cluster.status(leader)["term"]
    follower = next(node for node in range(3) if node != leader)
    ours = peer_frame.cluster_hash(cluster.addresses)
    assert cluster.data_directory(leader).name == f"{ours:016x}-node{leader}", "the documented cluster id"
    deposing = dict(term=term + 100)
    foreign = [peer_frame.append_entries(ours ^ 1, follower, **deposing) for _ in range(50)]
    foreign.append(peer_frame.request_vote(ours ^ 1, follower, term + 100, 1000, term + 99))
    unknown_sender = [peer_frame.append_entries(ours, 7, **deposing), peer_frame.append_entries(ours, leader, **deposing)]
    send_frames(cluster, leader, foreign + unknown_sender)
    time.sleep(0.5)
    # Heard, any of these frames would have raised the leader's term to
    # term + 100 at once (Raft §5.1). The role is not checked: on a machine
    # starved of CPU (a full test run beside builds) a leader may step down
    # by CheckQuorum or lose an ordinary election meanwhile, which adds a
    # term or two, never a hundred.
    for node in range(3):
        status = cluster.status(node)
        assert status["term"] < term + 100, status
    log = (cluster.directory / f"node-{leader}.log").read_text()
    warnings = [line for line in log.splitlines() if "from another cluster" in line]
    assert 1 <= len(warnings) <= 2, f"at most one line a second for 51 frames: {warnings}"
    assert "from a sender not in this cluster's configuration" in log

    # The same frame with this cluster's id is heard (Raft §5.1: a higher
    # term makes the leader step down), so the frames above were well formed.
    send_frames(cluster, leader, [peer_frame.append_entries(ours, follower, term=term + 100)])
    assert cluster.wait_until(lambda: (cluster.status(leader) or {}).get("term", 0) >= term + 100, timeout_s=5)
