//! A/B updates through UEFI boot control, end to end in QEMU with edk2
//! (AAVMF from qemu-efi-aarch64), the small kernel's EFI stub started from
//! the ESP, real efivarfs in the guest. The board is `qemu-virt-efi`;
//! each image's variable store (`efi-vars.fd`) persists across its boots
//! like a device's flash. v2 has another kernel command line (a
//! kernel-side update: kernel, initramfs and cmdline travel in the bundle
//! and go into `EFI/azl/b/`).
//!
//! The guest prints every `Boot*` variable (hex) on the console; the host
//! decodes them with `azl_formats::efi`, the same code the device uses.
use azl_e2e::update::*;
use azl_e2e::*;
use azl_formats::bootstate::Slot;
use azl_formats::efi::{self, LoadOption};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// `st TAG` prints `update status --json` as `TAG=` without its `uefi`
/// object and `TAG-uefi=` that object (one console line holds at most
/// 1024 bytes); `vars TAG` prints `TAG-var-NAME=HEX` for each Boot* variable (value
/// after the 4 attribute bytes kept: the host strips them); `committed`
/// waits up to 120 s for the trial's gate to commit.
const PRELUDE: &str = r#"U='/sbin/init update'
st() { j=$($U status --json | tr -d '\n'); echo "$1=${j%%,\"uefi\":*},\"slots\"${j#*,\"slots\"}"; u=${j#*\"uefi\":}; echo "$1-uefi=${u%%,\"slots\"*}"; }
vars() { for f in /sys/firmware/efi/efivars/Boot*-8be4df61-93ca-11d2-aa0d-00e098032b8c; do n=${f##*/}; n=${n%%-*}; echo "$1-var-$n=$(od -An -v -tx1 $f | tr -d ' \n')"; done; }
committed() { i=0; while [ $i -lt 120 ]; do $U status --json | grep -q '"gate":"committed"' && { echo gate=committed; return 0; }; sleep 1; i=$((i+1)); done; echo gate=timeout; }
echo "cmdline=$(cat /proc/cmdline)"
"#;

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

fn board() -> PathBuf {
    workspace().join("boards/qemu-virt-efi.toml")
}

fn image(key: &Path, tag: &str, version: &str, sv: u32, hold_s: u32, extra: &str) -> Image {
    let mut img = Image::new("edge", Kernel::Small)
        .board_file(board())
        .disk(key)
        .release(version, sv)
        .with(&format!(
            "[update]\ncommit = \"local\"\nhold_s = {hold_s}\nready_deadline_s = 60\n{extra}"
        ));
    if tag == "v2" {
        // The kernel-side change: v2's kernel command line differs.
        img.cmdline = "azl.test=v2".into();
    }
    with_agent(img).with_applets(&["od"])
}

struct Fixture {
    dir: TempDir,
    key: PathBuf,
    v1: PathBuf,
    v2: PathBuf,
    v2_crash: PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = fixture_dir(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("update-uefi-fixture"));
        let key = keygen(dir.path(), "fleet.key");
        let d1 = dir.path().join("v1");
        std::fs::create_dir_all(&d1).unwrap_or_default();
        let v1 = image(&key, "v1", "1.0.0", 1, 2, "").build(&d1);
        let v2 = bundle(
            &image(&key, "v2", "2.0.0", 2, 2, ""),
            dir.path(),
            "v2.azb",
            "root-b",
            &[],
        );
        let crash = "\n[[service]]\nname = \"crasher\"\nexec = [\"/bin/sh\", \"-c\", \"sleep 0.2; exit 3\"]\nrestart = \"always\"\nrestart_delay_ms = 50\ncrash_loop = { max_restarts = 3, window_s = 60 }\n";
        let v2_crash = bundle(
            &image(&key, "v2", "2.0.0", 2, 2, crash),
            dir.path(),
            "v2-crash.azb",
            "root-b",
            &[],
        );
        Fixture {
            dir,
            key,
            v1,
            v2,
            v2_crash,
        }
    })
}

/// v2 with a 120 s hold: its trial is still in the gate when the test
/// wedges PID 1 (built on first use: only the watchdog test needs it).
fn v2_slow() -> &'static Path {
    static B: OnceLock<PathBuf> = OnceLock::new();
    B.get_or_init(|| {
        let f = fixture();
        bundle(
            &image(&f.key, "v2", "2.0.0", 2, 120, ""),
            f.dir.path(),
            "v2-slow.azb",
            "root-b",
            &[],
        )
    })
}

/// A fresh device: a copy of v1's output directory (no variable store
/// yet: a factory-fresh board).
fn device(dir: &Path) -> PathBuf {
    let dst = dir.join("dev");
    let r = run_mut(
        std::process::Command::new("cp")
            .args(["-a", "--sparse=always"])
            .arg(&fixture().v1)
            .arg(&dst),
    );
    assert!(r.ok, "cp: {}", r.stderr);
    assert!(!dst.join("efi-vars.fd").exists());
    dst
}

fn step(out: &Path, dir: &Path, n: usize, script: &str, disks: &[PathBuf], tpm: bool) -> Booted {
    control_boot(out, dir, n, &format!("{PRELUDE}{script}"), disks, tpm, "")
}

/// The Boot* variables a guest printed under `tag`.
struct Vars {
    order: Vec<u16>,
    next: Option<u16>,
    entries: Vec<(u16, LoadOption)>,
}

impl Vars {
    fn of(b: &Booted, tag: &str) -> Vars {
        let mut v = Vars {
            order: Vec::new(),
            next: None,
            entries: Vec::new(),
        };
        let marker = format!("{tag}-var-");
        for line in b.serial.lines() {
            let Some(rest) = line.split_once(&marker).map(|(_, r)| r) else {
                continue;
            };
            let Some((name, hex)) = rest.split_once('=') else {
                continue;
            };
            let bytes: Vec<u8> = (0..hex.trim().len() / 2)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0))
                .collect();
            let (attrs, value) = efi::efivarfs_decode(&bytes)
                .unwrap_or_else(|e| panic!("{name}: {e}\n{}", b.dump()));
            match name {
                "BootOrder" => {
                    assert_eq!(attrs, efi::ATTR_NV_BS_RT, "{name}");
                    v.order = efi::decode_boot_order(value).unwrap_or_default();
                }
                "BootNext" => v.next = efi::decode_u16("BootNext", value).ok(),
                n => {
                    if let Some(num) = efi::parse_boot_var_name(n) {
                        if let Ok(o) = LoadOption::decode(value) {
                            v.entries.push((num, o));
                        }
                    }
                }
            }
        }
        assert!(
            !v.order.is_empty(),
            "no BootOrder under {tag}\n{}",
            b.dump()
        );
        v
    }

    /// The entry of `slot` (exactly one) and its load option.
    fn entry(&self, slot: Slot) -> Option<(u16, &LoadOption)> {
        let mut it = self
            .entries
            .iter()
            .filter(|(_, o)| o.description == efi::description(slot));
        let first = it.next().map(|(n, o)| (*n, o));
        assert!(it.next().is_none(), "two entries for {slot}");
        first
    }
}

