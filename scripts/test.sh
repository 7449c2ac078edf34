#!/usr/bin/env bash
# The whole test suite: installs what is missing, starts a throwaway PostgreSQL on
# loopback, builds, checks formatting and lints, fuzzes the parsers of what the
# gateway reads from the internet for a bounded time, builds and runs the container
# image (podman), and runs every test (unit, property, and end-to-end against real
# PostgreSQL, Radicale and Xandikos).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export CARGO_TERM_COLOR=never
# A fresh clone gains nothing from incremental artefacts, and they cost gigabytes.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
echo "==> deployment files"
check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
scripts/check-chart.sh
echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "==> fuzzing (bounded run from the checked-in corpus)"
scripts/fuzz.sh "${POSTERN_FUZZ_SECONDS:-20}"
echo "==> cargo build"
cargo build --workspace --bins --quiet
echo "==> container image"
scripts/check-image.sh
echo "==> cargo test"
scripts/with-postgres.sh cargo test --workspace --quiet --no-fail-fast -- --test-threads="${POSTERN_TEST_THREADS:-3}" "$@"
