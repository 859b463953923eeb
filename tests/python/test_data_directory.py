"""Where a node keeps its data: beside its config file, whatever the working
directory (a node started from elsewhere must not start empty and forget its
term, vote and log), and nothing left behind by a start that failed."""

import json
import socket
import subprocess
import time

from conftest import LocalCluster, node_binary


def start_node(cluster: LocalCluster, cwd, config_argument: str, *arguments: str) -> subprocess.Popen:
    log = open(cluster.directory / "node-0.log", "ab")
    cluster.log_files.append(log)
    command = [str(node_binary()), config_argument, "0", *arguments]
    return subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)


def wait_for_leader(cluster: LocalCluster, timeout_s: float = 10.0) -> dict:
    assert cluster.wait_until(lambda: (cluster.status(0) or {}).get("role") == "Leader", timeout_s), "no leader"
    return cluster.status(0)


def stop(process: subprocess.Popen) -> None:
    process.kill()
    process.wait(timeout=10)


def test_a_node_started_from_another_directory_recovers_its_term_and_log(tmp_path):
    home = tmp_path / "cluster"
    elsewhere, somewhere_else = tmp_path / "a", tmp_path / "b"
    for directory in (home, elsewhere, somewhere_else):
        directory.mkdir()
    cluster = LocalCluster(home, 1)
    try:
        first = start_node(cluster, elsewhere, str(cluster.config_path.resolve()))
        term = wait_for_leader(cluster)["term"]
        assert cluster.ask(0, {"op": "put_topic", "topic": "kept"}) == {"success": True}
        stop(first)
        # Started again from another directory, with a relative config path.
        second = start_node(cluster, tmp_path, "cluster/config.json")
        status = wait_for_leader(cluster)
        assert status["term"] > term, f"the term {term} was forgotten: {status}"
        assert cluster.ask(0, {"op": "get_topics"}) == {"success": True, "topics": ["kept"]}
        stop(second)
    finally:
        cluster.close()
    expected = cluster.data_directory(0).resolve()
    assert expected.parent == (home / "raftmq-data").resolve()
    log = (home / "node-0.log").read_text()
    assert log.count(f"data directory {expected}") == 2, "the absolute path is logged at each start"
    for directory in (elsewhere, somewhere_else, tmp_path):
        assert not (directory / "raftmq-data").exists(), f"data left under the working directory {directory}"


def run_to_exit(cluster: LocalCluster, *arguments: str) -> subprocess.CompletedProcess:
    command = [str(node_binary()), str(cluster.config_path), "0", *arguments]
    started = time.monotonic()
    finished = subprocess.run(command, cwd=cluster.directory, capture_output=True, text=True, timeout=30)
    assert time.monotonic() - started < 10, "a failed start exits promptly"
    return finished


def hold_port(port: int) -> socket.socket:
    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    held.bind(("127.0.0.1", port))
    held.listen()
    return held


def test_a_start_on_a_busy_port_leaves_no_data_directory_and_keeps_an_existing_one(tmp_path):
    cluster = LocalCluster(tmp_path, 1)
    held = hold_port(cluster.addresses[0]["port"])
    try:
        failed = run_to_exit(cluster)
        explicit = run_to_exit(cluster, "--data-dir", str(tmp_path / "explicit" / "node0"))
    finally:
        held.close()
    for finished in (failed, explicit):
        assert finished.returncode != 0 and "cannot bind" in finished.stderr, finished.stderr
    assert not (tmp_path / "raftmq-data").exists(), "the default data directory was left behind"
    assert not (tmp_path / "explicit").exists(), "the --data-dir directory was left behind"

    # A directory holding a node's state is never removed by a failed start.
    cluster.start(0)
    wait_for_leader(cluster)
    cluster.kill(0)
    directory = cluster.data_directory(0)
    files = sorted(path.name for path in directory.iterdir())
    held = hold_port(cluster.addresses[0]["internal_port"])
    try:
        failed = run_to_exit(cluster)
    finally:
        held.close()
        cluster.close()
    assert failed.returncode != 0 and "cannot bind peer socket" in failed.stderr, failed.stderr
    # Every file of the node's state is still there. (Opening the log may
    # remove leftovers of the kill: a temporary file of an interrupted
    # replacement, say IDENTITY.tmp.)
    kept = sorted(path.name for path in directory.iterdir())
    assert [name for name in files if not name.endswith(".tmp")] == [name for name in kept if not name.endswith(".tmp")]


def test_a_start_with_an_address_of_another_machine_leaves_no_data_directory(tmp_path):
    cluster = LocalCluster(tmp_path, 1)
    cluster.addresses[0]["ip"] = "192.0.2.1"  # TEST-NET-1: never an address of this machine
    cluster.config_path.write_text(json.dumps({"addresses": cluster.addresses}))
    # Past the refusal of unauthenticated peers off loopback, to the bind.
    failed = run_to_exit(cluster, "--insecure-peers")
    assert failed.returncode != 0 and "cannot bind" in failed.stderr, failed.stderr
    assert not (tmp_path / "raftmq-data").exists()
    refused = run_to_exit(cluster)
    assert refused.returncode != 0 and "refusing to serve peers unauthenticated" in refused.stderr, refused.stderr
    assert not (tmp_path / "raftmq-data").exists()
