#!/usr/bin/env bash
# Benchmark: the gateway's IMAP endpoint and Dovecot serving the same 10,000-message
# INBOX in the same run: full-mailbox FETCH of ENVELOPE and BODYSTRUCTURE, no-change
# QRESYNC re-select, IDLE latency, 50 clients at once.
# POSTERN_BENCH_MESSAGES changes the size.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --workspace --bins --quiet
exec scripts/with-postgres.sh target/release/imap_bench