/// The predicted command line of `slot` for an image whose own
/// command line is `extra`.
fn predicted(slot: Slot, extra: &str) -> String {
    let base = format!("console=ttyAMA0 loglevel=6 panic=-1 {extra}");
    efi::slot_cmdline(slot, &base)
}

/// The `Boot####` name of entry `n`, as `update status` prints it.
fn var(n: u16) -> serde_json::Value {
    efi::boot_var_name(n).into()
}

/// `imagegen inspect --json --key fleet.key.pub DISK`: (exit code, report).
fn inspect_disk(disk: &Path) -> (Option<i32>, serde_json::Value) {
    let key = PathBuf::from(format!("{}.pub", fixture().key.display()));
    let out = std::process::Command::new(imagegen())
        .args(["inspect", "--json", "--key"])
        .arg(&key)
        .arg(disk)
        .output()
        .unwrap_or_else(|e| panic!("imagegen inspect: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("inspect --json: {e}\n{text}"));
    (out.status.code(), v)
}

/// The check `name` of slot `slot` in an inspect report.
fn inspect_check<'a>(r: &'a serde_json::Value, slot: &str, name: &str) -> &'a serde_json::Value {
    r["slots"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["partition"] == slot))
        .and_then(|s| s["checks"].as_array())
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no check {name:?} of {slot}: {r:#}"))
}

