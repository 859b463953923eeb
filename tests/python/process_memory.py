"""A process's memory as Linux reports it in /proc/<pid>/status, for the
tests here and for the scripts in scripts/ (which put this folder on
sys.path to import conftest already)."""

from pathlib import Path


def status_kib(pid: int, field: str) -> int | None:
    """The value of `field` (VmRSS, VmHWM, ...) in KiB, or None when the
    status has no such line (a process that has exited)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return None


def rss_mb(pid: int) -> float:
    """Resident memory now, in MiB; NaN when there is none to read."""
    kib = status_kib(pid, "VmRSS")
    return float("nan") if kib is None else kib / 1024


def peak_memory_kib(pid: int) -> int:
    """The highest resident memory the process has had (VmHWM)."""
    kib = status_kib(pid, "VmHWM")
    if kib is None:
        raise AssertionError("no VmHWM in /proc status")
    return kib
