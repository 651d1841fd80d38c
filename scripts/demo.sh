#!/usr/bin/env bash
# The one-command loop: set up the host, build the default qemu-virt image
# (images/demo.toml) and boot it in QEMU with a serial console.
# Quit QEMU with ctrl-a x (or `initctl poweroff` in the guest).
set -euo pipefail
cd "$(dirname "$0")/.."
AZL_KERNELS=small scripts/build.sh
target/release/imagegen build --config images/demo.toml -o out/demo
exec target/release/imagegen run out/demo "$@"
