#!/usr/bin/env bash
# Provides the two arm64 kernels azl-edge images and tests are built against.
#
#   scripts/kernels.sh [debian|small|all]      (default: all)
#
# debian: Debian's stock arm64 kernel package (newest linux-image-6.1.0-N-arm64
#         apt knows about), unpacked with dpkg-deb -x. Its modules are loadable
#         .ko files; Debian ships no modules.dep.
# small:  a minimal kernel built from Debian's linux-source-6.1 with
#         allnoconfig + boards/qemu-virt.config; everything is built in.
#
# Output (cache root ${AZL_CACHE:-$HOME/.cache/azl-edge}):
#   kernels/debian-6.1/  boot/vmlinuz-<rel> (as shipped), boot/Image (uncompressed),
#                        boot/config, lib/modules/<rel>/..., release
#   kernels/small-6.1/   boot/Image, boot/config, lib/modules/<rel>/modules.builtin
#                        (+ modules.builtin.modinfo), release
#   `release` holds the kernel release string (the lib/modules/ directory name).
# stdout: one `debian=PATH` / `small=PATH` line per requested kernel; logs go to stderr.
#
# Idempotent and cached: debian is re-fetched only when apt's newest package or
# version changes; small is rebuilt only when the fragment's sha256, the
# linux-source-6.1 version, the cross compiler version or this recipe changes
# (stamp file). Results are assembled in a temp dir and renamed into place under
# an flock, so concurrent runs are safe.
set -euo pipefail

RECIPE=2   # bump when the build recipe below changes in a way that affects output

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${AZL_CACHE:-$HOME/.cache/azl-edge}"
KDIR="$CACHE/kernels"
FRAGMENT="$ROOT/boards/qemu-virt.config"
SRC_TARBALL=/usr/src/linux-source-6.1.tar.xz
SRC_PKG=linux-source-6.1
ARCH_ARGS=(ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-)

log() { echo "kernels: $*" >&2; }
die() { echo "kernels: ERROR: $*" >&2; exit 1; }

what="${1:-all}"
case "$what" in
  debian|small|all) ;;
  -h|--help) sed -n '2,24p' "$0" >&2; exit 0 ;;
  *) die "usage: $0 [debian|small|all]" ;;
esac

mkdir -p "$KDIR"
exec 9>"$KDIR/.lock"
if ! flock -n 9; then
  log "waiting for another kernels.sh run (lock $KDIR/.lock)"
  flock 9
