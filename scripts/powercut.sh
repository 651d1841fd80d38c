#!/usr/bin/env bash
# The power-cut campaign (tests/tests/powercut.rs): N random SIGKILLs of
# QEMU while a device ping-pongs A/B updates (install, trial, commit), each
# boot checked. Default N = 100 (the CI campaign); 1000 for the long run.
#   scripts/powercut.sh [N]
# AZL_POWERCUT_SEED=S replays a run (every run prints its seed);
# AZL_POWERCUT_LOGS=DIR keeps each boot's serial log.
# Needs the artifacts of scripts/build.sh (kernels, busybox, init, imagegen).
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-100}"
start=$(date +%s)
AZL_POWERCUTS="$n" cargo test --locked -p azl-e2e --test powercut -- powercut_campaign --exact --nocapture
echo "powercut.sh: $n cuts, $(( $(date +%s) - start )) s wall time" >&2
