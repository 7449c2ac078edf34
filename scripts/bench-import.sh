#!/usr/bin/env bash
# Benchmark: initial import of 5,000 events + 5,000 contacts from Radicale, compared
# in the same run with vdirsyncer and with the floor (PROPFIND + multiget).
# POSTERN_BENCH_ITEMS changes the size.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --workspace --bins --quiet
exec scripts/with-postgres.sh target/release/import_bench
