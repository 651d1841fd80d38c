#!/usr/bin/env bash
# The whole test suite: host unit tests, then the end-to-end tests that
# build images and boot them in QEMU (both kernels, swtpm), cross-checked
# with the reference tools. Installs and builds whatever it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
# Each phase's start, in seconds since this script started (CI time budget).
phase() { echo "== $1 (at ${SECONDS}s)" >&2; }
phase "build (setup, kernels, guest tools, init, imagegen)"
scripts/build.sh
phase "lint"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -q -- -D warnings
cargo clippy -p azl-init --features spi-tpm --all-targets --locked -q -- -D warnings
phase "dependency policy (deny.toml)"
"${AZL_CACHE:-$HOME/.cache/azl-edge}/tools/bin/cargo-deny" --log-level error check bans licenses sources
phase "fuzz smoke (every target, ~2 min)"
scripts/fuzz.sh --smoke
# Every cargo test's output also goes to a log, summed up at the end.
results="$(mktemp "${TMPDIR:-/tmp}/azl-test.XXXXXX")"
trap 'rm -f "$results"' EXIT
phase "unit tests"
cargo test --locked 2>&1 | tee -a "$results"   # default members: formats, init, the host crates
# TIS-over-SPI against the simulated register file
cargo test --locked -p azl-init --features spi-tpm tpm 2>&1 | tee -a "$results"
phase "end-to-end tests (QEMU; update_uefi boots edk2 from qemu-efi-aarch64)"
cargo test --locked -p azl-e2e -- --test-threads="${AZL_TEST_THREADS:-2}" "$@" 2>&1 | tee -a "$results"
phase "done"
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$results"
