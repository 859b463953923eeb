#!/usr/bin/env bash
# Off-CPU profile of a 60 s client flood: where the nodes' event loops (or
# LogManagers) wait. Starts a fresh 3-node cluster (ports 7550-7555, as
# scripts/flood_runs.sh), records sched:sched_switch and sched:sched_wakeup
# with kernel stacks for the chosen threads while raftmq-flood runs, then
# prints the longest waits with the stacks that blocked and that woke them
# (scripts/offcpu_report.py). Needs root (perf -a, tracefs): it mounts
# tracefs if needed and installs Debian's linux-perf if perf is missing.
# Output in run/offcpu/: perf.data, script.txt, the nodes' logs, flood.json.
#
# Usage: scripts/offcpu_flood.sh [event-loop|log-manager] [duration_s (default 60)]
case "${1:-}" in -h | --help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${1:-event-loop}"
duration="${2:-60}"
case "$threads" in event-loop | log-manager) ;; *) echo "offcpu_flood.sh: threads are event-loop or log-manager" >&2; exit 2 ;; esac
[ "$(id -u)" = 0 ] || { echo "offcpu_flood.sh: needs root (perf -a and tracefs)" >&2; exit 2; }
command -v perf >/dev/null || { apt-get update -qq && apt-get install -y -qq linux-perf; }
[ -e /sys/kernel/tracing/events ] || mount -t tracefs nodev /sys/kernel/tracing
cargo build --release --bin raftmq-node --bin raftmq-flood >&2
out=run/offcpu
rm -rf "$out" run/flood && mkdir -p "$out"
# shellcheck source=scripts/lib/flood_config.sh
source scripts/lib/flood_config.sh
write_flood_config
scripts/cluster.sh start run/flood.json >/dev/null
sleep 2
pids=$(cat run/flood/node-*.pid)
if [ "$threads" = event-loop ]; then
  tids=$pids # the event loop is each node's main thread
else
  tids=$(for pid in $pids; do grep -l '^log-manager$' /proc/"$pid"/task/*/comm | cut -d/ -f5; done)
fi
switch_filter=$(for tid in $tids; do printf 'prev_pid == %s || next_pid == %s || ' "$tid" "$tid"; done | sed 's/ || $//')
wakeup_filter=$(for tid in $tids; do printf 'pid == %s || ' "$tid"; done | sed 's/ || $//')
perf record -a -g -o "$out/perf.data" -e sched:sched_switch --filter "$switch_filter" \
  -e sched:sched_wakeup --filter "$wakeup_filter" -- sleep "$((duration + 4))" 2>"$out/perf.log" &
recorder=$!
sleep 1
target/release/raftmq-flood --config run/flood.json --clients 832 --window 64 --sockets 16 \
  --duration-s "$duration" --busy-backoff-ms 500 --json >"$out/flood.json"
wait "$recorder"
scripts/cluster.sh stop run/flood.json >/dev/null
sleep 1
cp run/flood/node-*.log "$out/"
rm -rf run/flood
perf script -i "$out/perf.data" -F comm,tid,time,event,trace,ip,sym >"$out/script.txt" 2>/dev/null
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("flood:", json.dumps(d["replies"]), "leadership:", json.dumps({k: d["leadership"][k] for k in ("leader_changes", "follower_lapse_episodes", "max_same_leader_gap_ms")}))' "$out/flood.json"
# shellcheck disable=SC2086 # one argument per thread id
python3 scripts/offcpu_report.py "$out/script.txt" $tids
