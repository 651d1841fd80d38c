//! Commit policy `attested` end to end, in QEMU with swtpm: v1 (local
//! policy) is a disk image; v2 is a root-b bundle whose `[update]` says
//! `commit = "attested"`, a 45 s approval deadline and the verifier's
//! public key. The device installs v2 and boots its trial; once the local
//! gates passed, the guest answers a fresh nonce with `initctl attest`,
//! the host runs `imagegen attest verify … --approve KEY -o FILE` on the
//! report *while the trial runs* and hands the approvals back through a
//! mailbox disk (tests/src/attested.rs); the guest feeds each to
//! `update approve`.
//!
//! Device A (boots A1, A2): an approval of v1's manifest and one signed by
//! another key are refused with their messages, the trial keeps waiting,
//! the approval of this trial's own quote commits it.
//! Device B (a copy of A's disk after A1 with a factory-fresh TPM, so
//! another AK; boots B2, B3): A's valid approval is refused there as
//! another device's, a tampered one on its signature; nothing valid
//! arrives, the deadline fails the trial, v1 boots next and `update
//! status` names the reason.
use azl_e2e::attested::*;
use azl_e2e::update::*;
use azl_e2e::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

const DEADLINE_S: u32 = 45;
const NONCE_A1: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
const NONCE_A2: &str = "a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2";
const NONCE_B2: &str = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2";

/// Guest prelude: the mailboxes, `st KEY` (status JSON on one line) and
/// `gate_until KEY PATTERN`: wait (up to 150 s) until the gate is PATTERN
/// or has an outcome, print `KEY=GATE`.
const PRELUDE: &str = r#"U='/sbin/init update'
st() { echo "$1=$($U status --json | tr -d '\n')"; }
gate_until() { i=0; while [ $i -lt 150 ]; do g=$($U status --json | sed -n 's/.*"gate":"\([^"]*\)".*/\1/p'); case "$g" in $2|""|committed|failed*|commit-failed*) echo "$1=$g"; return 0;; esac; sleep 1; i=$((i+1)); done; echo "$1=timeout"; }
"#;

fn image(dir: &Path, key: &Path, tag: &str, version: &str, sv: u32, update: &str) -> Image {
    let rel = dir.join(format!("release-{tag}"));
    std::fs::write(&rel, format!("{tag}\n")).unwrap_or_else(|e| panic!("write: {e}"));
    with_agent(
        Image::new("edge", Kernel::Small)
            .disk(key)
            .release(version, sv)
            .with(&format!(
                "[[file]]\nsrc = {}\ndst = \"/etc/release\"\nmode = \"0644\"\n\n[update]\n{update}\nhold_s = 2\nready_deadline_s = 60\n",
                toml_str(&rel.display().to_string())
            )),
    )
}

/// Boot with the control disk first and `disks` after it (`$D1`, … in
/// the script), with swtpm.
fn boot_opts(dir: &Path, n: &str, script: &str, disks: &[PathBuf]) -> Boot {
    let ctl = control_disk(
        dir,
        &format!("ctl-{n}.img"),
        &format!("{PRELUDE}{MAILBOX_SH}IN=$D1\nOUT=$D2\n{script}"),
        disks,
    );
    let mut all = vec![ctl];
    all.extend(disks.iter().cloned());
    Boot {
        tpm: true,
        disks: all,
        timeout: Some(Duration::from_secs(300)),
        append: String::new(),
    }
}

fn attest_verify(
    report: &Path,
    manifest: &Path,
    nonce: &str,
    f: &Fixture,
    extra: &[&str],
) -> CmdResult {
    let (r, m, ak, k) = (
        report.display().to_string(),
        manifest.display().to_string(),
        f.ak.display().to_string(),
        f.manifest_pub.display().to_string(),
    );
    let mut args = vec![
        "verify",
        &r,
        "--manifest",
        &m,
        "--nonce",
        nonce,
        "--ak",
        &ak,
        "--key",
        &k,
    ];
    args.extend_from_slice(extra);
    attest(&args)
}