/// After a UEFI update the ESP is no build's: inspect checks each slot's
/// files against its own manifest; an edited file of slot b is caught.
fn inspect_after_update(dir: &Path, disk: &Path) {
    let (code, r) = inspect_disk(disk);
    assert_eq!(code, Some(0), "inspect after the update: {r:#}");
    for (slot, letter) in [("root-a", 'a'), ("root-b", 'b')] {
        for (what, file) in [
            ("kernel", "Image"),
            ("initramfs", "initrd"),
            ("load options", "options.bin"),
            ("cmdline", "cmdline.txt"),
        ] {
            let c = inspect_check(&r, slot, &format!("{what} on boot"));
            assert_eq!(
                (&c["ok"], c["detail"].as_str()),
                (
                    &true.into(),
                    Some(format!("/EFI/azl/{letter}/{file} matches the manifest").as_str())
                ),
                "{slot} {what}: {c}"
            );
        }
        let esp = inspect_check(&r, slot, "sha256 boot");
        assert!(
            esp["ok"] == true
                && esp["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("differs from this build's ESP")),
            "{slot}: {esp}"
        );
    }
    // Tamper: one byte of slot b's cmdline.txt on a copy of the disk.
    let bad = dir.join("tampered.img");
    let r = run_mut(
        std::process::Command::new("cp")
            .args(["--sparse=always"])
            .arg(disk)
            .arg(&bad),
    );
    assert!(r.ok, "cp: {}", r.stderr);
    let esp = partition(&bad, "boot");
    let bytes = read_at(&bad, esp.offset, esp.size as usize);
    let needle = format!("{}\n", predicted(Slot::B, "azl.test=v2"));
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())
        .unwrap_or_else(|| panic!("slot b's cmdline.txt not found on the ESP"));
    write_at(&bad, esp.offset + at as u64 + 8, b"X");
    let (code, r) = inspect_disk(&bad);
    assert_eq!(code, Some(1), "a tampered ESP passed: {r:#}");
    let c = inspect_check(&r, "root-b", "cmdline on boot");
    assert_eq!(c["ok"], false, "{c}");
    assert!(
        r["problems"].as_array().is_some_and(|p| p.iter().any(|p| {
            p.as_str().is_some_and(|p| {
                p.starts_with("root-b: cmdline on boot: /EFI/azl/b/cmdline.txt is ")
            })
        })),
        "{r:#}"
    );
    assert_eq!(inspect_check(&r, "root-a", "cmdline on boot")["ok"], true);
}

/// First boot (through the shell's startup.nsh) and install of `bundle`:
/// returns the vars after the install.
fn first_boot_and_install(out: &Path, dir: &Path, bundle: &Path) -> Vars {
    let b = step(out, dir, 0, "st s0\nvars v0", &[], false);
    b.assert_clean_poweroff();
    // The shell started slot a's kernel (its path first on the cmdline),
    // and stage 1 rewrote the shell's entry with the exact load options.
    b.line("azl-edge first boot: creating the boot entry of slot a");
    assert!(
        b.value("cmdline").ends_with(&predicted(Slot::A, "")),
        "{}",
        b.dump()
    );
    let v0 = Vars::of(&b, "v0");
    let (a, opt) = v0
        .entry(Slot::A)
        .unwrap_or_else(|| panic!("no A entry\n{}", b.dump()));
    assert_eq!(
        opt.cmdline().as_deref(),
        Some(predicted(Slot::A, "").as_str())
    );
    assert_eq!(opt.file_path.as_deref(), Some("\\EFI\\azl\\a\\Image"));
    assert_eq!(v0.order.first(), Some(&a), "BootOrder {:?}", v0.order);
    let s0 = json_value(&b, "s0");
    assert_eq!(s0["backend"], "uefi", "{s0}");

    // Boot 1: from the entry now, with exactly the predicted cmdline.
    let stick = raw_disk(dir, "stick.img", &read(bundle));
    let b = step(
        out,
        dir,
        1,
        "$U install $D1; echo install-rc=$?\nst s1\nvars v1",
        &[stick],
        false,
    );
    b.assert_clean_poweroff();
    assert_eq!(b.value("cmdline"), predicted(Slot::A, ""), "{}", b.dump());
    assert_eq!(b.value("install-rc"), "0", "{}", b.dump());
    b.line("root-b's kernel, initramfs and command line written (uefi backend)");
    let s1 = json_value(&b, "s1");
    assert_eq!(s1["trial_pending"], "root-b", "{s1}");
    let v1 = Vars::of(&b, "v1");
    let (nb, ob) = v1
        .entry(Slot::B)
        .unwrap_or_else(|| panic!("no B entry\n{}", b.dump()));
    assert_eq!(
        ob.cmdline().as_deref(),
        Some(predicted(Slot::B, "azl.test=v2").as_str())
    );
    assert_eq!(v1.next, Some(nb), "BootNext names B's entry\n{}", b.dump());
    assert_eq!(v1.order.first(), Some(&a), "A stays first until the commit");
    // update status shows the same variables, each entry named by slot.
    let u = &json_value(&b, "s1-uefi");
    assert_eq!(
        (&u["boot_current"], &u["boot_current_slot"]),
        (&var(a), &"root-a".into()),
        "{s1}"
    );
    assert_eq!(
        (&u["boot_next"], &u["boot_next_slot"]),
        (&var(nb), &"root-b".into()),
        "{s1}"
    );
    assert_eq!(u["boot_order"][0], var(a), "{s1}");
    assert_eq!(
        (&u["entries"]["root-a"], &u["entries"]["root-b"]),
        (&var(a), &var(nb)),
        "{s1}"
    );
    v1
}

