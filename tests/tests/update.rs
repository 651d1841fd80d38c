//! A/B updates end to end in QEMU: v1 (security version 1) is built as a
//! disk image, v2 (2.0.0, security version 2, another file and service) as
//! a signed bundle for root-b with `imagegen bundle`; the bundle is carried
//! on a second virtio disk (the "USB stick") and installed by the device
//! itself with `update install DEVICE`. Reboots are boots of the same
//! disk image. Every boot runs the image's agent service, which executes
//! the control script the host put on a control disk and powers off.
//!
//! Also: hostile bundles (each refused with its message, v1 untouched), a
//! trial that never commits, and an old image written straight into a slot.
use azl_e2e::update::*;
use azl_e2e::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Guest shell prelude: `U` is the update face; `st KEY` prints
/// `KEY={status json}` on one line.
/// `gate_wait` waits (up to 150 s) until a trial boot's health gate has
/// an outcome and prints `gate=OUTCOME` (empty on a boot without a trial);
/// a failed gate reboots, which ends the boot.
const PRELUDE: &str = r#"U='/sbin/init update'
st() { echo "$1=$($U status --json | tr -d '\n')"; }
gate_wait() { i=0; while [ $i -lt 150 ]; do g=$($U status --json | sed -n 's/.*"gate":"\([^"]*\)".*/\1/p'); case "$g" in ""|committed|awaiting-commit|failed*|commit-failed*) echo "gate=$g"; return 0;; esac; sleep 1; i=$((i+1)); done; echo gate=timeout; }
"#;

fn release_file(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join(format!("release-{text}"));
    std::fs::write(&p, format!("{text}\n")).unwrap_or_else(|e| panic!("write release: {e}"));
    p
}

/// The image at `version`/`security_version`: `/etc/release` says `tag`;
/// v2 also runs a service of its own. Its trial commits itself after a
/// 2 s hold (`[update] commit = "local"`), or waits for `update commit`
/// (`manual`); `extra` adds TOML.
fn image(key: &Path, files: &Path, tag: &str, version: &str, sv: u32) -> Image {
    image_with(key, files, tag, version, sv, LOCAL, "")
}

/// `[update]` bodies: commit by itself after a 2 s hold, or wait for
/// `update commit`.
const LOCAL: &str = "commit = \"local\"\nhold_s = 2";
const MANUAL: &str = "commit = \"manual\"\nhold_s = 2";

fn image_with(
    key: &Path,
    files: &Path,
    tag: &str,
    version: &str,
    sv: u32,
    update: &str,
    extra: &str,
) -> Image {
    let rel = release_file(files, tag);
    let mut img = Image::new("edge", Kernel::Small)
        .disk(key)
        .release(version, sv)
        .with(&format!(
            "[[file]]\nsrc = {}\ndst = \"/etc/release\"\nmode = \"0644\"\n\n[update]\n{update}\nready_deadline_s = 60\n",
            toml_str(&rel.display().to_string())
        ))
        .with(extra);
    if tag == "v2" {
        img = img.sh_service("v2svc", "echo v2svc-up; exec sleep 100000", "");
    }
    with_agent(img)
}

/// Everything built once per test binary: keys, v1's disk image and the
/// bundles. Tests copy v1's output directory before booting it.
struct Fixture {
    dir: TempDir,
    key: PathBuf,
    other_key: PathBuf,
    v1: PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = fixture_dir(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("update-fixture"));
        let key = keygen(dir.path(), "fleet.key");
        let other_key = keygen(dir.path(), "other.key");
        let v1dir = dir.path().join("v1");
        std::fs::create_dir_all(&v1dir).unwrap_or_default();
        let v1 = image(&key, dir.path(), "v1", "1.0.0", 1).build(&v1dir);
        Fixture {
            dir,
            key,
            other_key,
            v1,
        }
    })
}

