#!/usr/bin/env bash
# Coverage-guided fuzzing with cargo-fuzz (libFuzzer) on the stable
# toolchain (sanitizers off, which is what needs nightly): the client request
# parser, the peer message decoder, and WAL recovery from damaged files.
#
# Usage: scripts/fuzz.sh [seconds per target, default 600] [target ...]
#
# Targets: request_parser, peer_decoder, wal_recovery (default: all three).
# Installs cargo-fuzz first if it is missing.
#
# A crash leaves its input in fuzz/artifacts/<target>/; add it to the
# regression tests (tests/decoders.rs, tests/wal_recovery_regressions.rs).
case "${1:-}" in -h | --help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(request_parser peer_decoder wal_recovery)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
for target in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$target"
  [ -d "fuzz/seeds/$target" ] && cp -n "fuzz/seeds/$target"/* "fuzz/corpus/$target/" 2>/dev/null || true
  echo "== $target for $seconds s"
  (cd fuzz && cargo fuzz run -s none --release "$target" "corpus/$target" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 2>&1) \
    | grep -E "^#[0-9]+ *(DONE|pulse)|stat::number_of_executed_units|stat::peak_rss|cov:|SUMMARY|panicked|==ERROR" | tail -4
done
