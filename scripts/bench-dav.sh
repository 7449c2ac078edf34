#!/usr/bin/env bash
# Benchmark of the CalDAV endpoint against Radicale and Xandikos with the same data:
# no-change sync-collection and PROPFIND depth 1 under 50 clients (wrk), the gateway's
# static-route ceiling, one calendar-query with data, and PUT-to-back-end latency.
# POSTERN_BENCH_EVENTS sets the size; POSTERN_BENCH_BIG=N measures large answers
# (calendar-query and sync-collection with data, memory) on the gateway alone.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
command -v wrk >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
cargo build --release --workspace --bins --quiet
exec scripts/with-postgres.sh target/release/dav_bench
