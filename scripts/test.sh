#!/usr/bin/env bash
# Run every test: Rust unit tests, the deterministic simulator, and the
# process-level pytest suite against real raftmq-node processes.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c 'import zmq, pytest' 2>/dev/null || python3 -m pip install --quiet -r tests/python/requirements.txt
cargo build --release --bin raftmq-node
cargo test --release
python3 -m pytest tests/python -q -p no:cacheprovider
