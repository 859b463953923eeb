#!/usr/bin/env bash
# Throughput and latency on a local 3-node cluster (loopback, 100-byte
# messages). Builds the release binaries, starts its own cluster on ports
# 7550-7555, runs each scenario for duration_s seconds (default 5), stops the
# cluster.
#
# Usage: scripts/bench.sh [duration_s]
case "${1:-}" in -h | --help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-5}"
cargo build --release --bin raftmq-node --bin raftmq-bench --bin raftmq-flood
mkdir -p run
config=run/bench.json
cat >"$config" <<JSON
{"addresses": [
  {"ip": "127.0.0.1", "port": 7550, "internal_port": 7553},
  {"ip": "127.0.0.1", "port": 7551, "internal_port": 7554},
  {"ip": "127.0.0.1", "port": 7552, "internal_port": 7555}]}
JSON
trap 'scripts/cluster.sh stop "$config" >/dev/null' EXIT
echo "# raftmq-bench, 3 nodes on loopback, $(nproc) cores, 100-byte puts; disk: $(df --output=source "$PWD" | tail -1)"
for writers in 1 3; do
  target/release/raftmq-bench --fsync-probe-dir "run/fsync-probe-$$" --fsync-probe-count 2000 --fsync-probe-writers "$writers"
done
for mode in "fsync:--fsync true" "no-fsync:--fsync false"; do
  name="${mode%%:*}"
  scripts/cluster.sh clean "$config" >/dev/null
  rm -f run/bench/node-*.log
  RAFTMQ_NODE_ARGS="${mode#*:}" scripts/cluster.sh start "$config" >/dev/null
  sleep 2
  echo "## storage: WAL, $name"
  for scenario in "1 1" "1 16" "8 8" "64 1" "64 16"; do
    set -- $scenario
    target/release/raftmq-bench --config "$config" --clients "$1" --window "$2" --duration-s "$duration"
  done
  if [ "$name" = fsync ]; then
    # A flood of about twice what the cluster commits within one request
    # deadline (53,000 requests in flight; a client answered busy waits
    # 500 ms): leader changes, busy and success latency, timeouts.
    echo "## flood: 832 clients x 64 in flight, busy backoff 500 ms, $((duration * 4)) s"
    target/release/raftmq-flood --config "$config" --clients 832 --window 64 --sockets 16 \
      --duration-s "$((duration * 4))" --busy-backoff-ms 500
  fi
done
scripts/cluster.sh clean "$config" >/dev/null
