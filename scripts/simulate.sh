#!/usr/bin/env bash
# A long randomized simulator campaign: scripts/simulate.sh [seeds per test]
# (default 3000; CI runs 150/150/40). Replay one seed with SIM_SEED=<n>.
set -euo pipefail
cd "$(dirname "$0")/.."
SIM_SEEDS="${1:-3000}" cargo test --release --test simulation randomized -- --nocapture
