"""Every script in scripts/ answers --help with its usage, at once, and does
nothing else: no build, no cluster, no install (so nothing on stderr)."""

import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPOSITORY

SCRIPTS = sorted(path for path in (REPOSITORY / "scripts").iterdir() if path.suffix in (".sh", ".py"))


def test_every_script_is_covered():
    names = {path.name for path in SCRIPTS}
    assert {"bench.sh", "fuzz.sh", "simulate.sh", "failover.py", "test.sh"} <= names
    assert all(path.stat().st_mode & 0o111 for path in SCRIPTS), "every script is executable"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_a_script_answers_help_with_its_usage_and_nothing_else(script: Path, flag: str, tmp_path):
    started = time.monotonic()
    finished = subprocess.run([str(script), flag], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    elapsed = time.monotonic() - started
    assert finished.returncode == 0, finished.stderr
    assert "usage" in finished.stdout.lower(), finished.stdout
    assert finished.stderr == "", f"it started work: {finished.stderr[:500]}"
    assert elapsed < 5, f"{script.name} {flag} took {elapsed:.1f} s"
    assert list(tmp_path.iterdir()) == [], "it wrote files"