fn approve(
    report: &Path,
    manifest: &Path,
    nonce: &str,
    f: &Fixture,
    key: &Path,
    out: &Path,
) -> Vec<u8> {
    let (k, o) = (key.display().to_string(), out.display().to_string());
    let r = attest_verify(report, manifest, nonce, f, &["--approve", &k, "-o", &o]);
    assert!(r.ok, "attest verify --approve: {}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("ATTESTED: edge"), "{}", r.stdout);
    assert!(r.stdout.contains("approval written to"), "{}", r.stdout);
    std::fs::read(out).unwrap_or_else(|e| panic!("read {}: {e}", out.display()))
}

struct Fixture {
    dir: TempDir,
    manifest_pub: PathBuf,
    verifier: PathBuf,
    other_verifier: PathBuf,
    /// v2's signed manifest (the bundle's manifest section).
    v2_manifest: PathBuf,
    /// v1's output directory (its manifest.bin is v1's reference).
    v1: PathBuf,
    /// Device A's AK, enrolled from its first (factory) report.
    ak: PathBuf,
    /// A1's report (v1 running, nonce NONCE_A1).
    report_a1: PathBuf,
    /// Device B: A's disk after A1 (v2 installed), without A's TPM state.
    dev_b: PathBuf,
    /// A2's log and the approval of A2's quote.
    a2: Booted,
    a2_approval: Vec<u8>,
    v2_manifest_sha256: String,
}

/// Device A's two boots, run once for every test here.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = fixture_dir(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("attested-fixture"));
        let d = dir.path();
        let key = keygen(d, "fleet.key");
        let verifier = keygen(d, "verifier.key");
        let other_verifier = keygen(d, "other-verifier.key");
        let manifest_pub = d.join("fleet.key.pub");
        let v1dir = d.join("v1");
        std::fs::create_dir_all(&v1dir).unwrap_or_default();
        let v1 = image(d, &key, "v1", "1.0.0", 1, "commit = \"local\"").build(&v1dir);
        let attested = format!(
            "commit = \"attested\"\nverifier_key = {}\napproval_deadline_s = {DEADLINE_S}",
            toml_str(&d.join("verifier.key.pub").display().to_string())
        );
        let v2img = image(d, &key, "v2", "2.0.0", 2, &attested);
        let bdir = d.join("b-v2");
        std::fs::create_dir_all(&bdir).unwrap_or_default();
        let bundle_path = bundle(&v2img, &bdir, "v2.bundle", "root-b", &[]);
        let bundle_bytes = std::fs::read(&bundle_path).unwrap_or_default();
        let s = sections(&bundle_bytes);
        let v2m_bytes = bundle_bytes.get(s.manifest).unwrap_or_default().to_vec();
        let v2_manifest_sha256 = hex(&azl_formats::sha256(&v2m_bytes));
        let v2_manifest = d.join("v2-manifest.bin");
        std::fs::write(&v2_manifest, &v2m_bytes).unwrap_or_default();

        // Device A, boot A1: v1 answers NONCE_A1, installs v2.
        let a = d.join("dev-a");
        let r = run_mut(std::process::Command::new("cp").args(["-a", "--sparse=always"]).arg(&v1).arg(&a));
        assert!(r.ok, "cp: {}", r.stderr);
        let stick = raw_disk(d, "stick.img", &bundle_bytes);
        let (inbox, outbox) = (mailbox(d, "in-a1.img", INBOX_LABEL), mailbox(d, "out-a1.img", OUTBOX_LABEL));
        let b = boot(
            &a,
            &boot_opts(
                d,
                "a1",
                &format!(
                    "/sbin/initctl attest --nonce {NONCE_A1} -o /tmp/r.bin; echo attest-rc=$?\nsend_report /tmp/r.bin\n$U install $D3; echo install-rc=$?\nst s0"
                ),
                &[inbox, outbox.clone(), stick],
            ),
        );
        assert_eq!(b.value("attest-rc"), "0", "{}", b.dump());
        assert_eq!(b.value("install-rc"), "0", "{}", b.dump());
        assert_eq!(slot_of(&json_value(&b, "s0"), "root-b")["state"], "installed");
        b.assert_clean_poweroff();
        let len: usize = b.value("report-ready").parse().unwrap_or(0);
        let report_a1 = d.join("report-a1.bin");
        std::fs::write(&report_a1, read_outbox(&outbox, len)).unwrap_or_default();
        // Factory provisioning: pin A's AK from this first report.
        let ak = d.join("a.ak");
        let e = attest(&["enroll", &report_a1.display().to_string(), "-o", &ak.display().to_string()]);
        assert!(e.ok, "enroll: {}{}", e.stdout, e.stderr);

        // Device B: the same disk now, another (factory-fresh) TPM.
        let dev_b = d.join("dev-b");
        let r = run_mut(std::process::Command::new("cp").args(["-a", "--sparse=always"]).arg(&a).arg(&dev_b));
        assert!(r.ok, "cp: {}", r.stderr);
        std::fs::remove_dir_all(dev_b.join("tpm")).unwrap_or_else(|e| panic!("rm tpm: {e}"));

        let mut f = Fixture {
            dir,
            manifest_pub,
            verifier,
            other_verifier,
            v2_manifest,
            v1,
            ak,
            report_a1,
            dev_b,
            a2: Booted {
                code: None,
                serial: String::new(),
                stderr: String::new(),
                elapsed: Duration::ZERO,
            },
            a2_approval: Vec::new(),
            v2_manifest_sha256,
        };
        let d = f.dir.path().to_path_buf();
        // Approval of A1's quote: v1's manifest (a genuine approval, for
        // another trial).
        let v1_approval = approve(&f.report_a1, &f.v1, NONCE_A1, &f, &f.verifier, &d.join("ap-v1.bin"));

        // Boot A2: the trial, live.
        let (inbox, outbox) = (mailbox(&d, "in-a2.img", INBOX_LABEL), mailbox(&d, "out-a2.img", OUTBOX_LABEL));
        let script = format!(
            "echo release=$(cat /etc/release)\ngate_until g1 approval\nst s1\necho \"gatetext=$($U status | grep gate:)\"\n\
             $U commit; echo commit-rc=$?\n\
             /sbin/initctl attest --nonce {NONCE_A2} -o /tmp/r.bin; echo attest-rc=$?\nsend_report /tmp/r.bin\n\
             take_approvals\ngate_until g2 none\nst s2"
        );
        let mut live = Live::start(&a, &boot_opts(&d, "a2", &script, &[inbox.clone(), outbox.clone()]), &d.join("a2.log"));
        let len: usize = live.wait_for("report-ready=", Duration::from_secs(200)).parse().unwrap_or(0);
        let report_a2 = d.join("report-a2.bin");
        std::fs::write(&report_a2, read_outbox(&outbox, len)).unwrap_or_default();
        let good = approve(&report_a2, &f.v2_manifest, NONCE_A2, &f, &f.verifier, &d.join("ap-a2.bin"));
        let other_key = approve(&report_a2, &f.v2_manifest, NONCE_A2, &f, &f.other_verifier, &d.join("ap-otherkey.bin"));
        write_inbox(
            &inbox,
            &[("v1", v1_approval), ("otherkey", other_key), ("good", good.clone())],
        );
        f.a2 = live.finish(Duration::from_secs(300));
        f.a2_approval = good;
        f
    })
}

