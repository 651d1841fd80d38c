#!/usr/bin/env bash
# Builds everything an image needs: host tools (setup.sh), the kernels and
# guest tools (cached), the static aarch64 init and the imagegen CLI.
# Prints nothing on stdout; progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >&2
scripts/kernels.sh "${AZL_KERNELS:-all}" >&2
scripts/guest-tools.sh >&2
scripts/build-init.sh >&2
cargo build --release --locked -p imagegen >&2
