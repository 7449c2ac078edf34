#!/usr/bin/env bash
# Benchmark of the CalDAV endpoint against Radicale and Xandikos with the same data:
# no-change sync-collection and PROPFIND depth 1 under 50 clients (wrk), the gateway's
# static-route ceiling, and PUT-to-back-end latency. POSTERN_BENCH_EVENTS sets the size.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
command -v wrk >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
cargo build --release --workspace --bins --quiet
pgdir=$(mktemp -d /tmp/postern-bench-pg.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() { scripts/postgres.sh stop "$pgdir" || true; rm -rf "$pgdir"; }
trap cleanup EXIT
export POSTERN_TEST_DATABASE_URL=$(scripts/postgres.sh start "$pgdir" "$port")
target/release/dav_bench
