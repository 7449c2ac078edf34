#!/usr/bin/env bash
# Benchmark: initial import of 5,000 events + 5,000 contacts from Radicale, compared
# in the same run with vdirsyncer and with the floor (PROPFIND + multiget).
# POSTERN_BENCH_ITEMS changes the size.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --workspace --bins --quiet
pgdir=$(mktemp -d /tmp/postern-bench-pg.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() { scripts/postgres.sh stop "$pgdir" || true; rm -rf "$pgdir"; }
trap cleanup EXIT
export POSTERN_TEST_DATABASE_URL=$(scripts/postgres.sh start "$pgdir" "$port")
target/release/import_bench
