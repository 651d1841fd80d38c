//! `imagegen build` end to end, through the real binary, against a
//! synthetic kernel package (fake arm64 Image, modules built with the
//! `object` crate, compressed the ways distributions ship them) and a fake
//! aarch64 init. The initramfs is cross-checked with `gzip` and `cpio`.
// Test helpers outside #[test] fns (fixtures, builders) fail the test by panicking.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
use azl_formats::envelope::Enveloped;
use azl_formats::{BootConfig, ServiceTable};
use object::write::Object;
use object::{Architecture, BinaryFormat, Endianness, SectionKind};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const REL: &str = "6.1.0-test";

fn put(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

fn ko(name: &str, depends: &str, arch: Architecture) -> Vec<u8> {
    let mut obj = Object::new(BinaryFormat::Elf, arch, Endianness::Little);
    let s = obj.add_section(Vec::new(), b".modinfo".to_vec(), SectionKind::ReadOnlyData);
    let info = format!("name={name}\0depends={depends}\0vermagic={REL} SMP mod_unload aarch64\0");
    obj.append_section_data(s, info.as_bytes(), 1);
    obj.write().unwrap()
}

fn xz(data: &[u8]) -> Vec<u8> {
    let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// ELF64 header of a static executable for `machine`.
fn elf_exec(machine: u16) -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = 2;
    h[5] = 1;
    h[6] = 1;
    h[16..18].copy_from_slice(&2u16.to_le_bytes());
    h[18..20].copy_from_slice(&machine.to_le_bytes());
    h[20..24].copy_from_slice(&1u32.to_le_bytes());
    h[52..54].copy_from_slice(&64u16.to_le_bytes());
    h[54..56].copy_from_slice(&56u16.to_le_bytes());
    h[58..60].copy_from_slice(&64u16.to_le_bytes());
    h
}

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A kernel package, a board, an init, a config (relative paths inside).
    fn new() -> Self {
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
        };
        let mut image = vec![0u8; 4096];
        image[56..60].copy_from_slice(b"ARM\x64");
        put(&env.p("kernel/boot/Image"), &image);
        let m = env.p(&format!("kernel/lib/modules/{REL}"));
        put(
            &m.join("kernel/drivers/block/virtio_blk.ko.xz"),
            &xz(&ko("virtio_blk", "virtio_ring", Architecture::Aarch64)),
        );
        put(
            &m.join("kernel/drivers/virtio/virtio_ring.ko.zst"),
            &zstd::stream::encode_all(&ko("virtio_ring", "", Architecture::Aarch64)[..], 3)
                .unwrap(),
        );
        put(
            &m.join("kernel/fs/other.ko"),
            &ko("other", "", Architecture::Aarch64),
        );
        put(&m.join("modules.builtin"), b"kernel/fs/ext4/ext4.ko\n");
        put(
            &env.p("boards/testboard.toml"),
            b"[board]\nname = \"testboard\"\narch = \"aarch64\"\n\
              [kernel]\ncmdline = \"console=ttyAMA0\"\nmodules = [\"virtio-blk\", \"ext4\"]\n\
              [watchdog]\ndevice = \"/dev/watchdog\"\ntimeout_s = 7\n\
              [init]\nshutdown_grace_ms = 1234\n\
              [qemu]\nmachine = \"virt\"\ncpu = \"cortex-a57\"\nmemory_mb = 256\n",
        );
        put(&env.p("init"), &elf_exec(183));
        put(&env.p("x86-init"), &elf_exec(62));
        put(&env.p("files/hello"), b"#!/bin/sh\necho hello\n");
        std::fs::set_permissions(env.p("files/hello"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        put(&env.p("files/motd"), b"welcome\n");
        put(
            &env.p("image.toml"),
            b"[image]\nname = \"t\"\nversion = \"2.0\"\nhostname = \"box\"\nboard = \"testboard\"\ninit = \"init\"\n\
              [kernel]\npath = \"kernel\"\ncmdline = \"quiet\"\n\
              [[file]]\nsrc = \"files/hello\"\ndst = \"/usr/bin/hello\"\n\
              [[file]]\nsrc = \"files/motd\"\ndst = \"/etc/motd\"\n\
              [[file]]\ndst = \"/bin/hi\"\nsymlink = \"/usr/bin/hello\"\n\
              [[service]]\nname = \"second\"\nexec = [\"/bin/hi\"]\nafter = [\"first\"]\n\
              [[service]]\nname = \"first\"\nexec = [\"/usr/bin/hello\", \"--x\"]\n",
        );
        env
    }

    fn build(&self, out: &str, extra: &[&str], vars: &[(&str, &str)]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_imagegen"));
        c.arg("build")
            .arg("--config")
            .arg(self.p("image.toml"))
            .arg("--boards-dir")
            .arg(self.p("boards"))
            .arg("-o")
            .arg(self.p(out))
            .args(extra)
            .env_remove("SOURCE_DATE_EPOCH")
            .env_remove("AZL_INIT");
        for (k, v) in vars {
            c.env(k, v);
        }
        c.output().unwrap()
    }
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "imagegen failed:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn listing(initramfs: &Path) -> String {
    let gz = Command::new("gzip")
        .arg("-dc")
        .arg(initramfs)
        .output()
        .unwrap();
    assert!(gz.status.success(), "gzip -dc failed");
    let mut cpio = Command::new("cpio")
        .args(["-itvn", "--quiet"])
        .env("TZ", "UTC")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("cpio is needed (scripts/setup.sh)");
    cpio.stdin.take().unwrap().write_all(&gz.stdout).unwrap();
    let out = cpio.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

fn entry<'a>(listing: &'a str, name: &str) -> Vec<&'a str> {
    listing
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        // Device lines have "major, minor" instead of the size: one more field.
        .find(|f| f.get(if f[0].starts_with('c') { 9 } else { 8 }) == Some(&name))
        .unwrap_or_else(|| panic!("{name} not in:\n{listing}"))
}

