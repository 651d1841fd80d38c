#!/usr/bin/env bash
# The A/B update loop in QEMU, end to end and unattended:
#   1. builds v1 (images/demo.toml, security version 1) as a disk image and
#      v2 (2.0.0, security version 2, one more service) as a signed bundle
#      for root-b (`imagegen bundle`), and puts the bundle on a second
#      virtual disk — the "USB stick";
#   2. boots v1: its `updater` service finds the bundle on the stick's block
#      device, runs `update install DEVICE` and shows `update status`;
#   3. boots again: v2's one trial boot; the health gate commits it
#      (services ready, a 5 s hold, the measurement self-check);
#   4. boots again: v2 committed, the floor raised to 2.
# Each boot powers itself off; the serial logs are kept in out/update-demo/.
# AZL_SKIP_BUILD=1 skips scripts/build.sh (artifacts already built).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${AZL_SKIP_BUILD:-0}" = 1 ] || AZL_KERNELS=small scripts/build.sh
imagegen=target/release/imagegen
work=out/update-demo
rm -rf "$work"
mkdir -p "$work"
[ -f out/dev.key ] || "$imagegen" keygen -o out/dev.key

# The updater: installs a bundle found on a virtio disk (by its magic: the
# letters do not follow the --disk order), waits for a trial's health gate,
# prints the status, then powers the machine off (a demo ends by itself).
updater='U="/sbin/init update"
sleep 2
for d in /dev/vd?; do
  if [ "$(head -c 4 $d)" = AZBU ]; then
    echo "bundle found on $d, installing"; $U install $d
  fi
done
if $U status --json | grep -q "\"trial\":true"; then
  echo "this is the trial boot of the new slot; waiting for the health gate"
  while :; do
    g=$($U status --json | sed -n "s/.*\"gate\":\"\([^\"]*\)\".*/\1/p")
    case "$g" in committed|failed*|commit-failed*) break;; esac; sleep 1
  done
  echo "health gate: $g"
fi
$U status
/sbin/initctl poweroff'

# $1 version, $2 security version, $3 extra TOML
config() {
  sed -e "s/^version = \"1.0.0\"/version = \"$1\"\nsecurity_version = $2/" images/demo.toml
  for a in head grep sed; do printf '\n[[file]]\ndst = "/bin/%s"\nsymlink = "busybox"\n' "$a"; done
  printf '\n[[service]]\nname = "updater"\nexec = ["/bin/sh", "-c", %s]\nrestart = "never"\n' \
    "$(printf '%s' "$updater" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')"
  printf '%s\n' "$3"
}
# Each image's trial: commit by itself after every service is ready and a
# 5 s hold without restarts (the default hold is 30 s).
gate='
[update]
commit = "local"
hold_s = 5'
config 1.0.0 1 "$gate" > "$work/v1.toml"
config 2.0.0 2 "$gate"'
[[service]]
name = "v2-feature"
exec = ["/bin/sh", "-c", "echo v2-feature: new in 2.0.0; exec sleep 100000"]' > "$work/v2.toml"

echo "== build v1 (disk image) and v2 (bundle for root-b)"
"$imagegen" build --config "$work/v1.toml" --key out/dev.key -o "$work/v1" > "$work/build-v1.txt"
"$imagegen" bundle -c "$work/v2.toml" --key out/dev.key -o "$work/v2.bundle" --slot root-b
# The stick: the bundle, zero-padded to a whole MiB (a block device).
cp "$work/v2.bundle" "$work/stick.img"
truncate -s "$(( ($(stat -c %s "$work/v2.bundle") + 1048575) / 1048576 * 1048576 ))" "$work/stick.img"

show() { grep -E "updater:|update:|v2-feature|manifest: |running|committed|floor|root-[ab] |gate|refused|EMERGENCY|RECOVERY" "$1" | grep -vE "writing root-b: [1-9]" || true; }
n=0
for disks in "--disk $work/stick.img" "" ""; do
  n=$((n + 1))
  echo "== boot $n${disks:+ (with the stick)}"
  # shellcheck disable=SC2086
  "$imagegen" run "$work/v1" $disks --timeout 180 > "$work/boot$n.log" 2>&1 || true
  show "$work/boot$n.log"
done
echo "== serial logs: $work/boot{1,2,3}.log"
