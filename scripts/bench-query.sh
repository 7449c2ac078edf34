#!/usr/bin/env bash
# Benchmark of a filtered calendar-query (SUMMARY text-match and a one-month
# time-range, with data) over a 10,000-event calendar with recurring events, on the
# gateway, Radicale and Xandikos in the same run (POSTERN_BENCH_FILTERED sets the size).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
command -v wrk >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
cargo build --release --workspace --bins --quiet
POSTERN_BENCH_FILTERED=${POSTERN_BENCH_FILTERED:-10000} exec scripts/with-postgres.sh target/release/dav_bench