/// (a) and (c, another manifest): only the approval of this trial's own
/// quote, signed by the image's verifier key, commits it.
#[test]
fn a_valid_approval_commits_the_attested_trial() {
    let f = fixture();
    let b = &f.a2;
    assert_eq!(b.value("release"), "v2", "{}", b.dump());
    b.line("update: trial boot of root-b: health gate started (commit attested");
    b.line(&format!(
        "update: trial of root-b passed every local gate: waiting {DEADLINE_S} s for an approval"
    ));
    assert_eq!(b.value("g1"), "approval", "{}", b.dump());
    let s1 = json_value(b, "s1");
    assert_eq!(s1["gate"], "approval", "{s1}");
    let left = s1["approval_left_s"].as_u64().unwrap_or(0);
    assert!((1..=u64::from(DEADLINE_S)).contains(&left), "{s1}");
    assert!(
        b.value("gatetext").contains("waiting for approval ("),
        "{}",
        b.dump()
    );
    assert_eq!(slot_of(&s1, "root-b")["state"], "trying", "{s1}");
    // By hand is not how an attested trial commits.
    assert_eq!(b.value("commit-rc"), "1", "{}", b.dump());
    b.line("update: refused: the trial of root-b has commit policy attested");
    assert_eq!(b.value("attest-rc"), "0", "{}", b.dump());

    let (rc, msg) = approve_result(b, "v1");
    assert_eq!(rc, "1", "{msg}");
    let v1_sha = hex(&azl_formats::sha256(
        &std::fs::read(f.v1.join("manifest.bin")).unwrap_or_default(),
    ));
    assert!(
        msg.contains(&format!(
            "approval is for manifest {}…, this trial runs {}…",
            &v1_sha[..16],
            &f.v2_manifest_sha256[..16]
        )),
        "{msg}"
    );
    let (rc, msg) = approve_result(b, "otherkey");
    assert_eq!(rc, "1", "{msg}");
    assert!(
        msg.contains("approval signature does not verify with this image's verifier key"),
        "{msg}"
    );
    let (rc, msg) = approve_result(b, "good");
    assert_eq!(rc, "0", "{msg}\n{}", b.dump());
    assert!(msg.contains("approved: root-b is committed"), "{msg}");
    b.assert_order(&[
        "A v1 rc=1",
        "A otherkey rc=1",
        "update: approval accepted (nonce a2a2",
        "update: trial of root-b passed every gate: committed",
        "update: root-b is the committed slot; the floor is security version 2",
    ]);
    assert_eq!(b.value("g2"), "committed", "{}", b.dump());
    let s2 = json_value(b, "s2");
    assert_eq!(
        (&s2["committed"], &s2["floor"]),
        (&"root-b".into(), &2.into()),
        "{s2}"
    );
    assert_eq!(slot_of(&s2, "root-b")["state"], "good", "{s2}");
    b.assert_clean_poweroff();
}

