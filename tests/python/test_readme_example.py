"""The README's Python example, run as written (only its endpoint changed):
against a live node it prints the documented replies, and pointed at a node
that is down it reports the missing reply promptly instead of hanging."""

import re
import subprocess
import sys
import time

import pytest

from conftest import REPOSITORY, free_ports

DOCUMENTED_ENDPOINT = "tcp://127.0.0.1:5550"


def readme_example() -> str:
    readme = (REPOSITORY / "README.md").read_text()
    section = readme[readme.index("## Python example"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def run_example(endpoint: str) -> tuple[subprocess.CompletedProcess, float]:
    code = readme_example().replace(DOCUMENTED_ENDPOINT, endpoint)
    started = time.monotonic()
    finished = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    return finished, time.monotonic() - started


def test_the_readme_example_gives_up_on_a_node_that_is_down():
    assert DOCUMENTED_ENDPOINT in readme_example()
    (port,) = free_ports(1)
    finished, elapsed = run_example(f"tcp://127.0.0.1:{port}")
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == f"no reply from tcp://127.0.0.1:{port} within 1000 ms"
    assert elapsed < 5, f"took {elapsed:.1f} s"


def test_the_readme_example_works_against_a_node(make_cluster):
    cluster = make_cluster(1)
    assert cluster.wait_until(lambda: (cluster.status(0) or {}).get("role") == "Leader")
    finished, _ = run_example(cluster.endpoint(0))
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.splitlines() == [
        "{'success': True}",
        "{'success': True}",
        "{'message': 'hello', 'success': True}",
    ]


def test_the_client_library_gives_up_on_nodes_that_are_down():
    from raftmq_client import Client, Indeterminate

    client = Client([f"tcp://127.0.0.1:{port}" for port in free_ports(2)], timeout_ms=200, give_up_after_s=1.0)
    for operation in (client.get_topics, lambda: client.put_topic("t")):
        started = time.monotonic()
        with pytest.raises(Indeterminate):
            operation()
        assert time.monotonic() - started < 3, "bounded by give_up_after_s plus one receive timeout"