#[test]
fn builds_a_complete_output_directory() {
    let env = Env::new();
    let summary = ok(&env.build("out", &[], &[]));
    assert!(
        summary.contains("built t 2.0 for board testboard"),
        "{summary}"
    );
    assert!(
        summary.contains("modules    2: virtio_ring, virtio_blk (1 built into the kernel)"),
        "{summary}"
    );
    assert!(summary.contains("services   first → second"), "{summary}");

    let out = env.p("out");
    assert_eq!(
        std::fs::read(out.join("kernel")).unwrap(),
        std::fs::read(env.p("kernel/boot/Image")).unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(out.join("cmdline")).unwrap(),
        "console=ttyAMA0 quiet\n"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("board.toml")).unwrap(),
        std::fs::read_to_string(env.p("boards/testboard.toml")).unwrap()
    );

    let boot = BootConfig::from_bytes(&std::fs::read(out.join("boot.cfg")).unwrap()).unwrap();
    assert_eq!(
        (boot.image_name.as_str(), boot.image_version.as_str()),
        ("t", "2.0")
    );
    assert_eq!(
        (boot.board.as_str(), boot.hostname.as_str()),
        ("testboard", "box")
    );
    assert_eq!(
        boot.modules,
        [
            format!("/lib/modules/{REL}/kernel/drivers/virtio/virtio_ring.ko"),
            format!("/lib/modules/{REL}/kernel/drivers/block/virtio_blk.ko"),
        ]
    );
    assert_eq!(boot.watchdog.unwrap().timeout_s, 7);
    assert_eq!(
        (boot.emergency_reboot_delay_s, boot.shutdown_grace_ms),
        (10, 1234)
    );
    let table =
        ServiceTable::from_bytes(&std::fs::read(out.join("services.tbl")).unwrap()).unwrap();
    table.validate().unwrap();
    let names: Vec<&str> = table.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["first", "second"]);

    let l = listing(&out.join("initramfs.cpio.gz"));
    for d in [
        "dev",
        "proc",
        "sys",
        "run",
        "tmp",
        "etc",
        "etc/azl-edge",
        "root",
        "data",
        "usr",
        "usr/bin",
    ] {
        assert!(entry(&l, d)[0].starts_with('d'), "{d} is a directory");
    }
    assert_eq!(
        entry(&l, "dev/console")[..6],
        ["crw-------", "1", "0", "0", "5,", "1"]
    );
    assert_eq!(entry(&l, "init")[0], "-rwxr-xr-x");
    assert_eq!(entry(&l, "sbin/initctl")[10], "/init");
    assert_eq!(entry(&l, "usr/bin/hello")[0], "-rwxr-xr-x");
    assert_eq!(entry(&l, "etc/motd")[0], "-rw-r--r--");
    assert_eq!(entry(&l, "etc/hostname")[4], "4");
    for f in [
        "etc/passwd",
        "etc/group",
        "etc/azl-edge/boot.cfg",
        "etc/azl-edge/services.tbl",
    ] {
        entry(&l, f);
    }
    let ko = entry(
        &l,
        &format!("lib/modules/{REL}/kernel/drivers/block/virtio_blk.ko"),
    );
    assert_eq!(ko[0], "-rw-r--r--");
    assert!(
        !l.contains(".ko.xz") && !l.contains(".ko.zst") && !l.contains("other.ko"),
        "{l}"
    );
    // Directories before their contents, everything at mtime 0.
    let names: Vec<&str> = l
        .lines()
        .filter_map(|x| {
            x.split_whitespace()
                .nth(if x.starts_with('c') { 9 } else { 8 })
        })
        .collect();
    for (i, n) in names.iter().enumerate() {
        if let Some((parent, _)) = n.rsplit_once('/') {
            assert!(names[..i].contains(&parent), "{parent} before {n}");
        }
    }
    assert!(l.lines().all(|x| x.contains(" 1970 ")), "{l}");
}

