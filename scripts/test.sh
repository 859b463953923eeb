#!/usr/bin/env bash
# Run every test: Rust unit tests, the deterministic simulator, and the
# process-level pytest suite against real raftmq-node processes.
#
# Usage: scripts/test.sh
case "${1:-}" in -h | --help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c 'import zmq, pytest' 2>/dev/null || python3 -m pip install --quiet -r tests/python/requirements.txt
cargo build --release --bin raftmq-node
cargo test --release
python3 -m pytest tests/python -q -p no:cacheprovider
