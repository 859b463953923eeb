"""A real node whose data directory lost state it had refuses to start with
one line that names the file and what to do, and exit status 65 (no panic,
no backtrace, nothing changed on disk); a brand-new directory starts as
before. Before this, a missing hard_state panicked ("log holds a term from
the future", exit 101), a missing snapshot was reported as a missing log
segment, and a directory wiped except for IDENTITY started as a blank
member that had forgotten its vote (docs/storage.md, "A node that lost its
data")."""

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import LocalCluster, dealer, node_binary, send_puts

DATA_EXIT_CODE = 65
#: Small segments and snapshots, so that 6,000 writes compact the log past
#: index 1 (a node keeps 4,096 entries below its snapshot).
ARGUMENTS = ("--snapshot-threshold-bytes", "2000", "--wal-segment-bytes", "4096")
WRITES = 6000


@pytest.fixture(scope="module")
def compacted(tmp_path_factory):
    """A one-node cluster's directory after 6,000 writes, the node killed;
    returns the cluster and a pristine copy of its data directory."""
    home = tmp_path_factory.mktemp("lost-state")
    cluster = LocalCluster(home, 1, ARGUMENTS)
    try:
        cluster.start(0)
        assert cluster.wait_until(lambda: (cluster.status(0) or {}).get("role") == "Leader"), "no leader"
        assert cluster.ask(0, {"op": "put_topic", "topic": "t"}) == {"success": True}
        sender = dealer(cluster.endpoint(0), timeout_ms=5000)
        for _ in range(WRITES // 1000):
            send_puts(sender, "t", 1000)
            for _ in range(1000):
                sender.recv_multipart()
        sender.close()
        status = cluster.status(0)
        cluster.kill(0)
    finally:
        cluster.close()
    directory = cluster.data_directory(0)
    segments = sorted(path.name for path in directory.glob("*.wal"))
    assert status["snapshot_index"] > 0 and segments[0] != f"{1:020}.wal", (status, segments)
    pristine = home / "pristine"
    shutil.copytree(directory, pristine)
    return cluster, pristine


def restore(cluster: LocalCluster, pristine: Path) -> Path:
    directory = cluster.data_directory(0)
    shutil.rmtree(directory)
    shutil.copytree(pristine, directory)
    return directory


def contents(directory: Path) -> dict:
    return {path.name: path.read_bytes() for path in directory.iterdir() if path.name != "LOCK"}


def run_to_exit(cluster: LocalCluster) -> subprocess.CompletedProcess:
    command = [str(node_binary()), str(cluster.config_path), "0", *ARGUMENTS]
    started = time.monotonic()
    finished = subprocess.run(command, cwd=cluster.directory, capture_output=True, text=True, timeout=30)
    assert time.monotonic() - started < 10, "a refused start exits promptly"
    return finished


def assert_refused(cluster: LocalCluster, directory: Path, *expected: str, unchanged: bool = True) -> str:
    before = contents(directory)
    finished = run_to_exit(cluster)
    assert finished.returncode == DATA_EXIT_CODE, (finished.returncode, finished.stderr)
    assert "panicked" not in finished.stderr and "backtrace" not in finished.stderr, finished.stderr
    errors = [line for line in finished.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, finished.stderr
    line = finished.stderr.strip().splitlines()[-1]
    assert line == errors[0] and line.startswith("raftmq-node: error: storage error: "), finished.stderr
    for text in expected:
        assert text in line, line
    assert 'see docs/storage.md, "A node that lost its data"' in line, line
    after = contents(directory)
    if unchanged:
        assert after == before, "a refused start changes nothing"
    else:  # refused after the log was read: only leftovers of compaction may be gone
        for name in ("IDENTITY", "snapshot", "hard_state", max(name for name in before if name.endswith(".wal"))):
            assert after.get(name) == before.get(name), name
    return line


def test_a_missing_hard_state_is_one_line_and_exit_65(compacted):
    cluster, pristine = compacted
    directory = restore(cluster, pristine)
    (directory / "hard_state").unlink()
    assert_refused(cluster, directory, f"{directory / 'hard_state'} is missing, but IDENTITY records")
    # A directory whose IDENTITY predates the claim: the log's terms tell.
    identity = (directory / "IDENTITY").read_text().splitlines()[0]
    (directory / "IDENTITY").write_text(identity + "\n")
    # The log's terms or, when compaction left no entry after the snapshot,
    # the snapshot's term: which one depends on when the fixture's last
    # snapshot was taken.
    line = assert_refused(cluster, directory, f"{directory / 'hard_state'} is missing, but the ", unchanged=False)
    assert "but the log holds index" in line or "but the snapshot through index" in line, line


def test_a_missing_snapshot_after_compaction_is_one_line_and_exit_65(compacted):
    cluster, pristine = compacted
    directory = restore(cluster, pristine)
    (directory / "snapshot").unlink()
    first = sorted(directory.glob("*.wal"))[0]
    assert_refused(cluster, directory, f"{directory / 'snapshot'} is missing, but the log starts at index", str(first))


def test_a_directory_wiped_except_for_identity_refuses_and_a_new_one_starts(compacted):
    cluster, pristine = compacted
    directory = restore(cluster, pristine)
    for path in directory.iterdir():
        if path.name != "IDENTITY":
            path.unlink()
    assert_refused(cluster, directory, "hard_state is missing, but IDENTITY records that this directory held them")
    # The way out the operator chose (docs/storage.md): a brand-new directory.
    shutil.rmtree(directory)
    cluster.start(0)
    try:
        assert cluster.wait_until(lambda: (cluster.status(0) or {}).get("role") == "Leader"), "a new directory starts"
    finally:
        cluster.close()


def test_a_lost_last_segment_is_one_line_and_exit_65(compacted):
    cluster, pristine = compacted
    directory = restore(cluster, pristine)
    last = sorted(directory.glob("*.wal"))[-1]
    last.unlink()
    assert_refused(cluster, directory, f"hard_state records that the segment {last.name} was created")
