#!/usr/bin/env bash
# A short, bounded fuzzing run of what the gateway reads from the internet (DAV XML,
# request paths, Basic credentials, uploaded calendar objects and vCards), starting
# from the checked-in corpus (fuzz/corpus). libFuzzer on stable Rust (cargo fuzz
# with --sanitizer none). Fails on any panic, abort, single allocation over
# 128 MiB, RSS over 512 MiB or input taking over 10 s.
#   scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 20; POSTERN_FUZZ_SECONDS too)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-${POSTERN_FUZZ_SECONDS:-20}}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --quiet
cargo fuzz build --sanitizer none --release
work=$(mktemp -d /tmp/postern-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
for target in dav_xml dav_path basic_credentials put_validation; do
  echo "==> fuzz $target for ${seconds}s"
  # New inputs go to a scratch folder; the checked-in corpus is only read.
  mkdir -p "$work/$target"
  cargo fuzz run --sanitizer none --release "$target" "$work/$target" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=512 -malloc_limit_mb=128 -timeout=10 \
    -print_final_stats=1 2>&1 | grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)|ERROR|panicked|SUMMARY' || true
  if [ -n "$(ls -A fuzz/artifacts/"$target" 2>/dev/null)" ]; then
    echo "fuzz $target found a failure: fuzz/artifacts/$target" >&2
    exit 1
  fi
done
