#!/usr/bin/env bash
# Benchmark: initial import of a 10,000-message INBOX of realistic sizes from Dovecot,
# compared in the same run with mbsync (isync) and with the floor (one UID FETCH 1:*
# reading every byte); then idle rounds, 1,000 flag changes and IDLE latency.
# POSTERN_BENCH_MESSAGES changes the size.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --workspace --bins --quiet
exec scripts/with-postgres.sh target/release/mail_bench
