#!/usr/bin/env bash
# The whole test suite: installs what is missing, starts a throwaway PostgreSQL on
# loopback, builds, checks formatting and lints, and runs every test (unit, property,
# and end-to-end against real PostgreSQL, Radicale and Xandikos).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export CARGO_TERM_COLOR=never
echo "==> deployment files"
check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
for member in $(sed -n 's/^members = \[\(.*\)\]/\1/p' Cargo.toml | tr -d '",'); do
  grep -q "^COPY $member $member" Dockerfile || { echo "Dockerfile does not copy workspace member $member" >&2; exit 1; }
done
scripts/check-chart.sh
echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "==> cargo build"
cargo build --workspace --bins --quiet
echo "==> cargo test"
scripts/with-postgres.sh cargo test --workspace --quiet --no-fail-fast -- --test-threads="${POSTERN_TEST_THREADS:-3}" "$@"
