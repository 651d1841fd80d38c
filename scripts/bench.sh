#!/usr/bin/env bash
# Runs the benchmarks (tests/tests/bench.rs, bench_measure.rs and
# bench_update.rs, #[ignore]d in the normal suite) and prints their markdown
# tables on stdout; progress and per-boot samples go to stderr. Results are
# recorded in docs/BENCHMARKS.md.
#
#   scripts/bench.sh                      # all benchmarks, working tree (~8 min)
#   scripts/bench.sh bench_update         # the update benchmarks (install
#                                         # throughput, update downtime)
#   scripts/bench.sh bench_init_idle_rss  # one (a cargo test name filter)
#   scripts/bench.sh bench_cached_rpm_build  # image build from cached RPMs
#   scripts/bench.sh bench_rpm            # RPM resolve+fetch+unpack vs dnf
#                                         # (AZL_BENCH_PACKAGES, default 2000)
#   AZL_BENCH_REV=ebee009 scripts/bench.sh
#       # init and imagegen built from that commit (git archive into
#       # $AZL_CACHE/bench/src, own target dir), so the numbers belong to a
#       # commit and not to whatever the working tree holds at the moment
#
# AZL_BENCH_BOOTS / AZL_BENCH_RSS_BOOTS change the number of boots per image;
# AZL_BENCH_SERIAL=1 copies every serial log to stderr.
# Boot times are TCG-emulated and sensitive to host load: run on an idle host.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${AZL_CACHE:-$HOME/.cache/azl-edge}"

if [ -n "${AZL_BENCH_REV:-}" ]; then
  # What scripts/build.sh does, minus building the working tree's init and
  # imagegen: those come from the pinned commit.
  scripts/setup.sh >&2
  scripts/kernels.sh "${AZL_KERNELS:-all}" >&2
  scripts/guest-tools.sh >&2
  rev="$(git rev-parse --verify "$AZL_BENCH_REV^{commit}")"
  src="$CACHE/bench/src"
  rm -rf "$src" && mkdir -p "$src"
  git archive "$rev" | tar -x -C "$src"
  export CARGO_TARGET_DIR="$CACHE/bench/target"
  # `cargo metadata` completes a Cargo.lock that lags the commit's manifests
  # (in the copy only, keeping the locked versions); then the commit's own
  # init build (scripts/build-init.sh where it exists: the shipped binary).
  (cd "$src" && cargo metadata --format-version 1 >/dev/null &&
    if [ -x scripts/build-init.sh ]; then scripts/build-init.sh; else
      cargo build --release --locked -p azl-init --target aarch64-unknown-linux-musl; fi &&
    cargo build --release --locked -p imagegen) >&2
  unset CARGO_TARGET_DIR
  export AZL_INIT="$CACHE/bench/target/aarch64-unknown-linux-musl/release/init"
  export AZL_IMAGEGEN="$CACHE/bench/target/release/imagegen"
  export AZL_BENCH_COMMIT="$rev"
  echo "bench: init and imagegen from $rev" >&2
else
  scripts/build.sh
  # Measure copies: others may rebuild target/ while the benchmarks run.
  bin="$CACHE/bench/bin"
  mkdir -p "$bin"
  cp target/aarch64-unknown-linux-musl/release/init "$bin/init"
  cp target/release/imagegen "$bin/imagegen"
  export AZL_INIT="${AZL_INIT:-$bin/init}" AZL_IMAGEGEN="${AZL_IMAGEGEN:-$bin/imagegen}"
fi

log="$(mktemp "${TMPDIR:-/tmp}/azl-bench.XXXXXX")"
trap 'rm -f "$log"' EXIT
status=0
cargo test --locked -p azl-e2e --test bench --test bench_measure --test bench_update --test packages -- --ignored --nocapture --test-threads=1 "$@" >"$log" || status=$?
# The RPM pipeline vs dnf (host only; optimized like the imagegen binary).
[ "$status" -ne 0 ] || cargo test --locked --release -p azl-rpm --test bench -- --ignored --nocapture --test-threads=1 "$@" >>"$log" || status=$?
# Tables sit between BENCH-BEGIN and BENCH-END; the rest is cargo's chatter.
awk '/^BENCH-BEGIN$/ { on = 1; next } /^BENCH-END$/ { on = 0; print ""; next } on' "$log"
if [ "$status" -ne 0 ]; then
  echo "bench: cargo test failed (exit $status); its output:" >&2
  cat "$log" >&2
  exit "$status"
fi