#[test]
fn output_is_deterministic() {
    let env = Env::new();
    ok(&env.build("a", &[], &[]));
    ok(&env.build("b", &[], &[]));
    ok(&env.build("c", &[], &[("SOURCE_DATE_EPOCH", "1700000000")]));
    let read = |d: &str| std::fs::read(env.p(d).join("initramfs.cpio.gz")).unwrap();
    assert_eq!(read("a"), read("b"), "same inputs, same bytes");
    assert_ne!(read("a"), read("c"));
    let l = listing(&env.p("c/initramfs.cpio.gz"));
    assert!(l.lines().all(|x| x.contains("Nov 14  2023")), "{l}");
    let o = env.build("d", &[], &[("SOURCE_DATE_EPOCH", "yesterday")]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("SOURCE_DATE_EPOCH=\"yesterday\""));
}

#[test]
fn command_line_overrides_and_errors() {
    let env = Env::new();
    // --init beats [image] init, and is checked.
    let o = env.build("o", &["--init", env.p("x86-init").to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("is an ELF for x86-64 (e_machine 62), not aarch64 (e_machine 183)"),
        "{err}"
    );

    let o = env.build("o", &["--board", "nosuch"], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("unknown board \"nosuch\"") && err.contains("known boards: testboard"),
        "{err}"
    );

    // A board given as a path, and a kernel dir with a module the board lacks.
    let board = env.p("boards/testboard.toml");
    let text = std::fs::read_to_string(&board)
        .unwrap()
        .replace("\"ext4\"", "\"ext4\", \"nope\"");
    put(
        &env.p("elsewhere/b.toml"),
        text.replace("testboard", "other").as_bytes(),
    );
    let o = env.build(
        "o",
        &["--board", env.p("elsewhere/b.toml").to_str().unwrap()],
        &[],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!(
            "kernel module \"nope\" (listed by board other) is neither in {}",
            env.p("kernel").display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("/lib/modules/{REL}/ nor built in")),
        "{err}"
    );

    let o = env.build("o", &["--kernel", env.p("nokernel").to_str().unwrap()], &[]);
    assert!(String::from_utf8_lossy(&o.stderr)
        .contains("nokernel does not exist (run scripts/kernels.sh"));

    // Config errors carry file and line, and nothing is written.
    let cfg = std::fs::read_to_string(env.p("image.toml")).unwrap();
    put(
        &env.p("image.toml"),
        cfg.replace("\"/bin/hi\"]", "\"/bin/nope\"]").as_bytes(),
    );
    let o = env.build("bad", &[], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    let line = std::fs::read_to_string(env.p("image.toml"))
        .unwrap()
        .lines()
        .position(|l| l.contains("/bin/nope"))
        .unwrap()
        + 1;
    assert!(
        err.starts_with(&format!(
            "imagegen: error: {}:{line}: service \"second\": exec[0] \"/bin/nope\"",
            env.p("image.toml").display()
        )),
        "{err}"
    );
    assert!(!env.p("bad").exists());
}

/// Symlinks planted at every name `imagegen build` writes or removes in
/// OUT are replaced (or removed), never written through. (The predictable
/// temporary names are covered by azl-image's
/// output::tests::planted_symlinks_are_never_written_through, which knows
/// the pid.)
#[test]
fn planted_symlinks_in_out_are_not_followed() {
    let env = Env::new();
    let out = env.p("out");
    std::fs::create_dir(&out).unwrap();
    let outside = env.p("outside");
    std::fs::create_dir(&outside).unwrap();
    let names = [
        "kernel",
        "initramfs.cpio.gz",
        "cmdline",
        "board.toml",
        "boot.cfg",
        "services.tbl",
        "disk.img",
        "manifest.bin",
        "manifest.pub",
    ];
    for n in names {
        put(&outside.join(n), b"precious");
        std::os::unix::fs::symlink(outside.join(n), out.join(n)).unwrap();
    }
    ok(&env.build("out", &[], &[]));
    for n in names {
        assert_eq!(std::fs::read(outside.join(n)).unwrap(), b"precious", "{n}");
        let m = std::fs::symlink_metadata(out.join(n));
        assert!(
            m.as_ref().map_or(true, |m| m.file_type().is_file()),
            "{n} is still a symlink"
        );
    }
    assert!(std::fs::symlink_metadata(out.join("cmdline"))
        .unwrap()
        .is_file());
}