fi
# Leftovers of interrupted runs (we hold the lock, so nobody is using them).
rm -rf "$KDIR"/.debian-6.1.tmp.* "$KDIR"/.small-6.1.tmp.* "$KDIR"/*.old.*

# Replace directory $2 with fully-populated temp dir $1 (same filesystem).
install_dir() {
  local tmp="$1" dst="$2" old=""
  if [ -e "$dst" ]; then
    old="$dst.old.$$"
    mv -T "$dst" "$old"
  fi
  mv -T "$tmp" "$dst"
  [ -z "$old" ] || rm -rf "$old"
}

# As root, download without apt's _apt sandbox: the cache usually lives under
# a 0700 $HOME that _apt cannot enter (apt would warn and fall back anyway).
APT_DL=(apt-get download -q)
[ "$(id -u)" -ne 0 ] || APT_DL+=(-o APT::Sandbox::User=root)

# ---------------------------------------------------------------- debian ---
newest_debian_pkg() {
  # Highest ABI number N of linux-image-6.1.0-N-arm64 that has an arm64 candidate.
  local n pkg cand
  for n in $(apt-cache pkgnames linux-image-6.1.0- 2>/dev/null |
               sed -n 's/^linux-image-6\.1\.0-\([0-9]\+\)-arm64$/\1/p' | sort -rn | uniq); do
    pkg="linux-image-6.1.0-$n-arm64"
    cand="$(apt-cache policy "$pkg:arm64" 2>/dev/null | sed -n 's/^ *Candidate: //p')"
    if [ -n "$cand" ] && [ "$cand" != "(none)" ]; then
      echo "$pkg $cand"
      return 0
    fi
  done
  return 1
}

build_debian() {
  local dst="$KDIR/debian-6.1" pkg ver stamp tmp rel vmlinuz deb
  read -r pkg ver < <(newest_debian_pkg) ||
    die "no linux-image-6.1.0-*-arm64:arm64 in apt (is arm64 a foreign arch and apt-get update done? run scripts/setup.sh)"
  stamp="$pkg:arm64=$ver"
  if [ -f "$dst/.stamp" ] && [ "$(cat "$dst/.stamp")" = "$stamp" ]; then
    log "debian: cached ($stamp)"
    echo "debian=$dst"
    return 0
  fi
  log "debian: fetching $stamp"
  tmp="$(mktemp -d "$KDIR/.debian-6.1.tmp.XXXXXX")"
  mkdir "$tmp/dl" "$tmp/root"
  # The signed package ships the (signed) vmlinuz and all modules; fall back to
  # the -unsigned variant, which has the same content, if the former is missing.
  if ! (cd "$tmp/dl" && "${APT_DL[@]}" "$pkg:arm64=$ver" >&2); then
    log "debian: $pkg unavailable, trying $pkg-unsigned"
    (cd "$tmp/dl" && "${APT_DL[@]}" "$pkg-unsigned:arm64" >&2) || { rm -rf "$tmp"; die "apt-get download $pkg failed"; }
  fi
  deb="$(ls "$tmp"/dl/*.deb | head -n1)"
  dpkg-deb -x "$deb" "$tmp/root"
  vmlinuz="$(ls "$tmp"/root/boot/vmlinuz-* 2>/dev/null | head -n1)" || true
  [ -n "$vmlinuz" ] || { rm -rf "$tmp"; die "$deb has no boot/vmlinuz-*"; }
  rel="$(ls "$tmp/root/lib/modules" 2>/dev/null | head -n1)" || true
  [ -n "$rel" ] || { rm -rf "$tmp"; die "$deb has no lib/modules/*"; }
  [ "$vmlinuz" = "$tmp/root/boot/vmlinuz-$rel" ] || { rm -rf "$tmp"; die "vmlinuz/modules release mismatch in $deb"; }
  # Uniform names for consumers: boot/Image (uncompressed) and boot/config.
  # (Debian's arm64 vmlinuz is already an uncompressed Image: hard-link it.)
  if gzip -t "$vmlinuz" 2>/dev/null; then
    gzip -dc "$vmlinuz" >"$tmp/root/boot/Image"
  else
    ln "$vmlinuz" "$tmp/root/boot/Image" 2>/dev/null || cp "$vmlinuz" "$tmp/root/boot/Image"
  fi
  [ -f "$tmp/root/boot/config-$rel" ] && cp "$tmp/root/boot/config-$rel" "$tmp/root/boot/config"
  echo "$rel" >"$tmp/root/release"
  echo "$stamp" >"$tmp/root/.stamp"
  rm -rf "$tmp/dl"
  install_dir "$tmp/root" "$dst"
  rmdir "$tmp"
  log "debian: $rel ready in $dst"
  echo "debian=$dst"
}

# ----------------------------------------------------------------- small ---
# Check that every assignment in the fragment survived olddefconfig.
verify_config() {
  local cfg="$1" line sym bad=()
  while IFS= read -r line; do
    case "$line" in
      CONFIG_*=*)
        grep -qxF -- "$line" "$cfg" || bad+=("$line  (got: $(grep -E "^(# )?${line%%=*}[= ]" "$cfg" || echo 'absent: dependency missing or symbol unknown'))")
        ;;
      "# CONFIG_"*" is not set")
        sym="${line#\# }"; sym="${sym%% *}"
        if grep -qE "^$sym=" "$cfg"; then bad+=("$line  (got: $(grep -E "^$sym=" "$cfg"))"); fi
        ;;
    esac
  done <"$FRAGMENT"
  if [ "${#bad[@]}" -gt 0 ]; then
    log "these options from $FRAGMENT did not survive olddefconfig:"
    printf '  %s\n' "${bad[@]}" >&2
    return 1
  fi
}

build_small() {
  local dst="$KDIR/small-6.1" srcver frag_sha ccver stamp build src tmp rel t0 t1
  [ -f "$SRC_TARBALL" ] || die "$SRC_TARBALL missing (install $SRC_PKG: scripts/setup.sh)"
  [ -f "$FRAGMENT" ] || die "$FRAGMENT missing"
  command -v aarch64-linux-gnu-gcc >/dev/null || die "aarch64-linux-gnu-gcc missing (scripts/setup.sh)"
  srcver="$(dpkg-query -W -f='${Version}' "$SRC_PKG" 2>/dev/null || stat -c %Y "$SRC_TARBALL")"
  frag_sha="$(sha256sum "$FRAGMENT" | cut -d' ' -f1)"
  ccver="$(aarch64-linux-gnu-gcc -dumpfullversion 2>/dev/null || aarch64-linux-gnu-gcc -dumpversion)"
  stamp="recipe=$RECIPE source=$srcver fragment=$frag_sha gcc=$ccver"
  if [ -f "$dst/.stamp" ] && [ "$(cat "$dst/.stamp")" = "$stamp" ]; then
    log "small: cached ($(cat "$dst/release"))"
    echo "small=$dst"
    return 0
  fi

  # Persistent source/build tree (re-extracted when linux-source changes) so
  # that a fragment change is an incremental rebuild.
  build="$CACHE/build"
  src="$build/linux-source-6.1"
  mkdir -p "$build"
  if [ ! -f "$src/.azl-source" ] || [ "$(cat "$src/.azl-source")" != "$srcver" ]; then
    log "small: extracting $SRC_TARBALL ($srcver)"
    rm -rf "$src" "$build"/.extract.*
    tmp="$(mktemp -d "$build/.extract.XXXXXX")"
    tar -xJf "$SRC_TARBALL" -C "$tmp"
    [ -f "$tmp/linux-source-6.1/Makefile" ] || die "unexpected tarball layout in $SRC_TARBALL"
    echo "$srcver" >"$tmp/linux-source-6.1/.azl-source"
    mv -T "$tmp/linux-source-6.1" "$src"
    rmdir "$tmp"
  fi

  t0=$(date +%s)
  log "small: configuring (allnoconfig + $(basename "$FRAGMENT"))"
  make -C "$src" -s "${ARCH_ARGS[@]}" allnoconfig >&2
  (cd "$src" && ARCH=arm64 scripts/kconfig/merge_config.sh -m .config "$FRAGMENT" >/dev/null)
  make -C "$src" -s "${ARCH_ARGS[@]}" olddefconfig >&2
  verify_config "$src/.config" || die "kernel config fragment not satisfiable; fix $FRAGMENT"

  log "small: building Image with -j$(nproc) (several minutes on first build)"
  make -C "$src" -s "${ARCH_ARGS[@]}" -j"$(nproc)" Image >&2
  rel="$(make -C "$src" -s "${ARCH_ARGS[@]}" kernelrelease)"
  [ -n "$rel" ] || die "could not determine kernelrelease"
  [ -f "$src/modules.builtin" ] || die "modules.builtin was not produced"
  t1=$(date +%s)

  tmp="$(mktemp -d "$KDIR/.small-6.1.tmp.XXXXXX")"
  chmod 755 "$tmp"
  mkdir -p "$tmp/boot" "$tmp/lib/modules/$rel"
  cp "$src/arch/arm64/boot/Image" "$tmp/boot/Image"
  cp "$src/.config" "$tmp/boot/config"
  cp "$src/modules.builtin" "$tmp/lib/modules/$rel/"
  [ -f "$src/modules.builtin.modinfo" ] && cp "$src/modules.builtin.modinfo" "$tmp/lib/modules/$rel/"
  echo "$rel" >"$tmp/release"
  echo "$stamp" >"$tmp/.stamp"
  install_dir "$tmp" "$dst"
  log "small: $rel ready in $dst (Image $(stat -c %s "$dst/boot/Image") bytes, built in $((t1 - t0)) s)"
  echo "small=$dst"
}

case "$what" in
  debian) build_debian ;;
  small) build_small ;;
  all) build_debian; build_small ;;
esac
