#!/usr/bin/env bash
# Benchmark of idle connector streams on one gateway process
# (tests/src/bin/idle_links_bench.rs): opens 10,000 authenticated Link streams and
# prints the gateway's memory per stream and heartbeat latency.
#   POSTERN_BENCH_STREAMS=N (default 10000), POSTERN_BENCH_TLS=1 for TLS.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --workspace --bins --quiet
# Every stream is a socket on both ends.
ulimit -n "$(ulimit -Hn)"
exec scripts/with-postgres.sh target/release/idle_links_bench
