#!/usr/bin/env bash
# Builds the Dockerfile with podman and runs the system from the image, the way the
# compose file and the Helm chart run it:
#   1. the image: both binaries, user nonroot, no shell or package manager inside;
#   2. `admin bootstrap`, the gateway and a connector, each a container of that image
#      with a read-only root file system, no capabilities and no new privileges, fed
#      with the compose demo's secrets, connector config and Radicale demo data
#      (PostgreSQL and Radicale run on loopback; containers share the host network);
#   3. the demo calendar reaches a CalDAV client through the gateway, and a client's
#      new event reaches Radicale through the connector;
#   4. `healthcheck` answers inside the running container (no shell, no curl there);
#   5. SIGTERM stops the gateway and the connector (as PID 1) with exit status 0.
# Needs root and podman; scripts/image-bases.sh provides the base images. The figures
# (image size, build time) are printed. Exits non-zero on the first failed check.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/image-bases.sh

image=localhost/postern:check
work=$(mktemp -d /tmp/postern-image.XXXXXX); chmod 755 "$work"
names=(postern-check-gateway postern-check-connector)
radicale_pid=
cleanup() {
  podman rm -f "${names[@]}" >/dev/null 2>&1 || true
  [ -n "$radicale_pid" ] && kill "$radicale_pid" 2>/dev/null || true
  scripts/postgres.sh stop "$work/pg" >/dev/null 2>&1 || true
  [ -n "${POSTERN_KEEP_TEST_FILES:-}" ] && echo "    kept $work" || rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for n in "${names[@]}"; do podman logs "$n" 2>/dev/null | tail -20 | sed "s/^/    $n: /" >&2 || true; done; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Limits the OCI runtime can set here without CAP_SYS_RESOURCE, and a runtime that works
# with this machine's cgroups (crun refuses hybrid v1/v2 hierarchies; runc does not).
limits=(--ulimit nofile=16384:16384 --ulimit nproc=4096:4096)
runtime=
for rt in crun runc; do
  command -v "$rt" >/dev/null || continue
  if podman --runtime "$rt" run --rm "${limits[@]}" gcr.io/distroless/cc-debian12:nonroot \
      /lib64/ld-linux-x86-64.so.2 --version >/dev/null 2>&1; then runtime=$rt; break; fi
done
[ -n "$runtime" ] || fail "neither crun nor runc can start a container here"
podman=(podman --runtime "$runtime")

echo "==> podman build ($runtime; a release build, several minutes when not cached)"
start=$(date +%s)
"${podman[@]}" build --pull=never --network=host "${limits[@]}" -t "$image" . 2>&1 | tee "$work/build.log" \
  | grep --line-buffered -E '^\[[0-9]/[0-9]\] STEP [0-9/]+: (FROM|RUN)|Finished' | sed -u 's/^/    /' \
  || { tail -30 "$work/build.log" >&2; fail "podman build"; }
echo "    built in $(( $(date +%s) - start )) s, $(( $(podman image inspect -f '{{.Size}}' "$image") / 1000000 )) MB"

echo "==> the image"
[ "$(podman image inspect -f '{{.Config.User}}' "$image")" = nonroot:nonroot ] || fail "image user is not nonroot"
podman image inspect -f '{{json .Config.Entrypoint}}' "$image" | grep -q '"/usr/local/bin/postern-gateway"' \
  || fail "entrypoint is not postern-gateway"
"${podman[@]}" create --name postern-check-gateway "$image" >/dev/null
podman export postern-check-gateway | tar -t >"$work/files"
podman rm postern-check-gateway >/dev/null
for f in usr/local/bin/postern-gateway usr/local/bin/postern-connector; do
  grep -qx "$f" "$work/files" || fail "$f is not in the image"
done
if grep -E '^(usr/)?(s?bin)/(sh|bash|dash|busybox|apt|apt-get|dpkg)$' "$work/files"; then fail "the image carries a shell or package manager"; fi
echo "    user nonroot, both binaries, no shell or package manager ($(wc -l <"$work/files") files)"
run=("${podman[@]}" run "${limits[@]}" --network=host --read-only --cap-drop=all --security-opt=no-new-privileges)
"${run[@]}" --rm "$image" --version | grep -q '^postern-gateway ' || fail "postern-gateway --version"
"${run[@]}" --rm --entrypoint /usr/local/bin/postern-connector "$image" --version | grep -q '^postern-connector ' \
  || fail "postern-connector --version"

echo "==> PostgreSQL and Radicale (the corporate server) on loopback"
db=$(scripts/postgres.sh start "$work/pg" "$(free_port)")
rport=$(free_port); gport=$(free_port); hport=$(free_port)
mkdir -p "$work/radicale" "$work/secrets" "$work/bootstrap" "$work/etc"
cp -r deploy/compose/radicale/collections "$work/radicale/"
cp deploy/compose/radicale/users "$work/radicale/users"
sed -e "s|^hosts = .*|hosts = 127.0.0.1:$rport|" -e "s|/config/users|$work/radicale/users|" \
  -e "s|/data/collections|$work/radicale/collections|" deploy/compose/radicale/config >"$work/radicale/config"
python3 -m radicale --config "$work/radicale/config" >"$work/radicale.log" 2>&1 &
radicale_pid=$!
# The compose demo's secrets and connector config, pointed at loopback.
cp deploy/compose/secrets/signing_key deploy/compose/secrets/radicale_password "$work/secrets/"
echo "$db" >"$work/secrets/database_url"
sed -e "s|http://gateway:7443|http://127.0.0.1:$gport|" -e "s|http://radicale:5232/|http://127.0.0.1:$rport/|" \
  -e 's|interval = "30s"|interval = "2s"|' deploy/compose/connector.toml >"$work/etc/connector.toml"
chmod -R a+rX "$work/secrets" "$work/etc"
chown 65532:65532 "$work/bootstrap"
env_files=(-e POSTERN_DATABASE_URL_FILE=/run/secrets/database_url -e POSTERN_SIGNING_KEY_FILE=/run/secrets/signing_key
  -v "$work/secrets:/run/secrets:ro")

echo "==> admin bootstrap, gateway and connector from the image"
"${run[@]}" --rm "${env_files[@]}" -v "$work/bootstrap:/bootstrap" "$image" admin bootstrap --tenant acme \
  --user alice --connector hq --token-file /bootstrap/token --password-file /bootstrap/alice.password >/dev/null \
  || fail "admin bootstrap"
password=$(cat "$work/bootstrap/alice.password")
"${run[@]}" -d --name postern-check-gateway "${env_files[@]}" "$image" serve \
  --grpc-listen "127.0.0.1:$gport" --http-listen "127.0.0.1:$hport" >/dev/null
ready=
for _ in $(seq 300); do
  if podman exec postern-check-gateway /usr/local/bin/postern-gateway healthcheck \
      --url "http://127.0.0.1:$hport/readyz" >/dev/null 2>&1; then ready=1; break; fi
  [ "$(podman inspect -f '{{.State.Running}}' postern-check-gateway)" = true ] || fail "the gateway exited"
  sleep 0.1
done
[ -n "$ready" ] || fail "the gateway's healthcheck never answered ready"
echo "    gateway ready (healthcheck inside the container)"
"${run[@]}" -d --name postern-check-connector -v "$work/secrets/radicale_password:/run/secrets/radicale_password:ro" \
  -v "$work/etc:/etc/postern:ro" -v "$work/bootstrap:/bootstrap:ro" \
  --entrypoint /usr/local/bin/postern-connector "$image" run --config /etc/postern/connector.toml >/dev/null

# Poll (bounded) until the connector's first import shows through the gateway.
client=(python3 tests/clients/caldav_client.py "http://127.0.0.1:$hport/" alice@acme "$password")
want=$(grep -h -m1 '^UID:' $(grep -l VEVENT deploy/compose/radicale/collections/collection-root/alice/work/*.ics) \
  | tr -d '\r' | cut -d: -f2- | LC_ALL=C sort | xargs)
got=
for _ in $(seq 120); do
  got=$("${client[@]}" list Work 2>/dev/null | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)["uids"]))' 2>/dev/null || true)
  [ "$got" = "$want" ] && break
  sleep 0.5
done
[ "$got" = "$want" ] || fail "a CalDAV client sees events [$got] through the gateway, not the demo's [$want]"
echo "    the demo calendar ($(wc -w <<<"$want") events) reached a CalDAV client through the gateway"

"${client[@]}" create Work image-check@postern.test "Written through the image" >/dev/null || fail "create an event"
found=
for _ in $(seq 120); do
  if grep -rqs "image-check@postern.test" "$work/radicale/collections/collection-root/alice/work"; then found=1; break; fi
  sleep 0.5
done
[ -n "$found" ] || fail "the client's new event never reached Radicale"
echo "    a client's new event reached Radicale through the connector"

echo "==> SIGTERM"
for n in postern-check-connector postern-check-gateway; do
  podman stop -t 30 "$n" >/dev/null
  code=$(podman inspect -f '{{.State.ExitCode}}' "$n")
  [ "$code" = 0 ] || fail "$n exited with $code on SIGTERM"
done
if podman logs postern-check-gateway 2>&1 | grep -q panicked; then fail "the gateway panicked"; fi
echo "    the connector and the gateway stopped cleanly (exit 0)"
echo "==> image check passed"
