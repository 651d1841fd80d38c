//! Measured boot and remote attestation end to end: boot with swtpm, have
//! the device answer a nonce with `initctl attest`, carry the report out on
//! the data partition, and verify it on the host with `imagegen attest
//! verify` — then attack it.
use azl_e2e::*;
use std::path::{Path, PathBuf};

const NONCE: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90";

/// An image whose `attester` service answers NONCE once everything is
/// ready and powers off. `variant` changes the service table.
fn attested_image(key: &Path, variant: &str) -> Image {
    // "tampered-rootfs" keeps the service table and adds a file to the root.
    let (variant, extra) = match variant {
        "tampered-rootfs" => (
            "one",
            "[[file]]\nsymlink = \"busybox\"\ndst = \"/bin/implant\"\n",
        ),
        v => (v, ""),
    };
    Image::new("attested", Kernel::Small)
        .disk(key)
        .with(extra)
        .sh_service("worker", &format!("echo worker-{variant}; exec sleep 1000"), "")
        .sh_service(
            "attester",
            &format!("sleep 1; /sbin/initctl attest --nonce {NONCE} -o /data/report.bin; echo attest-rc=$?; /sbin/initctl poweroff"),
            "restart = \"never\"\nafter = [\"worker\"]",
        )
}

struct Attested {
    _dir: TempDir,
    out: PathBuf,
    report: PathBuf,
    log: Booted,
}

fn boot_and_attest(variant: &str, key: &Path, tpm: bool) -> Attested {
    let dir = tempdir();
    let out = attested_image(key, variant).build(dir.path());
    let log = boot(
        &out,
        &Boot {
            tpm,
            ..Boot::default()
        },
    );
    assert_eq!(log.value("attest-rc"), "0", "{}", log.dump());
    log.assert_clean_poweroff();
    let bytes = data_file(&out, "/report.bin")
        .unwrap_or_else(|| panic!("no report on /data\n{}", log.dump()));
    let report = dir.path().join("report.bin");
    std::fs::write(&report, bytes).unwrap_or_default();
    Attested {
        _dir: dir,
        out,
        report,
        log,
    }
}

fn enroll(a: &Attested) -> PathBuf {
    let ak = a.report.with_extension("ak");
    let r = attest(&[
        "enroll",
        &a.report.display().to_string(),
        "-o",
        &ak.display().to_string(),
    ]);
    assert!(r.ok, "enroll: {}{}", r.stdout, r.stderr);
    ak
}

fn verify(
    report: &Path,
    manifest_of: &Path,
    nonce: &str,
    ak: Option<&Path>,
    extra: &[&str],
) -> CmdResult {
    let (r, m) = (
        report.display().to_string(),
        manifest_of.display().to_string(),
    );
    let mut args = vec!["verify", &r, "--manifest", &m, "--nonce", nonce];
    let ak_s = ak.map(|a| a.display().to_string());
    if let Some(a) = &ak_s {
        args.extend(["--ak", a.as_str()]);
    }
    args.extend(extra);
    attest(&args)
}

fn assert_fails(r: &CmdResult, reason: &str) {
    assert!(
        !r.ok,
        "verification must fail ({reason}):\n{}{}",
        r.stdout, r.stderr
    );
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(all.contains(reason), "expected {reason:?} in:\n{all}");
    assert!(!all.lines().any(|l| l.starts_with("ATTESTED:")), "{all}");
}

#[test]
fn boot_attest_verify_and_attacks() {
    let keys = tempdir();
    let key = keygen(keys.path(), "k");
    let a = boot_and_attest("one", &key, true);
    a.log.line("measure: TPM at /dev/tpmrm0");
    let ak = enroll(&a);

    // The real thing passes.
    let r = verify(&a.report, &a.out, NONCE, Some(&ak), &[]);
    assert!(r.ok, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("ATTESTED: attested 1.0.0 on board qemu-virt"),
        "{}",
        r.stdout
    );

    // Stale nonce.
    assert_fails(
        &verify(
            &a.report,
            &a.out,
            "00000000000000000000000000000000",
            Some(&ak),
            &[],
        ),
        "nonce",
    );
    // No pinned AK: default is reject.
    assert_fails(
        &verify(&a.report, &a.out, NONCE, None, &[]),
        "AK not pinned",
    );

    // Another image (different service table) booted on another device:
    // its report against our manifest names the PCR and the event.
    let b = boot_and_attest("two", &key, true);
    let ak_b = enroll(&b);
    let r = verify(&b.report, &a.out, NONCE, Some(&ak_b), &[]);
    assert_fails(&r, "PCR 9 differs");
    assert!(
        format!("{}{}", r.stdout, r.stderr).contains("service-table"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    // A rebuilt image whose root filesystem differs but whose service table
    // does not: the manifest and the verity root hash give it away.
    let c = boot_and_attest("tampered-rootfs", &key, true);
    let ak_c = enroll(&c);
    let r = verify(&c.report, &a.out, NONCE, Some(&ak_c), &[]);
    assert_fails(&r, "PCR 8 differs");
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(all.contains("verity-root-hash"), "{all}");
    // ... and the quote is not signed by the AK we pinned for device A.
    assert_fails(&verify(&b.report, &b.out, NONCE, Some(&ak), &[]), "AK");
}

#[test]
fn no_tpm_is_software_only_and_refused() {
    let keys = tempdir();
    let key = keygen(keys.path(), "k");
    let a = boot_and_attest("one", &key, false);
    a.log.line("no TPM; measurements are kept in the log only");
    assert_fails(
        &verify(&a.report, &a.out, NONCE, None, &[]),
        "software-only",
    );
    // Checking the log alone is possible, and says it is not attested.
    // Exit 3: the log is consistent with the reference, but nothing is attested.
    let r = verify(&a.report, &a.out, NONCE, None, &["--log-only"]);
    assert_eq!(r.code, Some(3), "{}{}", r.stdout, r.stderr);
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(
        all.contains("NOT ATTESTED") && all.contains("no TPM quote vouches for it"),
        "{all}"
    );
    assert!(
        all.contains("event log matches the signed reference"),
        "{all}"
    );
    assert!(!all.lines().any(|l| l.starts_with("ATTESTED:")), "{all}");
}
