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

/// `vars TAG` prints `TAG-var-NAME=HEX` for each Boot* variable (value
/// after the 4 attribute bytes kept: the host strips them); `committed`
/// waits up to 120 s for the trial's gate to commit.
const PRELUDE: &str = r#"U='/sbin/init update'
st() { echo "$1=$($U status --json | tr -d '\n')"; }
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

fn image(key: &Path, tag: &str, version: &str, sv: u32, extra: &str) -> Image {
    let mut img = Image::new("edge", Kernel::Small)
        .board_file(board())
        .disk(key)
        .release(version, sv)
        .with(&format!(
            "[update]\ncommit = \"local\"\nhold_s = 2\nready_deadline_s = 60\n{extra}"
        ));
    if tag == "v2" {
        // The kernel-side change: v2's kernel command line differs.
        img.cmdline = "azl.test=v2".into();
    }
    with_agent(img).with_applets(&["od"])
}

struct Fixture {
    _dir: TempDir,
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
        let v1 = image(&key, "v1", "1.0.0", 1, "").build(&d1);
        let v2 = bundle(
            &image(&key, "v2", "2.0.0", 2, ""),
            dir.path(),
            "v2.azb",
            "root-b",
            &[],
        );
        let crash = "\n[[service]]\nname = \"crasher\"\nexec = [\"/bin/sh\", \"-c\", \"sleep 0.2; exit 3\"]\nrestart = \"always\"\nrestart_delay_ms = 50\ncrash_loop = { max_restarts = 3, window_s = 60 }\n";
        let v2_crash = bundle(
            &image(&key, "v2", "2.0.0", 2, crash),
            dir.path(),
            "v2-crash.azb",
            "root-b",
            &[],
        );
        Fixture {
            _dir: dir,
            v1,
            v2,
            v2_crash,
        }
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

    // Boot 3: BootOrder starts B's kernel, v2 committed.
    let b = step(&out, dir.path(), 3, "st s3", &[], false);
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
}

#[test]
fn a_crash_looping_v2_rolls_back_to_a_with_boot_order_unchanged() {
    let dir = tempdir();
    let out = device(dir.path());
    let v1 = first_boot_and_install(&out, dir.path(), &fixture().v2_crash);
    let (a, _) = v1.entry(Slot::A).unwrap_or_else(|| panic!("no A"));
    // Boot 2: the trial; the gate fails it and reboots (QEMU exits).
    let t = step(&out, dir.path(), 2, "sleep 60", &[], false);
    // The kernel's own line: the gate may fail the trial before the agent
    // prints anything.
    t.line(&format!(
        "Kernel command line: {}",
        predicted(Slot::B, "azl.test=v2")
    ));
    t.line("update: trial of root-b failed: service \"crasher\"");
    // Boot 3: BootNext was consumed, BootOrder still starts A.
    let b = step(&out, dir.path(), 3, "st s3\nvars v3", &[], false);
    b.assert_clean_poweroff();
    assert_eq!(b.value("cmdline"), predicted(Slot::A, ""), "{}", b.dump());
    let s3 = json_value(&b, "s3");
    assert_eq!(s3["running"]["slot"], "root-a", "{s3}");
    assert_eq!(slot_of(&s3, "root-b")["state"], "bad", "{s3}");
    let v3 = Vars::of(&b, "v3");
    assert_eq!(v3.next, None);
    assert_eq!(v3.order.first(), Some(&a), "BootOrder {:?}", v3.order);
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
/// 0-7 (ignored by the verifier); nothing else lands in init's PCRs 8, 9
/// and 11 (the EFI stub's `initrd=` loader does not measure the initrd),
/// so a boot from the entry attests against the image's own manifest. The
/// first boot, started by the shell with the image path in front of the
/// command line, does not (documented in docs/update.md).
#[test]
#[ignore = "fails today, kept as the spec: under UEFI the 6.1 EFI stub extends PCR 9 with an EV_EVENT_TAG (0x6) event that the verifier refuses as an unknown type and the reference values do not predict (docs/update.md, UEFI, Measured boot)"]
fn a_uefi_boot_from_its_entry_attests_and_the_shell_started_first_boot_does_not() {
    const NONCE: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90";
    let dir = tempdir();
    let out = device(dir.path());
    let quote = format!(
        "/sbin/initctl attest --nonce {NONCE} -o /data/report.bin; echo attest-rc=$?; sync"
    );
    let verify = |n: usize| {
        let b = step(&out, dir.path(), n, &quote, &[], true);
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
        let m = fixture().v1.display().to_string();
        attest(&["verify", &r, "--manifest", &m, "--nonce", NONCE, "--ak", &a])
    };
    let first = verify(0);
    assert!(
        !first.ok,
        "the shell-started first boot attested:\n{}",
        first.stdout
    );
    let second = verify(1);
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
}
