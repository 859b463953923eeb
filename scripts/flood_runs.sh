#!/usr/bin/env bash
# 60 s client floods at about twice the cluster's capacity, each on a fresh
# 3-node cluster (ports 7550-7555, run/flood.json, data in run/flood/), and
# one summary line per run: leader changes, follower lapse episodes/answers,
# good puts/s, `busy` and `timeout` replies, the longest gap between status
# answers naming the same leader, and the event loops' slow turns (over
# 50 ms) with the longest. With several binaries, each round runs each of
# them in turn (A B, A B, ...), so both see the same machine.
# Logs and the flood's JSON are kept in run/flood-runs/<round>-<binary>/.
#
# Usage: scripts/flood_runs.sh [rounds (default 3)] [node binary ...]
#        (default binary: target/release/raftmq-node; --duration-s via
#        FLOOD_DURATION_S, default 60)
case "${1:-}" in -h | --help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
shift || true
binaries=("$@")
[ ${#binaries[@]} -gt 0 ] || binaries=(target/release/raftmq-node)
duration="${FLOOD_DURATION_S:-60}"
cargo build --release --bin raftmq-node --bin raftmq-flood >&2
# shellcheck source=scripts/lib/flood_config.sh
source scripts/lib/flood_config.sh
write_flood_config
for round in $(seq 1 "$rounds"); do
  for binary in "${binaries[@]}"; do
    out="run/flood-runs/$round-$(basename "$binary")"
    rm -rf "$out" run/flood && mkdir -p "$out"
    RAFTMQ_NODE="$binary" scripts/cluster.sh start run/flood.json >/dev/null
    sleep 2
    target/release/raftmq-flood --config run/flood.json --clients 832 --window 64 --sockets 16 \
      --duration-s "$duration" --busy-backoff-ms 500 --json >"$out/flood.json"
    scripts/cluster.sh stop run/flood.json >/dev/null
    sleep 1
    cp run/flood/node-*.log "$out/"
    python3 - "$out" "$binary" <<'PY'
import glob, json, re, sys
out, binary = sys.argv[1], sys.argv[2]
run = json.load(open(f"{out}/flood.json"))
leadership, replies = run["leadership"], run["replies"]
turns = [int(match.group(1)) for path in glob.glob(f"{out}/node-*.log") for line in open(path)
         for match in [re.search(r"a turn took (\d+) ms", line)] if match]
print(f"{out} ({binary}): leader_changes={leadership['leader_changes']} "
      f"follower_lapses={leadership['follower_lapse_episodes']}/{leadership['follower_lapse_answers']} "
      f"good_puts_per_s={run['good_puts_per_s']:.0f} busy={replies['busy']} timeout={replies['timeout']} "
      f"max_same_leader_gap_ms={leadership['max_same_leader_gap_ms']:.0f} "
      f"slow_turns={len(turns)} longest_turn_ms={max(turns, default=0)}")
PY
  done
done
rm -rf run/flood
