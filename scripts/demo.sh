#!/usr/bin/env bash
# The one-command loop: set up the host, build the default qemu-virt image
# (images/demo.toml) and boot it in QEMU with a serial console.
# Quit QEMU with ctrl-a x (or `initctl poweroff` in the guest).
set -euo pipefail
cd "$(dirname "$0")/.."
AZL_KERNELS=small scripts/build.sh
# A development signing key, made once and kept out of git (out/ is ignored).
# For real devices keep the key offline: see README "Signing".
mkdir -p out
[ -f out/dev.key ] || target/release/imagegen keygen -o out/dev.key
target/release/imagegen build --config images/demo.toml --key out/dev.key -o out/demo
# With a software TPM (state in out/demo/tpm), so the boot is measured into PCRs.
exec target/release/imagegen run out/demo --tpm "$@"
