#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL on a free loopback port, its URL in
# POSTERN_TEST_DATABASE_URL; stops and removes the cluster afterwards.
#   scripts/with-postgres.sh COMMAND [ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."
pgdir=$(mktemp -d /tmp/postern-pg.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() {
  scripts/postgres.sh stop "$pgdir" || true
  # POSTERN_KEEP_TEST_FILES keeps the server's log, as it keeps the tests' scratch files.
  [ -n "${POSTERN_KEEP_TEST_FILES:-}" ] && cp "$pgdir/pg.log" "/tmp/postern-pg-$port.log" 2>/dev/null
  rm -rf "$pgdir"
}
trap cleanup EXIT
POSTERN_TEST_DATABASE_URL=$(scripts/postgres.sh start "$pgdir" "$port")
export POSTERN_TEST_DATABASE_URL
echo "==> PostgreSQL at $POSTERN_TEST_DATABASE_URL"
"$@"