#[test]
fn v1_to_v2_trial_by_boot_next_commit_by_boot_order() {
    let dir = tempdir();
    let out = device(dir.path());
    let v1 = first_boot_and_install(&out, dir.path(), &fixture().v2);
    let (a, _) = v1.entry(Slot::A).unwrap_or_else(|| panic!("no A"));
    let (nb, _) = v1.entry(Slot::B).unwrap_or_else(|| panic!("no B"));

    // Boot 2: the firmware honours BootNext once: B's kernel, B's cmdline.
    let b = step(&out, dir.path(), 2, "committed\nst s2\nvars v2", &[], false);
    b.assert_clean_poweroff();
    assert_eq!(
        b.value("cmdline"),
        predicted(Slot::B, "azl.test=v2"),
        "{}",
        b.dump()
    );
    assert_eq!(b.value("gate"), "committed", "{}", b.dump());
    let s2 = json_value(&b, "s2");
    assert_eq!(s2["running"]["slot"], "root-b", "{s2}");
    assert_eq!(s2["committed"], "root-b", "{s2}");
    assert_eq!(s2["floor"], 2, "{s2}");
    let v2 = Vars::of(&b, "v2");
    assert_eq!(v2.next, None, "the firmware consumed BootNext");
    assert_eq!(&v2.order[..2], &[nb, a], "BootOrder after the commit");
    let u = &json_value(&b, "s2-uefi");
    assert_eq!(
        (&u["boot_current"], &u["boot_current_slot"], &u["boot_next"]),
        (&var(nb), &"root-b".into(), &serde_json::Value::Null),
        "{s2}"
    );
    assert_eq!(
        (&u["boot_order"][0], &u["boot_order"][1]),
        (&var(nb), &var(a)),
        "{s2}"
    );

    // Boot 3: BootOrder starts B's kernel, v2 committed.
    let b = step(&out, dir.path(), 3, "st s3\n$U status", &[], false);
    b.assert_clean_poweroff();
    assert_eq!(
        b.value("cmdline"),
        predicted(Slot::B, "azl.test=v2"),
        "{}",
        b.dump()
    );
    let s3 = json_value(&b, "s3");
    assert_eq!(
        (
            &s3["running"]["slot"],
            &s3["running"]["trial"],
            &s3["committed"]
        ),
        (&"root-b".into(), &false.into(), &"root-b".into()),
        "{s3}"
    );
    b.line(&format!(
        "uefi:         BootCurrent {} (root-b), BootNext none",
        efi::boot_var_name(nb)
    ));
    b.line(&format!(
        "entries root-a = {}, root-b = {}",
        efi::boot_var_name(a),
        efi::boot_var_name(nb)
    ));

    // The disk after the update: each slot's ESP files against its manifest.
    inspect_after_update(dir.path(), &out.join("disk.img"));
}

