#!/usr/bin/env bash
# Fuzz azl-formats' parsers with cargo-fuzz (libFuzzer, ASan) on stable.
#
#   scripts/fuzz.sh                 every target, 240 s each, one after another
#   scripts/fuzz.sh TARGET [SECS]   one target (default 240 s)
#   scripts/fuzz.sh --smoke         every target briefly (≤ 3 min in all)
#   scripts/fuzz.sh --list          the targets
#   scripts/fuzz.sh --seeds [OUT]   only (re)generate seed corpora (OUT: an
#                                   imagegen output dir to take real files from)
#
# Seeds are regenerated into fuzz/corpus/<target>/ before each run (from the
# formats API, plus out/*/ of an imagegen build if present); the corpus
# grows there and is not committed. Crashes land in fuzz/artifacts/<target>/
# and make this script fail. One in-process job (no -jobs/-fork): the
# machine is shared.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTC_BOOTSTRAP=1
FUZZ=fuzz
CORPUS=$FUZZ/corpus

command -v cargo-fuzz >/dev/null 2>&1 || scripts/setup.sh >&2

# `cargo fuzz list` names every bin of fuzz/, the seed generator too.
targets() { (cd $FUZZ && cargo fuzz list) | grep -vx gen-seeds; }

seeds() {
    local from=${1:-}
    if [ -z "$from" ]; then
        from=$(ls -d out/*/ 2>/dev/null | head -n1 || true)
    fi
    (cd $FUZZ && cargo run -q --release --bin gen-seeds -- corpus ${from:+--from "../$from"})
    # The shipped image configs and board files for the TOML parsers.
    mkdir -p "$CORPUS/image_config" "$CORPUS/board_config"
    cp images/*.toml "$CORPUS/image_config/"
    cp boards/*.toml "$CORPUS/board_config/"
    # Real swtpm output for the host verifier's target.
    mkdir -p "$CORPUS/host_attest"
    cp host/attest/testdata/swtpm/*.bin host/attest/testdata/swtpm/ak.pub "$CORPUS/host_attest/"
    # Repository metadata made by createrepo_c (host/rpm/testdata).
    mkdir -p "$CORPUS/rpm_repomd" "$CORPUS/rpm_primary"
    cp host/rpm/testdata/repomd.xml "$CORPUS/rpm_repomd/"
    cp host/rpm/testdata/primary.xml "$CORPUS/rpm_primary/"
    mkdir -p "$CORPUS/rpm_filelists"
    printf '<filelists packages="1"><package pkgid="AB12" name="foo" arch="noarch"><version epoch="0" ver="1" rel="1"/><file>/usr/share/foo/data</file><file type="dir">/usr/share/foo</file></package></filelists>\n' >"$CORPUS/rpm_filelists/seed.xml"
    # A real RPM (rpmbuild, zstd payload) for the package reader.
    mkdir -p "$CORPUS/rpm_package"
    if command -v rpmbuild >/dev/null 2>&1 && [ ! -e "$CORPUS/rpm_package/seed.rpm" ]; then
        local top; top=$(mktemp -d)
        printf 'Name: seed\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\nBuildArch: noarch\n%%description\ns\n%%pre\nuseradd -r s\n%%install\nmkdir -p %%{buildroot}/usr/bin\necho x > %%{buildroot}/usr/bin/s\nln -s s %%{buildroot}/usr/bin/t\n%%files\n/usr/bin/s\n/usr/bin/t\n' >"$top/seed.spec"
        rpmbuild --quiet --define "_topdir $top" --define "_binary_payload w19.zstdio" -bb "$top/seed.spec" >/dev/null 2>&1 &&
            cp "$top"/RPMS/noarch/seed-1-1.noarch.rpm "$CORPUS/rpm_package/seed.rpm"
        rm -rf "$top"
    fi
    # TPM responses: a TPM2_GetRandom answer, and swtpm's quote and signature bytes.
    mkdir -p "$CORPUS/tpm_response"
    printf '\x80\x01\x00\x00\x00\x0e\x00\x00\x00\x00\x00\x02\xaa\x55' >"$CORPUS/tpm_response/get-random"
    cp host/attest/testdata/swtpm/quote.bin host/attest/testdata/swtpm/sig.bin "$CORPUS/tpm_response/"
    # The real `imagegen bundle` fixture for the installer's streaming path.
    mkdir -p "$CORPUS/install_stream" "$CORPUS/inspect_bundle"
    cp init/src/update/install/fixtures/root-b.azb "$CORPUS/install_stream/"
    cp init/src/update/install/fixtures/root-b.azb "$CORPUS/inspect_bundle/"
    # Small disks with real GPTs (sgdisk), one of them with a damaged primary.
    mkdir -p "$CORPUS/gpt"
    local d
    for n in 1 3; do
        d="$CORPUS/gpt/sgdisk-$n"
        [ -s "$d" ] && continue
        truncate -s 48K "$d"
        sgdisk -o -a 1 "$d" >/dev/null
        for i in $(seq 1 "$n"); do sgdisk -a 1 -n "$i:0:+4" -c "$i:root-$i" "$d" >/dev/null; done
    done
    cp "$CORPUS/gpt/sgdisk-3" "$CORPUS/gpt/sgdisk-3-bad-primary"
    printf '\x00' | dd of="$CORPUS/gpt/sgdisk-3-bad-primary" bs=1 seek=520 conv=notrunc status=none
}

run() { # TARGET SECONDS
    local t=$1 secs=$2
    mkdir -p "$CORPUS/$t" "$FUZZ/artifacts/$t"
    echo "== fuzz $t for ${secs}s"
    (cd $FUZZ && cargo fuzz run -O "$t" "corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="artifacts/$t/" ${FUZZ_EXTRA:-})
}

case "${1:-}" in
--list) targets ;;
--seeds) seeds "${2:-}" ;;
--smoke)
    (cd $FUZZ && cargo fuzz build -O)
    seeds
    # About two minutes of fuzzing in all, however many targets there are.
    ts=$(targets)
    n=$(echo "$ts" | wc -w)
    per=$(( 120 / (n > 0 ? n : 1) ))
    [ "$per" -ge 5 ] || per=5
    for t in $ts; do run "$t" "$per"; done
    ;;
"")
    seeds
    for t in $(targets); do run "$t" 240; done
    ;;
*)
    seeds
    run "$1" "${2:-240}"
    ;;
esac
