#!/usr/bin/env bash
# Builds the device's init: static aarch64-unknown-linux-musl, size-optimised
# (profile.release: opt-level z, LTO, one codegen unit, stripped).
#
# The shipped binary also rebuilds the standard library with the
# `immediate-abort` panic strategy (-Zbuild-std, enabled on the stable
# toolchain through RUSTC_BOOTSTRAP). That removes std's panic message and
# backtrace machinery and the unwind tables: 512 KiB → about 220 KiB. A
# panic in PID 1 then ends in an immediate abort → kernel panic → reboot
# (the board's cmdline has panic=-1) instead of our logged delayed reboot;
# init is written not to panic (clippy denies unwrap/expect/indexing), so
# this trades a last-resort log line for less than half the size.
# AZL_PLAIN_INIT=1 builds the plain stable binary instead.
set -euo pipefail
cd "$(dirname "$0")/.."
target=aarch64-unknown-linux-musl
if [ "${AZL_PLAIN_INIT:-0}" = 1 ]; then
  exec cargo build --release --locked -p azl-init --target "$target"
fi
if ! rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
  if ! rustup component add rust-src; then
    echo "build-init: rust-src is not available; building the plain (larger) init instead" >&2
    exec cargo build --release --locked -p azl-init --target "$target"
  fi
fi
RUSTC_BOOTSTRAP=1 exec cargo build --release --locked -p azl-init --target "$target" \
  -Zbuild-std=std,panic_abort \
  --config "target.$target.rustflags=[\"-Zunstable-options\", \"-Cpanic=immediate-abort\"]"