/// A v2 trial from `bundle` that does not commit (the trial boot runs
/// `script`): the next boot is A's kernel with A's cmdline (BootNext was
/// one-shot, BootOrder still starts with A), root-b `bad` with a reason
/// containing `reason`. Returns the trial boot.
fn failed_uefi_trial(bundle: &Path, script: &str, reason: &str) -> Booted {
    let dir = tempdir();
    let out = device(dir.path());
    let v1 = first_boot_and_install(&out, dir.path(), bundle);
    let (a, _) = v1.entry(Slot::A).unwrap_or_else(|| panic!("no A"));
    let (nb, _) = v1.entry(Slot::B).unwrap_or_else(|| panic!("no B"));
    // Boot 2: the trial (B's kernel: the kernel's own line, printed before
    // the gate or a hang can end the boot).
    let t = step(&out, dir.path(), 2, script, &[], false);
    t.line(&format!(
        "Kernel command line: {}",
        predicted(Slot::B, "azl.test=v2")
    ));
    // Boot 3: BootNext was consumed, BootOrder still starts A.
    let b = step(&out, dir.path(), 3, "st s3\nvars v3", &[], false);
    b.assert_clean_poweroff();
    assert_eq!(b.value("cmdline"), predicted(Slot::A, ""), "{}", b.dump());
    let s3 = json_value(&b, "s3");
    assert_eq!(s3["running"]["slot"], "root-a", "{s3}");
    let rb = slot_of(&s3, "root-b");
    assert_eq!(rb["state"], "bad", "{s3}");
    assert!(
        rb["failure"].as_str().is_some_and(|w| w.contains(reason)),
        "want {reason:?} in root-b's failure: {s3}"
    );
    let v3 = Vars::of(&b, "v3");
    assert_eq!(v3.next, None);
    assert_eq!(v3.order.first(), Some(&a), "BootOrder {:?}", v3.order);
    let u = &json_value(&b, "s3-uefi");
    assert_eq!(
        (
            &u["boot_current_slot"],
            &u["boot_next"],
            &u["boot_order"][0]
        ),
        (&"root-a".into(), &serde_json::Value::Null, &var(a)),
        "{s3}"
    );
    assert_eq!(u["entries"]["root-b"], var(nb), "B's entry stays: {s3}");
    t
}

#[test]
fn a_crash_looping_v2_rolls_back_to_a_with_boot_order_unchanged() {
    // The gate fails the trial and reboots (QEMU exits).
    let t = failed_uefi_trial(&fixture().v2_crash, "sleep 60", "service \"crasher\"");
    t.line("update: trial of root-b failed: service \"crasher\"");
}

#[test]
fn a_hung_uefi_trial_is_reset_by_the_watchdog_and_a_boots_from_boot_order() {
    // During the gate's 120 s hold, `initctl watchdog-test` stops PID 1's
    // main loop as a wedged init would: the i6300esb watchdog (10 s)
    // resets the board (QEMU exits, -no-reboot); the trial never commits.
    let t = failed_uefi_trial(
        v2_slow(),
        "sleep 1\n/sbin/initctl watchdog-test; echo wedge-rc=$?\nsleep 100",
        "did not commit",
    );
    t.line("update: gate: every service is ready; holding 120 s");
    assert!(!t.has("passed every gate"), "{}", t.dump());
    assert!(!t.has("reboot: Power down"), "{}", t.dump());
}

#[test]
fn a_bundle_whose_kernel_payload_is_altered_is_refused_and_the_esp_is_untouched() {
    let dir = tempdir();
    let out = device(dir.path());
    let b = step(&out, dir.path(), 0, "st s0", &[], false);
    b.assert_clean_poweroff();
    let disk = out.join("disk.img");
    let esp_before = partition_sha256(&disk, "boot");
    // The kernel payload follows the data: flip its first byte. The header
    // (signed) still names the true digest.
    let mut bytes = read(&fixture().v2);
    let at = sections(&bytes).data.end;
    assert!(at < bytes.len(), "the bundle has no kernel payload");
    bytes[at] ^= 0x01;
    let stick = raw_disk(dir.path(), "bad-kernel.img", &bytes);
    let b = step(
        &out,
        dir.path(),
        1,
        "$U install $D1; echo install-rc=$?\nst s1",
        &[stick],
        false,
    );
    b.assert_clean_poweroff();
    assert_eq!(b.value("install-rc"), "1", "{}", b.dump());
    b.line("bundle kernel payload does not match its sha256");
    let s1 = json_value(&b, "s1");
    assert_eq!(s1["trial_pending"], serde_json::Value::Null, "{s1}");
    assert_eq!(s1["committed"], "root-a", "{s1}");
    assert_eq!(partition_sha256(&disk, "boot"), esp_before, "ESP changed");
}

