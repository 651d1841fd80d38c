#!/usr/bin/env bash
# Builds images/demo.toml with two imagegen binaries (same init, kernel,
# signing key and SOURCE_DATE_EPOCH) and fails unless every output file is
# byte-identical. Used to prove a refactoring did not change any image byte:
#   scripts/check-identical.sh OLD_IMAGEGEN NEW_IMAGEGEN
# Needs the kernels (scripts/kernels.sh) and the aarch64 init
# (scripts/build-init.sh, or $AZL_INIT).
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 OLD_IMAGEGEN NEW_IMAGEGEN" >&2; exit 2; }
old=$(realpath "$1") new=$(realpath "$2")
cd "$(dirname "$0")/.."
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}
export AZL_INIT=${AZL_INIT:-$PWD/target/aarch64-unknown-linux-musl/release/init}
[ -f "$AZL_INIT" ] || { echo "check-identical: no init at $AZL_INIT (run scripts/build-init.sh)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$old" keygen -o "$work/key" >/dev/null
for which in old new; do
  bin=$old; [ "$which" = new ] && bin=$new
  "$bin" build --config images/demo.toml --key "$work/key" -o "$work/$which" >/dev/null
done
status=0 files=0
while IFS= read -r -d '' f; do
  rel=${f#"$work/old/"}
  files=$((files + 1))
  if [ ! -e "$work/new/$rel" ]; then echo "only in old: $rel"; status=1
  elif ! cmp -s "$f" "$work/new/$rel"; then echo "differs: $rel"; status=1; fi
done < <(find "$work/old" -type f -print0)
while IFS= read -r -d '' f; do
  rel=${f#"$work/new/"}
  [ -e "$work/old/$rel" ] || { echo "only in new: $rel"; status=1; }
done < <(find "$work/new" -type f -print0)
[ "$status" = 0 ] && echo "check-identical: all $files output files are byte-identical"
exit "$status"
