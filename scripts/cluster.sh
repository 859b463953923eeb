#!/usr/bin/env bash
# Start, stop, inspect and tail a local raftmq cluster described by a config.
#
# Usage:
#   scripts/cluster.sh start  [config.json]   build (if needed) and start every node
#   scripts/cluster.sh stop   [config.json]   SIGTERM every node started from it
#   scripts/cluster.sh status [config.json]   print every node's status
#   scripts/cluster.sh logs   [config.json]   follow every node's log
#   scripts/cluster.sh clean  [config.json]   stop, then delete every node's data
# Logs, pid files and data directories live in run/<config name>/. Extra node
# options can be passed in RAFTMQ_NODE_ARGS (e.g. "--fsync false").
case "${1:-}" in -h | --help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
set -euo pipefail
cd "$(dirname "$0")/.."
command="${1:-}"
config="${2:-config.json}"
[ -f "$config" ] || { echo "cluster.sh: no config file at $config" >&2; exit 1; }
run_dir="run/$(basename "$config" .json)"
binary="${RAFTMQ_NODE:-target/release/raftmq-node}"
node_count=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["addresses"]))' "$config")
client_endpoint() {
  python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))["addresses"][int(sys.argv[2])]; print("tcp://%s:%d" % (a["ip"], a["port"]))' "$config" "$1"
}

case "$command" in
  start)
    [ -x "$binary" ] || cargo build --release --bin raftmq-node
    mkdir -p "$run_dir"
    for index in $(seq 0 $((node_count - 1))); do
      pid_file="$run_dir/node-$index.pid"
      if [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
        echo "node $index already running (pid $(cat "$pid_file"))"
        continue
      fi
      # shellcheck disable=SC2086 # RAFTMQ_NODE_ARGS is a list of options
      nohup "$binary" "$config" "$index" --data-dir "$run_dir/node-$index.data" ${RAFTMQ_NODE_ARGS:-} \
        >>"$run_dir/node-$index.log" 2>&1 &
      echo $! >"$pid_file"
      echo "node $index started (pid $!), log $run_dir/node-$index.log"
    done
    ;;
  stop)
    for pid_file in "$run_dir"/node-*.pid; do
      [ -f "$pid_file" ] || continue
      pid=$(cat "$pid_file")
      if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" && echo "stopped pid $pid"
      fi
      rm -f "$pid_file"
    done
    ;;
  status)
    for index in $(seq 0 $((node_count - 1))); do
      endpoint=$(client_endpoint "$index")
      printf 'node %s %s ' "$index" "$endpoint"
      PYTHONPATH=clients/python python3 -c 'import json, sys
from raftmq_client import request
reply = request(sys.argv[1], {"op": "status"}, 1000)
print(json.dumps(reply) if reply is not None else "(no reply)")' "$endpoint"
    done
    ;;
  logs)
    tail -n 20 -F "$run_dir"/node-*.log
    ;;
  clean)
    "$0" stop "$config"
    sleep 0.5
    rm -rf "$run_dir"/node-*.data
    echo "deleted the data of every node of $config"
    ;;
  *)
    echo "usage: scripts/cluster.sh start|stop|status|logs|clean [config.json]" >&2
    exit 2
    ;;
esac
