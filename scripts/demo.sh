#!/usr/bin/env bash
# The whole system on this one machine: PostgreSQL, Radicale (a real CalDAV/CardDAV
# server) and Dovecot (a real IMAP server) with demo data, the gateway and a
# connector. Shows the import as it happens, then the URL and credentials to use.
# Ctrl-C stops everything.
#   DEMO_EVENTS / DEMO_CONTACTS / DEMO_MESSAGES change the amount of demo data
#   (default 1000 events, 1000 contacts, 300 messages).
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
  [ -n "${drun:-}" ] && rm -rf "$drun"
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

# Dovecot with demo mail, appended over IMAP as any mail client would; it takes mail
# for corp.example from the corporate SMTP server below over LMTP.
dport=$(free_port); lport=$(free_port)
dc=$run/dovecot
drun=$(mktemp -d /tmp/postern-demo-dc.XXXXXX)   # its sockets need a short path
mkdir -p "$dc/mail" "$dc/state"
echo "alice:{PLAIN}alicepw" >"$dc/users"
cat >"$dc/dovecot.conf" <<CONF
protocols = imap lmtp
listen = 127.0.0.1
auth_username_format = %Ln
base_dir = $drun
state_dir = $dc/state
log_path = $dc/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 1
mail_location = maildir:~/Maildir
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $dc/users
}
userdb {
  driver = static
  args = uid=dovecot gid=dovecot home=$dc/mail/%u
}
namespace inbox {
  inbox = yes
  separator = /
  mailbox Drafts {
    special_use = \Drafts
    auto = create
  }
  mailbox Sent {
    special_use = \Sent
    auto = create
  }
  mailbox Trash {
    special_use = \Trash
    auto = create
  }
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $dport
  }
  inet_listener imaps {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $lport
  }
}
service anvil {
  chroot =
}
CONF
chown -R dovecot:dovecot "$dc/mail"
/usr/sbin/dovecot -F -c "$dc/dovecot.conf" >"$run/dovecot.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do python3 -c "import socket; socket.create_connection(('127.0.0.1', $dport))" 2>/dev/null && break; sleep 0.1; done
python3 - "$dport" "${DEMO_MESSAGES:-300}" <<'PY'
import imaplib, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
m = imaplib.IMAP4("127.0.0.1", port)
m.login("alice", "alicepw")
m.create('"Projects/2026"')
boxes = ["INBOX", "INBOX", "INBOX", "Sent", '"Projects/2026"']
for i in range(n):
    box = boxes[i % len(boxes)]
    msg = (f"From: Colleague {i} <colleague{i}@acme.example>\r\nTo: alice@acme.example\r\n"
           f"Subject: Demo message {i}\r\nMessage-ID: <demo-{i}@acme.example>\r\n"
           f"Date: Mon, 30 Nov 2026 09:00:00 +0000\r\n\r\nHello from message {i}.\r\n")
    flags = "(\\Seen)" if i % 2 else "()"
    m.append(box, flags, imaplib.Time2Internaldate(time.time()), msg.encode())
m.logout()
PY
echo "==> Dovecot (the corporate IMAP server) at imap://127.0.0.1:$dport (alice / alicepw)"

# The corporate SMTP server: delivers mail for @corp.example into Dovecot; refuses
# every other address (the demo has no way out), which bounces.
mport=$(free_port)
python3 scripts/demo_smtp.py "$mport" "$lport" >"$run/smtp.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do python3 -c "import socket; socket.create_connection(('127.0.0.1', $mport))" 2>/dev/null && break; sleep 0.1; done
echo "==> corporate SMTP server at smtp://127.0.0.1:$mport (delivers @corp.example to Dovecot)"

gw=target/release/postern-gateway
gport=$(free_port); hport=${POSTERN_DEMO_HTTP_PORT:-8080}
iport=${POSTERN_DEMO_IMAP_PORT:-1143}; sport=${POSTERN_DEMO_SUBMISSION_PORT:-1587}
$gw admin tenant add acme >/dev/null
password=$($gw admin user add --tenant acme alice | tail -n1)
$gw admin connector enroll --tenant acme hq | tail -n1 >"$run/token"
$gw admin user address add --tenant acme alice alice@corp.example >/dev/null
$gw serve --grpc-listen "127.0.0.1:$gport" --http-listen "127.0.0.1:$hport" \
  --imap-listen "127.0.0.1:$iport" --submission-listen "127.0.0.1:$sport" >"$run/gateway.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$hport/readyz" >/dev/null && break; sleep 0.1; done
echo "==> gateway: connectors on 127.0.0.1:$gport, HTTP on 127.0.0.1:$hport, IMAP on 127.0.0.1:$iport, submission on 127.0.0.1:$sport"

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

[[source]]
name = "corp-mail"
kind = "imap"
url = "imap://127.0.0.1:$dport"
username = "alice"
password = "alicepw"
user = "alice@acme"
conflict = "merge"
interval = "10s"

[[source]]
name = "corp-smtp"
kind = "smtp"
url = "smtp://127.0.0.1:$mport"
username = "alice"
password = "alicepw"
user = "alice@acme"
interval = "1m"
CONF
target/release/postern-connector run --config "$run/connector.toml" >"$run/connector.log" 2>&1 &
pids+=($!)
echo "==> connector started (inside the firewall; it dials out to the gateway)"
echo
want=$(( ${DEMO_EVENTS:-1000} + ${DEMO_CONTACTS:-1000} + ${DEMO_MESSAGES:-300} + $(ls tests/fixtures/calendar | wc -l) + $(ls tests/fixtures/contacts | wc -l) ))
start=$(date +%s%N)
while :; do
  n=$(psql -qtA "$db" -c "SELECT count(*) FROM items WHERE NOT deleted" 2>/dev/null || echo 0)
  last=$(tail -n1 "$run/connector.log" 2>/dev/null | sed -E 's/^[^ ]+ +[A-Z]+ +[^ ]+ //' | cut -c1-60)
  printf '\r    imported %6s / %s items and messages   %-60s' "$n" "$want" "$last"
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
  IMAP (mail clients): 127.0.0.1:$iport, same login and password, no TLS (loopback)
  try it             : python3 tests/clients/imap_client.py 127.0.0.1 $iport '[{"login": ["alice@acme", "$password"]}, {"call": "list"}]'
  SMTP submission    : 127.0.0.1:$sport, same login; sends as alice@corp.example through the corporate
                       SMTP server (it delivers @corp.example; other addresses bounce)
  try it             : python3 tests/clients/smtp_client.py 127.0.0.1 $sport '[{"ehlo": "me"}, {"login": ["alice@acme", "$password"]}, {"send": ["alice@corp.example", ["alice@corp.example"], "From: alice@corp.example\r\nTo: alice@corp.example\r\nSubject: hello from the demo\r\n\r\nIt went round.\r\n"]}]'
                       (it reaches alice's INBOX on Dovecot, then on the gateway)
  corporate servers  : http://127.0.0.1:$rport/ (CalDAV/CardDAV), imap://127.0.0.1:$dport (IMAP),
                       smtp://127.0.0.1:$mport (SMTP); alice / alicepw
  mail on the gateway: psql "$db" -c "SELECT c.display_name, count(*) FROM items i JOIN collections c ON c.id = i.collection_id WHERE c.kind = 'mailbox' AND NOT i.deleted GROUP BY 1"
  admin              : POSTERN_DATABASE_URL=$db $gw admin status
  logs               : $run/*.log
Ctrl-C stops everything.
EOF
wait
