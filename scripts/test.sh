#!/usr/bin/env bash
# The whole test suite: host unit tests, then the end-to-end tests that
# build images and boot them in QEMU (both kernels, swtpm), cross-checked
# with the reference tools. Installs and builds whatever it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
echo "== lint" >&2
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -q -- -D warnings
cargo clippy -p azl-init --features spi-tpm --all-targets --locked -q -- -D warnings
echo "== unit tests" >&2
cargo test --locked   # default members: formats, init, imagegen
cargo test --locked -p azl-init --features spi-tpm tpm   # TIS-over-SPI against the simulated register file
echo "== end-to-end tests (QEMU)" >&2
cargo test --locked -p azl-e2e -- --test-threads="${AZL_TEST_THREADS:-2}" "$@"
