#!/usr/bin/env bash
# Fetches guest-side (aarch64) helper binaries used by tests: currently a
# static busybox from Debian's busybox-static:arm64 package.
#
#   scripts/guest-tools.sh
#
# Output: $AZL_CACHE/guest/busybox-arm64/bin/busybox (AZL_CACHE defaults to
# ~/.cache/azl-edge); its path is printed on stdout, logs go to stderr.
# Cached and idempotent: re-fetched only when apt's candidate version changes.
# Needs arm64 enabled as a dpkg foreign architecture (scripts/setup.sh does it).
set -euo pipefail

CACHE="${AZL_CACHE:-$HOME/.cache/azl-edge}"
GDIR="$CACHE/guest"
DST="$GDIR/busybox-arm64"
PKG=busybox-static:arm64

log() { echo "guest-tools: $*" >&2; }
die() { echo "guest-tools: ERROR: $*" >&2; exit 1; }

mkdir -p "$GDIR"
exec 9>"$GDIR/.lock"
flock 9
rm -rf "$GDIR"/.busybox-arm64.tmp.* "$GDIR"/busybox-arm64.old.*

ver="$(apt-cache policy "$PKG" 2>/dev/null | sed -n 's/^ *Candidate: //p')"
if [ -z "$ver" ] || [ "$ver" = "(none)" ]; then
  # Offline or arm64 not configured: a previously fetched copy is still fine.
  if [ -x "$DST/bin/busybox" ]; then
    log "apt has no candidate for $PKG; using cached $(cat "$DST/.stamp" 2>/dev/null)"
    echo "$DST/bin/busybox"
    exit 0
  fi
  die "apt has no candidate for $PKG (run scripts/setup.sh: dpkg --add-architecture arm64 + apt-get update)"
fi
stamp="$PKG=$ver"
if [ -x "$DST/bin/busybox" ] && [ "$(cat "$DST/.stamp" 2>/dev/null)" = "$stamp" ]; then
  log "cached ($stamp)"
  echo "$DST/bin/busybox"
  exit 0
fi

log "fetching $stamp"
tmp="$(mktemp -d "$GDIR/.busybox-arm64.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/dl" "$tmp/x" "$tmp/out" "$tmp/out/bin"
# As root, skip apt's _apt sandbox: it cannot enter a 0700 $HOME anyway.
APT_DL=(apt-get download -q)
[ "$(id -u)" -ne 0 ] || APT_DL+=(-o APT::Sandbox::User=root)
(cd "$tmp/dl" && "${APT_DL[@]}" "$PKG=$ver" >&2) || die "apt-get download $PKG failed"
dpkg-deb -x "$tmp"/dl/*.deb "$tmp/x"
bb="$tmp/x/bin/busybox"
[ -f "$bb" ] || die "package has no bin/busybox"
# ELF, 64-bit, little-endian, e_machine 0xb7 (EM_AARCH64).
[ "$(od -An -tx1 -N6 "$bb" | tr -d ' \n')" = "7f454c460201" ] &&
  [ "$(od -An -tx1 -j18 -N2 "$bb" | tr -d ' \n')" = "b700" ] || die "$bb is not an aarch64 ELF"
install -m 0755 "$bb" "$tmp/out/bin/busybox"
echo "$stamp" >"$tmp/out/.stamp"
old=""
if [ -e "$DST" ]; then old="$DST.old.$$"; mv -T "$DST" "$old"; fi
mv -T "$tmp/out" "$DST"
[ -z "$old" ] || rm -rf "$old"
log "busybox $ver ready"
echo "$DST/bin/busybox"