/// A bundle built once, by name.
fn built_bundle(name: &str) -> PathBuf {
    static B: OnceLock<std::sync::Mutex<Vec<(String, PathBuf)>>> = OnceLock::new();
    let cache = B.get_or_init(Default::default);
    let mut held = cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, p)) = held.iter().find(|(n, _)| n == name) {
        return p.clone();
    }
    let f = fixture();
    let d = f.dir.path().join(format!("b-{name}"));
    std::fs::create_dir_all(&d).unwrap_or_default();
    let files = f.dir.path();
    let (img, slot) = match name {
        "v2" => (image(&f.key, files, "v2", "2.0.0", 2), "root-b"),
        "v1-root-a" => (image(&f.key, files, "v1", "1.0.0", 1), "root-a"),
        "v1-root-b" => (image(&f.key, files, "v1", "1.0.0", 1), "root-b"),
        "v0" => (image(&f.key, files, "v0", "0.9.0", 0), "root-b"),
        "v2-manual" => (
            image_with(&f.key, files, "v2", "2.0.0", 2, MANUAL, ""),
            "root-b",
        ),
        "v2-slow" => (
            image_with(
                &f.key,
                files,
                "v2",
                "2.0.0",
                2,
                "commit = \"local\"\nhold_s = 120",
                "",
            ),
            "root-b",
        ),
        "v2-crash" => (
            image_with(
                &f.key,
                files,
                "v2",
                "2.0.0",
                2,
                LOCAL,
                "[[service]]\nname = \"crasher\"\nexec = [\"/bin/sh\", \"-c\", \"echo crasher-start; sleep 0.2; exit 3\"]\nrestart = \"always\"\nrestart_delay_ms = 50\ncrash_loop = { max_restarts = 3, window_s = 60 }\n",
            ),
            "root-b",
        ),
        "other-key" => (image(&f.other_key, files, "v2", "2.0.0", 2), "root-b"),
        "other-board" => {
            let board = board_variant(&d, &[("name = \"qemu-virt\"", "name = \"qemu-other\"")]);
            (
                image(&f.key, files, "v2", "2.0.0", 2).board_file(board),
                "root-b",
            )
        }
        n => panic!("no bundle {n}"),
    };
    let p = bundle(&img, &d, &format!("{name}.bundle"), slot, &[]);
    held.push((name.into(), p.clone()));
    p
}

/// A private copy of v1's output directory (disk image, TPM state).
fn device(dir: &Path) -> PathBuf {
    let dst = dir.join("dev");
    let r = run_mut(
        std::process::Command::new("cp")
            .args(["-a", "--sparse=always"])
            .arg(&fixture().v1)
            .arg(&dst),
    );
    assert!(r.ok, "cp: {}", r.stderr);
    dst
}

/// Boot with the control script and `disks` (`$D1`, `$D2`, … in it).
fn step(out: &Path, dir: &Path, n: usize, script: &str, disks: &[PathBuf], tpm: bool) -> Booted {
    step_append(out, dir, n, script, disks, tpm, "")
}

/// [`step`] with extra kernel command-line words.
fn step_append(
    out: &Path,
    dir: &Path,
    n: usize,
    script: &str,
    disks: &[PathBuf],
    tpm: bool,
    append: &str,
) -> Booted {
    control_boot(
        out,
        dir,
        n,
        &format!("{PRELUDE}{script}"),
        disks,
        tpm,
        append,
    )
}

fn assert_status(s: &serde_json::Value, running: &str, trial: bool, committed: &str, floor: u64) {
    assert_eq!(s["running"]["slot"], running, "running slot: {s}");
    assert_eq!(s["running"]["trial"], trial, "trial: {s}");
    assert_eq!(s["committed"], committed, "committed: {s}");
    assert_eq!(s["floor"], floor, "floor: {s}");
}

