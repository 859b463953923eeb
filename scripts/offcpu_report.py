#!/usr/bin/env python3
"""Where chosen threads waited off the CPU, from `perf script` output of a
recording of sched:sched_switch and sched:sched_wakeup with kernel stacks
(scripts/offcpu_flood.sh makes one). For each time a thread left the CPU
blocked (state S or D) and was woken later, the wait is the time between
the two; the longest waits are printed with the kernel stack the thread
blocked in and the stack of the thread that woke it, then the waits over
the threshold counted by where they blocked. Waits in the event loop's own
idle select are counted but not printed.

Usage: scripts/offcpu_report.py PERF_SCRIPT_TEXT TID [TID ...] [--threshold-ms 40] [--top 20]"""

import argparse
import collections
import re

HEADER = re.compile(r"^\s*(\S.*?)\s+(\d+)\s+([\d.]+):\s+(\S+):\s+(.*)$")
IDLE = "crossbeam_channel::select"
SCHEDULER_FRAMES = ("__schedule", "schedule", "entry_SYSCALL", "do_syscall")


def read_events(path: str) -> list[dict]:
    """perf script's text: a header line per event, then its stack, one frame a line."""
    events, current = [], None
    for line in open(path, errors="replace"):
        if not line.strip():
            continue
        match = HEADER.match(line)
        if match and not line.startswith("\t"):
            current = {"comm": match.group(1), "tid": match.group(2), "time": float(match.group(3)),
                       "event": match.group(4), "trace": match.group(5), "stack": []}
            events.append(current)
        elif current is not None:
            current["stack"].append(line.split()[-1])
    return events


def waits(events: list[dict], tids: set[str]) -> list[tuple[float, dict, dict]]:
    """(seconds, the switch-out event, the wakeup event) for each blocked wait of `tids`."""
    blocked, found = {}, []
    for event in events:
        if event["event"] == "sched:sched_switch":
            match = re.search(r"prev_pid=(\d+) .*prev_state=(\S+)", event["trace"])
            if match and match.group(1) in tids and not match.group(2).startswith("R"):
                blocked[match.group(1)] = event
        elif event["event"] == "sched:sched_wakeup":
            match = re.search(r"\bpid=(\d+)", event["trace"])
            if match and match.group(1) in blocked:
                start = blocked.pop(match.group(1))
                found.append((event["time"] - start["time"], start, event))
    return found


def where(stack: list[str]) -> str:
    frames = [frame for frame in stack if not frame.startswith(SCHEDULER_FRAMES)]
    return " < ".join(frames[:10])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("script_text")
    parser.add_argument("tids", nargs="+")
    parser.add_argument("--threshold-ms", type=float, default=40.0)
    parser.add_argument("--top", type=int, default=20)
    arguments = parser.parse_args()
    found = waits(read_events(arguments.script_text), set(arguments.tids))
    over = [wait for wait in found if wait[0] * 1000 >= arguments.threshold_ms]
    printed = 0
    for seconds, start, woken in sorted(over, key=lambda wait: -wait[0]):
        if IDLE in " ".join(start["stack"]) or printed >= arguments.top:
            continue
        printed += 1
        print(f"{seconds * 1000:.0f} ms, thread {start['tid']} at {start['time']:.3f}")
        print(f"   blocked in: {where(start['stack'])}")
        print(f"   woken by:   {woken['comm']} {woken['tid']}: {where(woken['stack'])}")
    print(f"{len(found)} blocked waits; {len(over)} over {arguments.threshold_ms:.0f} ms, by where they blocked:")
    counts = collections.Counter("idle (select)" if IDLE in " ".join(start["stack"]) else where(start["stack"])[:110]
                                 for _, start, _ in over)
    for place, count in counts.most_common():
        print(f"  {count:6d}  {place}")


if __name__ == "__main__":
    main()
