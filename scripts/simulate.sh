#!/usr/bin/env bash
# A long randomized simulator campaign (default 3000 seeds per test; CI runs
# 150/150/40). Replay one seed with SIM_SEED=<n>.
#
# Usage: scripts/simulate.sh [seeds per test]
case "${1:-}" in -h | --help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
set -euo pipefail
cd "$(dirname "$0")/.."
SIM_SEEDS="${1:-3000}" cargo test --release --test simulation randomized -- --nocapture
