"""Protocol-aware recovery with real processes: a follower whose data
directory was damaged or wiped starts anyway, repairs from the cluster while
a writer keeps writing, and then holds everything the others hold; no
acknowledged write is lost (docs/storage.md, "Repair from the cluster")."""

import time

import pytest

from conftest import LocalCluster
from test_durability import Writer, check_exactly_once_in_order, converged, drain

#: Small segments, so that a few hundred writes fill several: damage in one
#: before the last is damage to synced data, which a node refuses to read.
ARGUMENTS = ("--wal-segment-bytes", "4096")
REPAIR_TIMEOUT_S = 30.0


def flip_a_byte_in_a_synced_segment(directory):
    segments = sorted(directory.glob("*.wal"))
    assert len(segments) >= 2, segments
    data = bytearray(segments[0].read_bytes())
    data[len(data) // 2] ^= 0xFF
    segments[0].write_bytes(bytes(data))


def wipe_all_but_identity(directory):
    for path in directory.iterdir():
        if path.name != "IDENTITY" and path.is_file():
            path.unlink()


def flip_a_byte_in_the_snapshot(directory):
    snapshot = directory / "snapshot"
    assert snapshot.exists(), list(directory.iterdir())
    data = bytearray(snapshot.read_bytes())
    data[len(data) // 2] ^= 0xFF
    snapshot.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage, first_state",
    [
        (flip_a_byte_in_a_synced_segment, "catching up"),
        (wipe_all_but_identity, "learning the term"),
        (flip_a_byte_in_the_snapshot, "catching up"),
    ],
    ids=["damaged-segment", "wiped", "damaged-snapshot"],
)
def test_a_damaged_follower_repairs_from_the_cluster_while_it_serves(make_cluster, damage, first_state):
    arguments = ARGUMENTS + (("--snapshot-threshold-bytes", "4000") if "snapshot" in damage.__name__ else ())
    cluster: LocalCluster = make_cluster(3, *arguments)
    leader = cluster.find_leader_course_style()
    assert leader is not None
    client = cluster.client()
    assert client.put_topic("t")
    writer = Writer(cluster, "t", limit=2_000)
    writer.start()
    assert cluster.wait_until(lambda: len(writer.acknowledged) >= 300, timeout_s=30), len(writer.acknowledged)
    follower = next(index for index in range(3) if index != leader)
    directory = cluster.data_directory(follower)
    cluster.kill(follower)
    damage(directory)
    cluster.start(follower)
    seen = set()

    def repaired():
        status = cluster.status(follower) or {}
        seen.add(status.get("repair"))
        return status.get("repair") == "intact" and status.get("last_applied", 0) > 0

    assert cluster.wait_until(repaired, timeout_s=REPAIR_TIMEOUT_S, interval_s=0.01), seen
    assert cluster.processes[follower].poll() is None, "the damaged node kept running"
    assert first_state in seen or "catching up" in seen, seen
    written_during_repair = len(writer.acknowledged)
    assert cluster.wait_until(lambda: len(writer.acknowledged) > written_during_repair + 50, timeout_s=30)
    writer.stop.set()
    writer.join(timeout=30)
    assert cluster.wait_until(lambda: converged(cluster), timeout_s=30), [cluster.status(i) for i in range(3)]
    log = (cluster.directory / f"node-{follower}.log").read_text()
    starting = next(line for line in log.splitlines() if "starting anyway" in line)
    assert ("moved nothing" if damage is wipe_all_but_identity else "hard_state") in starting, starting
    assert "repair done" in log, log[-2000:]
    assert "panicked" not in log
    kept = list(directory.glob("damaged-*"))
    assert len(kept) == 1, "the damaged files are kept for inspection"
    if damage is not wipe_all_but_identity:
        assert (kept[0] / "hard_state").exists() and any(kept[0].glob("*.wal")), list(kept[0].iterdir())
    # The repaired node now counts: with the leader gone, it and the third
    # node elect a leader that holds every acknowledged write.
    cluster.kill(leader)
    assert cluster.wait_until(lambda: len(cluster.leaders()) == 1, timeout_s=15)
    check_exactly_once_in_order("t", drain(cluster.client(), "t"), writer)


def test_a_wiped_node_waits_for_every_other_member_and_says_for_whom(make_cluster):
    """A node that lost its term must hear every other member (one of them
    may be the candidate its lost vote went to): with one down it waits,
    naming it, and repairs once it is back."""
    cluster: LocalCluster = make_cluster(3, *ARGUMENTS)
    leader = cluster.find_leader_course_style()
    assert leader is not None
    client = cluster.client()
    assert client.put_topic("t")
    for number in range(50):
        assert client.put_message("t", f"t-{number}")
    wiped, down = [index for index in range(3) if index != leader]
    directory = cluster.data_directory(wiped)
    cluster.kill(wiped)
    cluster.kill(down)
    wipe_all_but_identity(directory)
    cluster.start(wiped)
    log_path = cluster.directory / f"node-{wiped}.log"
    waiting = f"waiting for the answer of node(s) {down}"
    assert cluster.wait_until(lambda: waiting in log_path.read_text(), timeout_s=15), log_path.read_text()[-2000:]
    assert (cluster.status(wiped) or {}).get("repair") == "learning the term"
    cluster.start(down)
    assert cluster.wait_until(lambda: (cluster.status(wiped) or {}).get("repair") == "intact", timeout_s=30)
    assert cluster.wait_until(lambda: converged(cluster), timeout_s=30), [cluster.status(i) for i in range(3)]
    assert sorted(drain(cluster.client(), "t"), key=lambda m: int(m.split("-")[1])) == [f"t-{n}" for n in range(50)]
