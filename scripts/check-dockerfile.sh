#!/usr/bin/env bash
# Checks the Dockerfile's build stage without a Docker engine: copies into an empty
# directory exactly what its `COPY` lines bring (before the runtime stage), then asks
# cargo to resolve the workspace there with the lock file as it is (`--locked`). A
# workspace member the image forgets, or a stale Cargo.lock, fails here as it would in
# `docker build`. Run after a build, so the registry cache holds every crate.
set -euo pipefail
cd "$(dirname "$0")/.."
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
# The build stage: from the first FROM up to the next one.
awk '/^FROM /{n++} n==1' Dockerfile | sed -n 's/^COPY \([^-][^ ]*\( [^ ]*\)*\) \([^ ]*\)$/\1 \3/p' |
while read -r line; do
  set -- $line
  dest=${!#}
  for src in "${@:1:$#-1}"; do
    # As docker does: a directory's contents go into dest; a file goes into dest/
    # when dest ends with a slash, else becomes dest.
    if [ -d "$src" ]; then
      mkdir -p "$ctx/$dest" && cp -r "$src/." "$ctx/$dest/"
    elif [[ $dest == */ ]]; then
      mkdir -p "$ctx/$dest" && cp "$src" "$ctx/$dest"
    else
      mkdir -p "$(dirname "$ctx/$dest")" && cp "$src" "$ctx/$dest"
    fi
  done
done
(cd "$ctx" && cargo metadata --locked --offline --format-version 1 >/dev/null) \
  || { echo "the Dockerfile's build context does not resolve (missing member or stale Cargo.lock)" >&2; exit 1; }
members=$(sed -n 's/^members = \[\(.*\)\]/\1/p' Cargo.toml | tr -d '",')
for m in $members; do
  [ -f "$ctx/$m/Cargo.toml" ] || { echo "Dockerfile does not copy workspace member $m" >&2; exit 1; }
done
echo "Dockerfile build context ok: $(echo $members | wc -w) members, Cargo.lock current"