/// (b) and (c, another device): on device B, A's approval (same v2
/// manifest, A's AK and nonce) and a tampered one are refused; the trial
/// keeps waiting, gets nothing valid, fails at the deadline; v1 boots next
/// and `update status` says why.
#[test]
fn without_a_valid_approval_the_trial_rolls_back_at_the_deadline() {
    let f = fixture();
    let d = tempdir();
    let (inbox, outbox) = (
        mailbox(d.path(), "in-b2.img", INBOX_LABEL),
        mailbox(d.path(), "out-b2.img", OUTBOX_LABEL),
    );
    let mut tampered = f.a2_approval.clone();
    if let Some(last) = tampered.last_mut() {
        *last ^= 0x01; // inside the Ed25519 signature
    }
    write_inbox(
        &inbox,
        &[("device-a", f.a2_approval.clone()), ("tampered", tampered)],
    );
    let script = format!(
        "echo release=$(cat /etc/release)\ngate_until g1 approval\n\
         /sbin/initctl attest --nonce {NONCE_B2} -o /tmp/r.bin; echo attest-rc=$?\n\
         take_approvals\nst s1\ngate_until g2 none\nsleep 60"
    );
    let b2 = boot(
        &f.dev_b,
        &boot_opts(d.path(), "b2", &script, &[inbox.clone(), outbox.clone()]),
    );
    assert_eq!(b2.value("release"), "v2", "{}", b2.dump());
    assert_eq!(b2.value("attest-rc"), "0", "{}", b2.dump());
    let (rc, msg) = approve_result(&b2, "device-a");
    assert_eq!(rc, "1", "{msg}");
    assert!(msg.contains("approval is for another device (AK "), "{msg}");
    let (rc, msg) = approve_result(&b2, "tampered");
    assert_eq!(rc, "1", "{msg}");
    assert!(
        msg.contains("approval signature does not verify with this image's verifier key"),
        "{msg}"
    );
    // Still waiting after both refusals.
    let s1 = json_value(&b2, "s1");
    assert_eq!(s1["gate"], "approval", "{s1}");
    b2.line(&format!(
        "update: trial of root-b failed: no approval within {DEADLINE_S} s"
    ));
    b2.line("update: rebooting into root-a");
    assert!(!b2.has("passed every gate: committed"), "{}", b2.dump());

    // B3: v1 runs; root-b is bad with the gate's reason.
    let b3 = boot(
        &f.dev_b,
        &boot_opts(
            d.path(),
            "b3",
            "echo release=$(cat /etc/release)\nst s2",
            &[inbox, outbox],
        ),
    );
    assert_eq!(b3.value("release"), "v1", "{}", b3.dump());
    let s2 = json_value(&b3, "s2");
    assert_eq!(
        (&s2["running"]["slot"], &s2["committed"]),
        (&"root-a".into(), &"root-a".into()),
        "{s2}"
    );
    let rb = slot_of(&s2, "root-b");
    assert_eq!(rb["state"], "bad", "{s2}");
    assert_eq!(
        rb["failure"],
        format!("no approval within {DEADLINE_S} s"),
        "{s2}"
    );
    b3.assert_clean_poweroff();
}

/// Fail-closed on the host: a report that does not attest (A1's v1 quote
/// against v2's manifest; a wrong nonce) gets no approval file.
#[test]
fn no_approval_is_written_for_a_report_that_does_not_attest() {
    let f = fixture();
    let d = tempdir();
    let out = d.path().join("approval.bin");
    let (k, o) = (f.verifier.display().to_string(), out.display().to_string());
    let r = attest_verify(
        &f.report_a1,
        &f.v2_manifest,
        NONCE_A1,
        f,
        &["--approve", &k, "-o", &o],
    );
    assert_eq!(r.code, Some(1), "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("no approval written"), "{}", r.stderr);
    assert!(!out.exists());
    let r = attest_verify(
        &f.report_a1,
        &f.v1,
        NONCE_A2,
        f,
        &["--approve", &k, "-o", &o],
    );
    assert_eq!(r.code, Some(1), "{}{}", r.stdout, r.stderr);
    assert!(!out.exists());
}
