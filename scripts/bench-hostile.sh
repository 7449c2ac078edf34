#!/usr/bin/env bash
# Benchmark of the gateway under attack (tests/src/bin/hostile_bench.rs): a
# well-behaved DAV client's latency and the gateway's peak memory while attackers run
# each class (nested XML, huge PROPFIND, password flood, slowloris, idle TLS, gzip
# bomb), next to the idle baseline. Release build, default limits, TLS on.
#   POSTERN_BENCH_SECONDS=N sets each phase's length (default 10).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --workspace --bins --quiet
# The attackers hold thousands of sockets.
ulimit -n "$(ulimit -Hn)"
exec scripts/with-postgres.sh target/release/hostile_bench
