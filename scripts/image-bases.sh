#!/usr/bin/env bash
# Makes sure podman's local storage holds the two base images the Dockerfile names:
#   docker.io/library/rust:1.95-bookworm      (build stage)
#   gcr.io/distroless/cc-debian12:nonroot     (runtime stage)
# Each is pulled from its registry when that registry answers. Where it does not (these
# CI machines reach Debian's mirror and crates.io, not Docker Hub or gcr.io), a
# stand-in with the same contents is made under the same name from Debian's packages:
#   rust      debootstrap bookworm + gcc + this machine's Rust 1.95 toolchain and CA
#             bundle, with the official image's PATH and CARGO_HOME;
#   distroless  what distroless's cc-debian12 is built from (libc6, libgcc-s1, libgomp1,
#             libstdc++6, libssl3, base-files, netbase, tzdata, the CA bundle), users
#             root/nobody/nonroot (65532) with no login shell, USER 65532, no shell or
#             package manager at all.
# So `podman build` then runs the Dockerfile unchanged. Run as root.
set -euo pipefail
work=$(mktemp -d /tmp/postern-image-bases.XXXXXX)
trap 'rm -rf "$work"' EXIT

rust_image=docker.io/library/rust:1.95-bookworm
runtime_image=gcr.io/distroless/cc-debian12:nonroot

have() { podman image exists "$1"; }
pull() { timeout 120 podman pull -q "$1" >/dev/null 2>&1; }

rust_standin() {
  echo "==> $rust_image unreachable: making a stand-in (debootstrap bookworm + Rust $(rustc --version | cut -d' ' -f2))"
  local root=$work/rust
  debootstrap --variant=minbase --include=gcc,libc6-dev,ca-certificates \
    bookworm "$root" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  local toolchain
  toolchain=$(rustc --print sysroot)
  mkdir -p "$root/usr/local/rust" "$root/usr/local/cargo"
  # The compiler and its libraries; not the documentation.
  cp -a "$toolchain/bin" "$toolchain/lib" "$toolchain/libexec" "$root/usr/local/rust/"
  rm -rf "$root/var/cache/apt/archives"/*.deb "$root/var/lib/apt/lists"/*
  # This machine's CA bundle, so cargo reaches crates.io through the same TLS proxy
  # (if any) that this machine's own cargo goes through.
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  tar -C "$root" -c . | podman import -q \
    --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV CARGO_HOME=/usr/local/cargo' \
    - "$rust_image" >/dev/null
}

runtime_standin() {
  echo "==> $runtime_image unreachable: making a stand-in from Debian's packages"
  local root=$work/runtime debs=$work/debs
  mkdir -p "$root" "$debs"
  (cd "$debs" && apt-get download -q base-files netbase tzdata libc6 libgcc-s1 libgomp1 \
    libstdc++6 libssl3 >/dev/null 2>&1)
  for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$root"; done
  rm -rf "$root/usr/share/doc" "$root/usr/share/man" "$root/usr/share/lintian"
  mkdir -p "$root/etc/ssl/certs" "$root/home/nonroot" "$root/root" "$root/tmp"
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
  cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
  cat >"$root/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
nonroot:x:65532:
EOF
  chmod 1777 "$root/tmp"; chmod 700 "$root/root"
  chown 65532:65532 "$root/home/nonroot"
  tar -C "$root" -c . | podman import -q \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'USER 65532' --change 'WORKDIR /home/nonroot' \
    - "$runtime_image" >/dev/null
}

have "$rust_image" || pull "$rust_image" || rust_standin
have "$runtime_image" || pull "$runtime_image" || runtime_standin
echo "==> base images: $rust_image, $runtime_image"
