#!/usr/bin/env bash
# Usage: scripts/demo.sh
#
# Build raftmq, start the 3-node cluster from config.json, and show it
# working: a put and a get through the leader, then every node's status.
# The cluster keeps running; stop it with: scripts/cluster.sh stop. Its data
# lives in run/config/node-*.data and survives restarts (delete it with
# scripts/cluster.sh clean).
case "${1:-}" in -h | --help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c 'import zmq' 2>/dev/null || python3 -m pip install --quiet -r tests/python/requirements.txt
cargo build --release --bin raftmq-node
scripts/cluster.sh stop config.json >/dev/null
scripts/cluster.sh start config.json
echo "waiting 2 s for an election..."
sleep 2
PYTHONPATH=clients/python python3 - <<'PY'
from raftmq_client import Client
client = Client.from_config("config.json")
leader = client.find_leader()
print(f"leader: {leader}")
client.put_topic("demo")
client.put_message("demo", "hello, replicated world")
print("topics:", client.get_topics())
print("got back:", client.get_message("demo"))
PY
scripts/cluster.sh status config.json
echo "cluster still running; stop it with: scripts/cluster.sh stop (data kept in run/config/node-*.data)"