/// Measured boot under UEFI with swtpm: the firmware measures into PCRs
/// 0-7 (ignored by the verifier) and the EFI stub measures the entry's load
/// options into PCR 9 (one EV_EVENT_TAG event, predicted first in the UEFI
/// build's reference: docs/pcr-map.md), so a boot from the entry attests
/// against the image's own manifest. The first boot, started by the shell
/// (other load options, the image path in front of the command line), does
/// not (docs/update.md).
#[test]
fn a_uefi_boot_from_its_entry_attests_and_the_shell_started_first_boot_does_not() {
    const NONCE: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90";
    let dir = tempdir();
    let out = device(dir.path());
    let quote = format!(
        "/sbin/initctl attest --nonce {NONCE} -o /data/report.bin; echo attest-rc=$?; sync"
    );
    // Boot n runs `before`, then answers the quote; the report is verified
    // against `manifest` (v1's output directory, or the disk: the slot
    // whose manifest the log measured).
    let verify = |n: usize, before: &str, disks: &[PathBuf], manifest: &Path| {
        let b = step(
            &out,
            dir.path(),
            n,
            &format!("{before}\n{quote}"),
            disks,
            true,
        );
        b.assert_clean_poweroff();
        assert_eq!(b.value("attest-rc"), "0", "{}", b.dump());
        let report = dir.path().join(format!("report{n}.bin"));
        let bytes =
            data_file(&out, "/report.bin").unwrap_or_else(|| panic!("no report\n{}", b.dump()));
        std::fs::write(&report, bytes).unwrap_or_default();
        let ak = dir.path().join(format!("report{n}.ak"));
        let (r, a) = (report.display().to_string(), ak.display().to_string());
        let e = attest(&["enroll", &r, "-o", &a]);
        assert!(e.ok, "enroll: {}{}", e.stdout, e.stderr);
        let m = manifest.display().to_string();
        let v = attest(&["verify", &r, "--manifest", &m, "--nonce", NONCE, "--ak", &a]);
        (b, v)
    };
    let v1 = fixture().v1.clone();
    let (_, first) = verify(0, "", &[], &v1);
    assert!(
        !first.ok,
        "the shell-started first boot attested:\n{}",
        first.stdout
    );
    // Boot 1, from the entry: attested; then v2 is installed.
    let stick = raw_disk(dir.path(), "stick.img", &read(&fixture().v2));
    let (b, second) = verify(1, "$U install $D1; echo install-rc=$?", &[stick], &v1);
    assert!(
        second.ok,
        "a boot from the entry: {}{}",
        second.stdout, second.stderr
    );
    assert!(
        second.stdout.contains("ATTESTED: edge 1.0.0"),
        "{}",
        second.stdout
    );
    assert!(
        second.stdout.contains("--  event log: 1 EFI stub event"),
        "{}",
        second.stdout
    );
    assert_eq!(b.value("install-rc"), "0", "{}", b.dump());
    // Boot 2: v2's trial with the TPM: the self-check holds the merged log
    // (the stub's event for B's load options first) and the TPM's PCRs to
    // v2's reference, and commits; the trial boot attests as v2.
    let (t, third) = verify(2, "committed", &[], &out.join("disk.img"));
    assert_eq!(t.value("gate"), "committed", "{}", t.dump());
    t.line(
        "update: gate: measurement self-check passed (8 events; PCRs 8, 9, 11 equal the signed reference and the TPM)",
    );
    assert!(
        third.ok && third.stdout.contains("ATTESTED: edge 2.0.0"),
        "v2's trial boot: {}{}",
        third.stdout,
        third.stderr
    );
}
