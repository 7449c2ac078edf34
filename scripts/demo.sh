#!/usr/bin/env bash
# The whole system on this one machine: PostgreSQL, Radicale (a real CalDAV/CardDAV
# server) with demo data, the gateway and a connector. Shows the import as it
# happens, then the URL and credentials to use. Ctrl-C stops everything.
#   DEMO_EVENTS / DEMO_CONTACTS change the amount of demo data (default 1000 each).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
echo "==> building (release)"
cargo build --release --bins --quiet
run=$(pwd)/.run
rm -rf "$run"; mkdir -p "$run"
pids=()
stopped=
cleanup() {
  [ -n "$stopped" ] && return; stopped=1
  echo; echo "==> stopping"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  scripts/postgres.sh stop "$run/pg" || true
}
trap cleanup EXIT INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

db=$(scripts/postgres.sh start "$run/pg" "$(free_port)")
export POSTERN_DATABASE_URL=$db
echo "==> PostgreSQL at $db"

# Radicale with demo data written straight into its storage.
rport=$(free_port)
root=$run/radicale/collections/collection-root/alice
mkdir -p "$root/work" "$root/contacts"
echo '{"tag": "VCALENDAR", "D:displayname": "Work", "ICAL:calendar-color": "#1e88e5ff"}' >"$root/work/.Radicale.props"
echo '{"tag": "VADDRESSBOOK", "D:displayname": "Colleagues"}' >"$root/contacts/.Radicale.props"
cp tests/fixtures/calendar/*.ics "$root/work/"
cp tests/fixtures/contacts/*.vcf "$root/contacts/"
python3 - "$root" "${DEMO_EVENTS:-1000}" "${DEMO_CONTACTS:-1000}" <<'PY'
import sys
root, events, contacts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(events):
    open(f"{root}/work/demo-{i}.ics", "w", newline="").write(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Postern//demo//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:demo-{i}@postern.demo\r\nDTSTAMP:20260101T000000Z\r\n"
        f"DTSTART:2026{1 + i % 12:02d}{1 + i % 28:02d}T{8 + i % 9:02d}0000Z\r\nDURATION:PT1H\r\n"
        f"SUMMARY:Meeting {i}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
for i in range(contacts):
    open(f"{root}/contacts/demo-{i}.vcf", "w", newline="").write(
        f"BEGIN:VCARD\r\nVERSION:4.0\r\nUID:demo-{i}@postern.demo\r\nFN:Colleague {i}\r\n"
        f"N:{i};Colleague;;;\r\nEMAIL:colleague{i}@acme.example\r\nEND:VCARD\r\n")
PY
echo "alice:alicepw" >"$run/radicale/users"
cat >"$run/radicale/config" <<CONF
[server]
hosts = 127.0.0.1:$rport
[auth]
type = htpasswd
htpasswd_filename = $run/radicale/users
htpasswd_encryption = plain
[storage]
filesystem_folder = $run/radicale/collections
[rights]
type = owner_only
[logging]
level = warning
CONF
python3 -m radicale --config "$run/radicale/config" >"$run/radicale.log" 2>&1 &
pids+=($!)
echo "==> Radicale (the corporate server) at http://127.0.0.1:$rport/ (alice / alicepw)"

gw=target/release/postern-gateway
gport=$(free_port); hport=${POSTERN_DEMO_HTTP_PORT:-8080}
$gw admin tenant add acme >/dev/null
password=$($gw admin user add --tenant acme alice | tail -n1)
$gw admin connector enroll --tenant acme hq | tail -n1 >"$run/token"
$gw serve --grpc-listen "127.0.0.1:$gport" --http-listen "127.0.0.1:$hport" >"$run/gateway.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$hport/readyz" >/dev/null && break; sleep 0.1; done
echo "==> gateway: connectors on 127.0.0.1:$gport, HTTP on 127.0.0.1:$hport"

cat >"$run/connector.toml" <<CONF
gateway = "http://127.0.0.1:$gport"
token_file = "$run/token"

[[source]]
name = "corp-calendar"
kind = "caldav"
url = "http://127.0.0.1:$rport/"
username = "alice"
password = "alicepw"
user = "alice@acme"
interval = "10s"

[[source]]
name = "corp-contacts"
kind = "carddav"
url = "http://127.0.0.1:$rport/"
username = "alice"
password = "alicepw"
user = "alice@acme"
interval = "10s"
CONF
target/release/postern-connector run --config "$run/connector.toml" >"$run/connector.log" 2>&1 &
pids+=($!)
echo "==> connector started (inside the firewall; it dials out to the gateway)"
echo
want=$(( ${DEMO_EVENTS:-1000} + ${DEMO_CONTACTS:-1000} + $(ls tests/fixtures/calendar | wc -l) + $(ls tests/fixtures/contacts | wc -l) ))
start=$(date +%s%N)
while :; do
  n=$(psql -qtA "$db" -c "SELECT count(*) FROM items WHERE NOT deleted" 2>/dev/null || echo 0)
  last=$(tail -n1 "$run/connector.log" 2>/dev/null | sed -E 's/^[^ ]+ +[A-Z]+ +[^ ]+ //' | cut -c1-60)
  printf '\r    imported %6s / %s items   %-60s' "$n" "$want" "$last"
  [ "$n" -ge "$want" ] && break
  sleep 0.3
done
echo "  ($(( ($(date +%s%N) - start) / 1000000 )) ms)"; echo
$gw admin status
cat <<EOF

Postern is running.
  CalDAV/CardDAV URL : http://127.0.0.1:$hport/   (principal /dav/principals/alice@acme/)
  username           : alice@acme
  app password       : $password
  try it             : python3 tests/clients/caldav_client.py http://127.0.0.1:$hport/ alice@acme $password list Work
  corporate server   : http://127.0.0.1:$rport/  (alice / alicepw)
  admin              : POSTERN_DATABASE_URL=$db $gw admin status
  logs               : $run/*.log
Ctrl-C stops everything.
EOF
wait