/// The v1 → v2 path: install from the stick (boot 1), the trial boot that
/// commits (boot 2), v2 committed (boot 3). Returns boot 3's log.
fn update_to_v2(out: &Path, dir: &Path, tpm: bool, boot3: &str) -> Booted {
    let stick = raw_disk(dir, "stick.img", &read(&built_bundle("v2")));
    let b = step(
        out,
        dir,
        1,
        "echo kept-from-v1 > /data/keep.txt; sync\nst s0\n$U install $D1; echo install-rc=$?\nst s1",
        &[stick],
        tpm,
    );
    assert_eq!(b.value("install-rc"), "0", "{}", b.dump());
    b.line("update: bundle: edge 2.0.0 (security version 2) for root-b, manifest signature OK");
    b.line("installed edge 2.0.0 (security version 2) into root-b");
    let s0 = json_value(&b, "s0");
    assert_status(&s0, "root-a", false, "root-a", 1);
    assert_eq!(s0["trial_pending"], serde_json::Value::Null);
    assert_eq!(slot_of(&s0, "root-a")["state"], "good");
    let s1 = json_value(&b, "s1");
    assert_status(&s1, "root-a", false, "root-a", 1);
    assert_eq!(s1["trial_pending"], "root-b", "{s1}");
    let rb = slot_of(&s1, "root-b");
    assert_eq!(
        (&rb["state"], &rb["version"], &rb["security_version"]),
        (&"installed".into(), &"2.0.0".into(), &2.into()),
        "{s1}"
    );
    b.assert_clean_poweroff();

    // Boot 2: v2's trial; it commits.
    let b = step(
        out,
        dir,
        2,
        "echo release=$(cat /etc/release)\necho keep=$(cat /data/keep.txt)\nst s2\ngate_wait\nst s3",
        &[],
        tpm,
    );
    assert_eq!(b.value("release"), "v2", "{}", b.dump());
    b.line("v2svc-up");
    assert_eq!(b.value("keep"), "kept-from-v1");
    let s2 = json_value(&b, "s2");
    assert_status(&s2, "root-b", true, "root-a", 1);
    assert_eq!(slot_of(&s2, "root-b")["state"], "trying", "{s2}");
    assert_eq!(b.value("gate"), "committed", "{}", b.dump());
    b.line("update: trial of root-b passed every gate: committed");
    b.line("update: root-b is the committed slot; the floor is security version 2");
    let s3 = json_value(&b, "s3");
    assert_eq!(s3["committed"], "root-b", "{s3}");
    assert_eq!(s3["floor"], 2, "the floor rises at commit: {s3}");
    assert_eq!(slot_of(&s3, "root-b")["state"], "good", "{s3}");
    b.assert_clean_poweroff();

    // Boot 3: v2 committed, not a trial.
    let b = step(
        out,
        dir,
        3,
        &format!("echo release=$(cat /etc/release)\nst s4\n{boot3}"),
        &[],
        tpm,
    );
    assert_eq!(b.value("release"), "v2", "{}", b.dump());
    let s4 = json_value(&b, "s4");
    assert_status(&s4, "root-b", false, "root-b", 2);
    assert_eq!(s4["trial_pending"], serde_json::Value::Null, "{s4}");
    b
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// The line `H KIND rc=N MESSAGE` the hostile loop printed for `kind`.
fn refusal(b: &Booted, kind: &str) -> (String, String) {
    let needle = format!("H {kind} rc=");
    let l = b
        .serial
        .lines()
        .find(|l| l.contains(&needle))
        .unwrap_or_else(|| panic!("no result for {kind}\n{}", b.dump()));
    let rest = l.split(&needle).nth(1).unwrap_or_default();
    let (rc, msg) = rest.split_once(' ').unwrap_or((rest, ""));
    (rc.to_string(), msg.to_string())
}

#[test]
fn v1_to_v2_commits_keeps_data_and_raises_the_floor() {
    let dir = tempdir();
    let out = device(dir.path());
    let b = update_to_v2(&out, dir.path(), false, "echo keep=$(cat /data/keep.txt)");
    assert_eq!(b.value("keep"), "kept-from-v1", "{}", b.dump());
    b.assert_clean_poweroff();
    // Boot 4: v1 (security version 1) for root-a, now below the floor:
    // the downgrade after the commit is refused.
    let stick = raw_disk(dir.path(), "down.img", &read(&built_bundle("v1-root-a")));
    let b = step(
        &out,
        dir.path(),
        4,
        "$U install $D1; echo down-rc=$?\nst s6",
        &[stick],
        false,
    );
    assert_eq!(b.value("down-rc"), "1", "{}", b.dump());
    b.line("update: refused: bundle has security version 1, below this device's floor 2");
    let s6 = json_value(&b, "s6");
    assert_status(&s6, "root-b", false, "root-b", 2);
    assert_eq!(slot_of(&s6, "root-a")["state"], "good", "{s6}");
    b.assert_clean_poweroff();
}

#[test]
fn v1_to_v2_attests_against_v2_only() {
    const NONCE: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
    let dir = tempdir();
    let out = device(dir.path());
    let b = update_to_v2(
        &out,
        dir.path(),
        true,
        &format!("/sbin/initctl attest --nonce {NONCE} -o /data/report.bin; echo attest-rc=$?"),
    );
    assert_eq!(b.value("attest-rc"), "0", "{}", b.dump());
    b.assert_clean_poweroff();
    let report = dir.path().join("report.bin");
    let bytes = data_file(&out, "/report.bin").unwrap_or_else(|| panic!("no report\n{}", b.dump()));
    std::fs::write(&report, bytes).unwrap_or_default();
    let ak = dir.path().join("report.ak");
    let (r, a) = (report.display().to_string(), ak.display().to_string());
    let e = attest(&["enroll", &r, "-o", &a]);
    assert!(e.ok, "enroll: {}{}", e.stdout, e.stderr);
    // v2's signed manifest (the bundle's manifest section = manifest.bin).
    let v2 = read(&built_bundle("v2"));
    let s = sections(&v2);
    let v2m = dir.path().join("v2-manifest.bin");
    std::fs::write(&v2m, v2.get(s.manifest).unwrap_or_default()).unwrap_or_default();
    let m = v2m.display().to_string();
    let pubkey = fixture()
        .key
        .with_extension("key.pub")
        .display()
        .to_string();
    let ok = attest(&[
        "verify",
        &r,
        "--manifest",
        &m,
        "--nonce",
        NONCE,
        "--ak",
        &a,
        "--key",
        &pubkey,
    ]);
    assert!(ok.ok, "against v2: {}{}", ok.stdout, ok.stderr);
    assert!(ok.stdout.contains("ATTESTED: edge 2.0.0"), "{}", ok.stdout);
    let v1m = fixture().v1.display().to_string();
    let bad = attest(&[
        "verify",
        &r,
        "--manifest",
        &v1m,
        "--nonce",
        NONCE,
        "--ak",
        &a,
    ]);
    assert!(
        !bad.ok,
        "must fail against v1: {}{}",
        bad.stdout, bad.stderr
    );
    assert!(
        !bad.stdout.lines().any(|l| l.starts_with("ATTESTED:")),
        "{}",
        bad.stdout
    );
}

/// Install `bundle` from v1 (boot 1), run its trial (boot 2, `script`,
/// `append` on the kernel command line), then boot again (boot 3): v1
/// must run, root-b be `bad` with a failure containing `reason`. Returns
/// boot 2's log.
fn failed_trial(bundle: &str, script: &str, append: &str, reason: &str) -> Booted {
    let dir = tempdir();
    let out = device(dir.path());
    let stick = raw_disk(dir.path(), "stick.img", &read(&built_bundle(bundle)));
    let b = step(
        &out,
        dir.path(),
        1,
        "$U install $D1; echo install-rc=$?",
        &[stick],
        false,
    );
    assert_eq!(b.value("install-rc"), "0", "{}", b.dump());
    let trial = step_append(&out, dir.path(), 2, script, &[], false, append);
    assert_eq!(trial.value("release"), "v2", "{}", trial.dump());
    assert_status(&json_value(&trial, "s1"), "root-b", true, "root-a", 1);
    let b = step(
        &out,
        dir.path(),
        3,
        "echo release=$(cat /etc/release)\nst s2",
        &[],
        false,
    );
    assert_eq!(b.value("release"), "v1", "{}", b.dump());
    let s2 = json_value(&b, "s2");
    assert_status(&s2, "root-a", false, "root-a", 1);
    assert_eq!(s2["trial_pending"], serde_json::Value::Null, "{s2}");
    let rb = slot_of(&s2, "root-b");
    assert_eq!(rb["state"], "bad", "{s2}");
    let why = rb["failure"].as_str().unwrap_or_default();
    assert!(why.contains(reason), "want {reason:?} in the reason: {s2}");
    b.assert_clean_poweroff();
    trial
}

#[test]
fn an_uncommitted_trial_falls_back_to_v1() {
    // Policy manual: the gates pass, then the trial boot powers off without
    // `update commit` (a power cut or reset before the commit looks the
    // same to the next boot).
    let t = failed_trial(
        "v2-manual",
        "echo release=$(cat /etc/release)\nst s1\ngate_wait",
        "",
        "did not commit",
    );
    assert_eq!(t.value("gate"), "awaiting-commit", "{}", t.dump());
    t.line("update: trial of root-b passed every gate: awaiting `update commit`");
}

#[test]
fn a_crash_looping_v2_rolls_back_with_the_gates_reason() {
    let t = failed_trial(
        "v2-crash",
        "echo release=$(cat /etc/release)\nst s1\ngate_wait\nsleep 60",
        "",
        "service \"crasher\"",
    );
    t.line("update: trial of root-b failed: service \"crasher\"");
    t.line("update: rebooting into root-a");
}

#[test]
fn a_trial_with_another_measured_cmdline_rolls_back() {
    let t = failed_trial(
        "v2",
        "echo release=$(cat /etc/release)\nst s1\ngate_wait\nsleep 60",
        "azl.test.extra=1",
        "measurement self-check",
    );
    t.line("update: trial of root-b failed: measurement self-check");
    t.line("update: rebooting into root-a");
}

#[test]
fn a_hung_trial_is_reset_by_the_watchdog_and_rolls_back() {
    // During the gate's hold (120 s), `initctl watchdog-test` makes PID 1
    // stop running its main loop as a wedged init would: the watchdog is
    // no longer petted, the i6300esb (10 s) resets the board (QEMU exits,
    // -no-reboot), the trial never commits.
    let t = failed_trial(
        "v2-slow",
        "echo release=$(cat /etc/release)\nst s1\nsleep 1\n/sbin/initctl watchdog-test; echo wedge-rc=$?\nsleep 100",
        "",
        "did not commit",
    );
    t.line("update: gate: every service is ready; holding 120 s");
    assert!(
        !t.has("passed every gate"),
        "the gate must not finish: {}",
        t.dump()
    );
    assert!(!t.has("reboot: Power down"), "{}", t.dump());
}

/// A hostile bundle: its name, bytes, whether it goes on a raw disk (a
/// block device) instead of a file, and the message expected.
struct Hostile {
    kind: &'static str,
    bytes: Vec<u8>,
    raw: bool,
    expect: String,
    /// Refused before anything was written (boot state unchanged).
    before_write: bool,
}

fn flip(mut b: Vec<u8>, at: usize) -> Vec<u8> {
    if let Some(x) = b.get_mut(at) {
        *x ^= 0x01;
    }
    b
}

fn hostile_set() -> Vec<Hostile> {
    let f = fixture();
    let good = read(&built_bundle("v2"));
    let s = sections(&good);
    let m = manifest_of(&good);
    let other_key = read(&built_bundle("other-key"));
    let root_a = read(&built_bundle("v1-root-a"));
    let board_at = good
        .get(s.manifest.clone())
        .and_then(|sec| sec.windows(9).position(|w| w == b"qemu-virt"))
        .map(|p| p + s.manifest.start)
        .unwrap_or_else(|| panic!("board name not in the manifest section"));
    let bs = m.rootfs.verity.data_block_size as usize;
    let mut tree_tampered = good.clone();
    if let Some(x) = tree_tampered.get_mut(s.tree.start + 4096 + 3) {
        *x ^= 1;
    }
    let tampered_digest =
        azl_formats::sha256(tree_tampered.get(s.tree.clone()).unwrap_or_default());
    let tree_resigned = resign_header(&tree_tampered, &f.key, |h| {
        if let Some(p) = h.payloads.first_mut() {
            p.sha256 = tampered_digest;
        }
    });
    let absurd = resign_header(&good, &f.key, |h| {
        if let Some(p) = h.payloads.get_mut(1) {
            p.size = 10 << 40;
        }
    });
    let mut huge_header = good.clone();
    if let Some(h) = huge_header.get_mut(12..16) {
        h.copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    }
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"x");
    let mut dirty_pad = good.clone();
    dirty_pad.resize(good.len() + 700, 0);
    if let Some(x) = dirty_pad.last_mut() {
        *x = 0x5a;
    }
    let garbage: Vec<u8> = (0..65536u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let cut = |at: usize| good.get(..at).unwrap_or_default().to_vec();
    let mk = |kind, bytes, expect: &str, before_write| Hostile {
        kind,
        bytes,
        raw: false,
        expect: expect.to_string(),
        before_write,
    };
    let data_block = 3;
    vec![
        mk("bad-manifest-signature", flip(good.clone(), board_at), "signature does not verify", true),
        mk("manifest-other-key", other_key.clone(), "but this device trusts key", true),
        mk("other-board", read(&built_bundle("other-board")), "manifest is for board \"qemu-other\", this device is \"qemu-virt\"", true),
        mk("for-running-slot", root_a.clone(), "bundle is built for root-a, the running slot; an update must target root-b", true),
        mk("below-floor", read(&built_bundle("v0")), "bundle has security version 0, below this device's floor 1", true),
        mk("header-other-key", swap_header(&good, &other_key), "bundle header signed by key", true),
        mk("header-other-manifest", swap_header(&good, &root_a), "bundle header was signed for a different manifest", true),
        mk("header-forged", flip(good.clone(), s.header.end - 1), "bundle header signature does not verify", true),
        mk("header-length-absurd", huge_header, "bundle header section is 2147483647 bytes (must be 1 to 16384)", true),
        mk("truncated-manifest", cut(s.manifest.start + 10), "bundle is truncated in its manifest", true),
        mk("truncated-header", cut(s.header.start + 10), "bundle is truncated in its header", true),
        mk("truncated-tree", cut(s.tree.start + 100), "bundle is truncated in its hash-tree", true),
        mk("truncated-data", cut(s.data.start + 5 * bs + 1), "bundle is truncated in its root-data", false),
        mk("flipped-data-byte", flip(good.clone(), s.data.start + data_block * bs + 7), &format!("bundle data block {data_block} (slot offset {}) does not match the signed verity tree", data_block * bs), false),
        mk("flipped-tree-byte", flip(good.clone(), s.tree.start + 4096 + 3), "bundle hash-tree payload does not match its sha256", true),
        mk("tampered-tree-resigned", tree_resigned, "bundle hash tree: verity hash block", true),
        mk("absurd-size-10TiB", absurd, &format!("bundle root-data payload declares {} bytes, the signed manifest implies {}", 10u64 << 40, m.rootfs.data_size), true),
        mk("garbage", garbage, "not an azl-edge bundle", true),
        mk("trailing-bytes", trailing, "bundle has bytes after its last payload", false),
        Hostile {
            kind: "nonzero-padding-blockdev",
            bytes: dirty_pad,
            raw: true,
            expect: "bundle has bytes after its last payload (a block device may only be zero-padded)".into(),
            before_write: false,
        },
    ]
}

#[test]
fn hostile_bundles_are_refused_and_v1_is_untouched() {
    let dir = tempdir();
    let out = device(dir.path());
    let set = hostile_set();
    let files: Vec<(String, Vec<u8>)> = set
        .iter()
        .filter(|h| !h.raw)
        .map(|h| (format!("{}.bundle", h.kind), h.bytes.clone()))
        .collect();
    let mut disks = vec![files_disk(dir.path(), "hostile.img", &files)];
    // Raw ones are $D2, $D3, …
    let mut script = String::from(
        "bs() { echo \"$1=c0:$(dd if=$BS bs=4096 count=1 2>/dev/null | sha256sum | cut -c1-64) c1:$(dd if=$BS bs=4096 skip=16 count=1 2>/dev/null | sha256sum | cut -c1-64)\"; }\n\
         try() { bs \"B $1\"; $U install \"$2\" >/dev/null 2>/tmp/err; rc=$?; echo \"H $1 rc=$rc $(grep 'update: refused' /tmp/err)\"; bs \"A $1\"; st \"S $1\"; }\n\
         echo bsdev=$BS\nst s0\nmkdir -p /run/h && mount -t ext4 -o ro $D1 /run/h || echo mount-failed\n",
    );
    for h in set.iter().filter(|h| !h.raw) {
        script.push_str(&format!("try {k} /run/h/{k}.bundle\n", k = h.kind));
    }
    for (dev, h) in (2..).zip(set.iter().filter(|h| h.raw)) {
        disks.push(raw_disk(dir.path(), &format!("{}.img", h.kind), &h.bytes));
        script.push_str(&format!("try {} $D{dev}\n", h.kind));
    }
    let disk = out.join("disk.img");
    let root_a = partition_sha256(&disk, "root-a");
    // A fresh device: both copies blank until the first boot writes one.
    assert!(bootstate_in_force(&disk).is_none());
    let b = step(&out, dir.path(), 1, &script, &disks, false);
    assert!(!b.has("mount-failed"), "{}", b.dump());
    let s0 = json_value(&b, "s0");
    assert_eq!(
        s0["location"].as_str(),
        Some(b.value("bsdev").as_str()),
        "the script reads the boot state there: {s0}"
    );
    assert!(b.value("bsdev").starts_with("/dev/vd"), "{}", b.dump());
    let mut failures = Vec::new();
    for h in &set {
        let (rc, msg) = refusal(&b, h.kind);
        eprintln!("hostile {}: rc={rc} {msg}", h.kind);
        if rc != "1" || !msg.contains(&h.expect) {
            failures.push(format!(
                "{}: rc={rc}, got {msg:?}, expected {:?}",
                h.kind, h.expect
            ));
            continue;
        }
        let s = json_value(&b, &format!("S {}", h.kind));
        assert_status(&s, "root-a", false, "root-a", 1);
        assert_eq!(
            slot_of(&s, "root-a"),
            slot_of(&s0, "root-a"),
            "{}: {s}",
            h.kind
        );
        assert_eq!(
            s["trial_pending"],
            serde_json::Value::Null,
            "{}: {s}",
            h.kind
        );
        let state_b = slot_of(&s, "root-b")["state"].clone();
        if h.before_write {
            assert_eq!(
                b.value(&format!("B {}", h.kind)),
                b.value(&format!("A {}", h.kind)),
                "{}: boot state written",
                h.kind
            );
        } else {
            assert_eq!(state_b, "writing", "{}: {s}", h.kind);
        }
    }
    assert!(failures.is_empty(), "{}\n{}", failures.join("\n"), b.dump());
    b.assert_clean_poweroff();
    assert_eq!(partition_sha256(&disk, "root-a"), root_a, "root-a changed");
    let (seq1, _) = bootstate_in_force(&disk).unwrap_or_else(|| panic!("no boot state written"));
    assert!(seq1 >= 1, "boot state sequence {seq1}");
    // v1 still boots, committed, floor 1.
    let b = step(
        &out,
        dir.path(),
        2,
        "echo release=$(cat /etc/release)\nst s9",
        &[],
        false,
    );
    assert_eq!(b.value("release"), "v1", "{}", b.dump());
    assert_status(&json_value(&b, "s9"), "root-a", false, "root-a", 1);
}

#[test]
fn an_old_image_written_into_a_slot_never_boots() {
    let dir = tempdir();
    let out = device(dir.path());
    let disk = out.join("disk.img");
    // Boot 1: v1 installs v2; boot 2: v2 commits (floor 2). Reuse the steps
    // of the update path, in short.
    let stick = raw_disk(dir.path(), "stick.img", &read(&built_bundle("v2")));
    let b = step(
        &out,
        dir.path(),
        1,
        "$U install $D1; echo install-rc=$?",
        &[stick],
        false,
    );
    assert_eq!(b.value("install-rc"), "0", "{}", b.dump());
    let b = step(&out, dir.path(), 2, "gate_wait", &[], false);
    assert_eq!(b.value("gate"), "committed", "{}", b.dump());
    // Someone with the disk writes an older image signed with the same key
    // (security version 1, built for root-a) straight into root-a, the
    // inactive slot, and wipes the boot state so stage 1 has to choose
    // from the slots themselves.
    write_slot_raw(&disk, "root-a", &read(&built_bundle("v1-root-a")));
    let bs = partition(&disk, "bootstate");
    write_at(&disk, bs.offset, &vec![0x77u8; 4096]);
    write_at(&disk, bs.offset + 65536, &vec![0x77u8; 4096]);
    let b = step(
        &out,
        dir.path(),
        3,
        "echo release=$(cat /etc/release)\nst s3",
        &[],
        false,
    );
    b.line("!!! RECOVERY");
    assert_eq!(b.value("release"), "v2", "{}", b.dump());
    let s3 = json_value(&b, "s3");
    assert_status(&s3, "root-b", false, "root-b", 2);
    let ra = slot_of(&s3, "root-a");
    assert_eq!(ra["state"], "bad", "{s3}");
    assert!(
        !ra["failure"].is_null(),
        "status must say why root-a may not boot: {s3}"
    );
    // Even asked to, the device does not switch back to it.
    let b = step(
        &out,
        dir.path(),
        4,
        "$U rollback; echo rollback-rc=$?\nst s4",
        &[],
        false,
    );
    assert_eq!(b.value("rollback-rc"), "1", "{}", b.dump());
    assert_status(&json_value(&b, "s4"), "root-b", false, "root-b", 2);
}
