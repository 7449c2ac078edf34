#!/usr/bin/env bash
# The whole test suite: installs what is missing, starts a throwaway PostgreSQL on
# loopback, builds, checks formatting and lints, and runs every test (unit, property,
# and end-to-end against real PostgreSQL, Radicale and Xandikos).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export CARGO_TERM_COLOR=never
pgdir=$(mktemp -d /tmp/postern-test-pg.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() { scripts/postgres.sh stop "$pgdir" || true; rm -rf "$pgdir"; }
trap cleanup EXIT
export POSTERN_TEST_DATABASE_URL=$(scripts/postgres.sh start "$pgdir" "$port")
echo "==> PostgreSQL at $POSTERN_TEST_DATABASE_URL"
echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "==> cargo build"
cargo build --workspace --bins --quiet
echo "==> cargo test"
cargo test --workspace --quiet --no-fail-fast -- --test-threads="${POSTERN_TEST_THREADS:-3}" "$@"
