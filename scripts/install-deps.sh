#!/usr/bin/env bash
# Installs what Postern needs on a fresh Debian/Ubuntu machine: PostgreSQL, the real
# back ends (Radicale, Xandikos) and clients (vdirsyncer, python-caldav, litmus) used
# by the demo, the tests and the benchmarks, and podman for the image check.
# Idempotent; skips what is already there.
set -euo pipefail
need_apt=()
ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 || need_apt+=(postgresql)
command -v python3 >/dev/null || need_apt+=(python3 python3-pip)
command -v curl >/dev/null || need_apt+=(curl)
command -v litmus >/dev/null || need_apt+=(litmus)
# The image check (scripts/check-image.sh): podman builds and runs the Dockerfile
# without a Docker engine; debootstrap makes base-image stand-ins where registries
# are out of reach.
command -v podman >/dev/null || need_apt+=(podman)
command -v runc >/dev/null || need_apt+=(runc)
command -v debootstrap >/dev/null || need_apt+=(debootstrap)
[ -x /usr/sbin/dovecot ] || need_apt+=(dovecot-imapd dovecot-core)
[ -x /usr/lib/dovecot/lmtp ] || need_apt+=(dovecot-lmtpd)   # the demo delivers mail over LMTP
# mbsync, the peer the mail import benchmark is compared with.
command -v mbsync >/dev/null || need_apt+=(isync)
command -v offlineimap >/dev/null || need_apt+=(offlineimap3)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "==> apt-get install ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
missing=()
python3 -c "import radicale" 2>/dev/null || missing+=(radicale)
python3 -c "import xandikos" 2>/dev/null || missing+=(xandikos)
python3 -c "import caldav" 2>/dev/null || missing+=(caldav)
# A real SMTP server standing in for the corporate one (submission relay tests).
python3 -c "import aiosmtpd" 2>/dev/null || missing+=(aiosmtpd==1.4.6)
command -v vdirsyncer >/dev/null || missing+=(vdirsyncer)
command -v check-jsonschema >/dev/null || missing+=(check-jsonschema)
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> pip install ${missing[*]}"
  pip install -q --root-user-action=ignore "${missing[@]}" 2>/dev/null || pip install -q "${missing[@]}"
fi
if ! command -v cargo >/dev/null; then
  echo "cargo is missing: install Rust 1.95 (rustup) first" >&2
  exit 1
fi
