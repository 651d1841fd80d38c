//! `imagegen bundle` and `imagegen inspect BUNDLE` through the real binary,
//! against a synthetic kernel package and a fake aarch64 init (as in
//! build_cli.rs) on a board with a small A/B disk layout: the bundle's
//! layout, reproducibility, the per-slot manifests, refusals, inspect's
//! verdict on good and damaged bundles, and the reference tools
//! (`veritysetup verify`, `unsquashfs -l`) on the extracted payloads.
// Test helpers outside #[test] fns (fixtures, builders) fail the test by panicking.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
use azl_formats::bundle::{encode_head, Header, Preamble, SignedHeader, PREAMBLE_LEN};
use azl_formats::envelope::Enveloped;
use azl_formats::manifest::{Hex, Manifest, SignedManifest};
use azl_formats::BootConfig;
use azl_sign::SigningKey;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn put(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

/// ELF64 header of a static aarch64 executable.
fn elf_aarch64() -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = 2;
    h[5] = 1;
    h[6] = 1;
    h[16..18].copy_from_slice(&2u16.to_le_bytes());
    h[18..20].copy_from_slice(&183u16.to_le_bytes());
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

    /// Kernel package, A/B disk board, init, config, and a key pair `k`/`k.pub`.
    fn new() -> Self {
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
        };
        let mut image = vec![0u8; 4096];
        image[56..60].copy_from_slice(b"ARM\x64");
        put(&env.p("kernel/boot/Image"), &image);
        put(&env.p("kernel/lib/modules/6.1.0-test/modules.builtin"), b"");
        put(
            &env.p("boards/abboard.toml"),
            b"[board]\nname = \"abboard\"\narch = \"aarch64\"\n\
              [kernel]\ncmdline = \"console=ttyAMA0\"\nmodules = []\n\
              [qemu]\nmachine = \"virt\"\ncpu = \"cortex-a57\"\nmemory_mb = 256\n\
              [disk]\ntable = \"gpt\"\n\
              [[disk.partition]]\nname = \"boot\"\nkind = \"boot\"\nsize = \"4M\"\n\
              [[disk.partition]]\nname = \"root-a\"\nkind = \"root\"\nsize = \"4M\"\n\
              [[disk.partition]]\nname = \"root-b\"\nkind = \"root\"\nsize = \"4M\"\n\
              [[disk.partition]]\nname = \"bootstate\"\nkind = \"bootstate\"\nsize = \"1M\"\n\
              [[disk.partition]]\nname = \"data\"\nkind = \"data\"\nsize = \"8M\"\n",
        );
        put(&env.p("init"), &elf_aarch64());
        // Enough incompressible bytes for a few hundred data blocks.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let noise: Vec<u8> = (0..600_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        put(&env.p("files/noise"), &noise);
        put(&env.p("files/motd"), b"welcome\n");
        env.config("2.0", 5);
        let o = imagegen(&["keygen", "-o", env.p("k").to_str().unwrap()]);
        assert!(o.status.success(), "{}", text(&o).1);
        env
    }

    fn config(&self, version: &str, security_version: u32) {
        put(
            &self.p("image.toml"),
            format!(
                "[image]\nname = \"t\"\nversion = \"{version}\"\nsecurity_version = {security_version}\n\
                 hostname = \"box\"\nboard = \"abboard\"\ninit = \"init\"\n\
                 [kernel]\npath = \"kernel\"\n\
                 [[file]]\nsrc = \"files/noise\"\ndst = \"/usr/share/noise\"\n\
                 [[file]]\nsrc = \"files/motd\"\ndst = \"/etc/motd\"\n\
                 [[file]]\nsrc = \"files/motd\"\ndst = \"/usr/bin/app\"\nmode = \"0755\"\n\
                 [[service]]\nname = \"app\"\nexec = [\"/usr/bin/app\"]\n"
            )
            .as_bytes(),
        );
    }

    fn cmd(&self, sub: &str, extra: &[&str], vars: &[(&str, &str)]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_imagegen"));
        c.arg(sub)
            .arg("--config")
            .arg(self.p("image.toml"))
            .arg("--boards-dir")
            .arg(self.p("boards"))
            .args(extra)
            .env_remove("SOURCE_DATE_EPOCH")
            .env_remove("AZL_INIT");
        for (k, v) in vars {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    /// `imagegen bundle --key k -o OUT EXTRA…`, which must succeed.
    fn bundle(&self, out: &str, extra: &[&str]) -> PathBuf {
        let path = self.p(out);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut args = vec!["--key", self.p("k").to_str().unwrap().to_owned().leak()];
        args.extend_from_slice(&["-o", path.to_str().unwrap().to_owned().leak()]);
        args.extend_from_slice(extra);
        ok(&self.cmd("bundle", &args, &[]));
        path
    }

    fn inspect(&self, bundle: &Path, extra: &[&str]) -> Output {
        let mut args = vec!["inspect", bundle.to_str().unwrap()];
        args.extend_from_slice(extra);
        imagegen(&args)
    }
}

fn imagegen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imagegen"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn ok(o: &Output) -> String {
    let (out, err) = text(o);
    assert!(o.status.success(), "imagegen failed:\n{out}{err}");
    out
}

fn sha256(b: &[u8]) -> [u8; 32] {
    ring::digest::digest(&ring::digest::SHA256, b)
        .as_ref()
        .try_into()
        .unwrap()
}

/// A bundle split into its sections.
struct Parts {
    bytes: Vec<u8>,
    section: Vec<u8>,
    signed_header: SignedHeader,
    header: Header,
    manifest: Manifest,
    tree_at: usize,
    data_at: usize,
}

fn parts(path: &Path) -> Parts {
    let bytes = std::fs::read(path).unwrap();
    let p = Preamble::decode(&bytes).unwrap();
    let m_end = PREAMBLE_LEN + p.manifest_len as usize;
    let h_end = m_end + p.header_len as usize;
    let section = bytes[PREAMBLE_LEN..m_end].to_vec();
    let manifest = SignedManifest::from_bytes(&section)
        .unwrap()
        .manifest()
        .unwrap();
    let signed_header = SignedHeader::from_bytes(&bytes[m_end..h_end]).unwrap();
    let header = Header::from_bytes(&signed_header.header).unwrap();
    let tree_at = h_end;
    let data_at = tree_at + manifest.rootfs.verity.hash_size as usize;
    assert_eq!(bytes.len(), data_at + manifest.rootfs.data_size as usize);
    Parts {
        bytes,
        section,
        signed_header,
        header,
        manifest,
        tree_at,
        data_at,
    }
}

#[test]
fn bundle_for_root_b_by_default_and_inspect_passes() {
    let env = Env::new();
    let path = env.p("pub/update.azb");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let key = env.p("k");
    let o = env.cmd(
        "bundle",
        &[
            "--key",
            key.to_str().unwrap(),
            "-o",
            path.to_str().unwrap(),
            "--json",
        ],
        &[],
    );
    let summary: Value = serde_json::from_str(&ok(&o)).unwrap();
    let b = parts(&path);
    let m = &b.manifest;
    assert_eq!(m.rootfs.partition.as_str(), "root-b");
    assert_eq!(summary["slot"], "root-b");
    assert_eq!(summary["version"], "2.0");
    assert_eq!(summary["security_version"], 5);
    assert_eq!(summary["min_from_security_version"], Value::Null);
    assert_eq!(summary["size"], b.bytes.len() as u64);
    assert_eq!(summary["sha256"], Hex(&sha256(&b.bytes)).to_string());
    assert_eq!(summary["slot_size"], 4 << 20);
    assert_eq!(summary["payloads"][0]["kind"], "hash-tree");
    assert_eq!(summary["payloads"][0]["size"], m.rootfs.verity.hash_size);
    assert_eq!(summary["payloads"][1]["kind"], "root-data");
    assert_eq!(summary["payloads"][1]["size"], m.rootfs.data_size);
    let public = std::fs::read(env.p("k.pub")).unwrap();
    assert_eq!(
        summary["key_id"],
        Hex(&azl_sign::key_id(&public)).to_string()
    );
    // Header: names this manifest and the two payloads' digests.
    assert_eq!(b.header.manifest_sha256, sha256(&b.section));
    assert_eq!(
        b.header.payloads[0].sha256,
        sha256(&b.bytes[b.tree_at..b.data_at])
    );
    assert_eq!(b.header.payloads[1].sha256, sha256(&b.bytes[b.data_at..]));
    assert_eq!(
        azl_formats::signature::check(&b.signed_header.header, &b.signed_header.signature, &public),
        Ok(())
    );

    // Human summary.
    let o = env.cmd(
        "bundle",
        &[
            "--key",
            key.to_str().unwrap(),
            "-o",
            env.p("pub/again.azb").to_str().unwrap(),
            "--min-from-security-version",
            "3",
        ],
        &[],
    );
    let s = ok(&o);
    assert!(s.starts_with("bundle t 2.0 for slot root-b in "), "{s}");
    assert!(
        s.contains("security   version 5, installs over 3 or later"),
        "{s}"
    );
    assert!(
        s.contains(&format!(
            "sha256     {}",
            Hex(&sha256(&std::fs::read(env.p("pub/again.azb")).unwrap()))
        )),
        "{s}"
    );
    assert_eq!(
        parts(&env.p("pub/again.azb"))
            .header
            .min_from_security_version,
        Some(3)
    );

    // inspect with --key, in text and JSON: every check passes.
    let pubkey = env.p("k.pub");
    let o = env.inspect(&path, &["--key", pubkey.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    for want in [
        "update bundle ",
        "target slot     root-b",
        "ok    manifest signature",
        "ok    header signature",
        "ok    layout",
        "ok    hash tree: matches the signed root hash",
        "ok    data blocks: all ",
        "result: OK",
    ] {
        assert!(out.contains(want), "{want:?} missing:\n{out}");
    }
    let o = env.inspect(&path, &["--key", pubkey.to_str().unwrap(), "--json"]);
    let j: Value = serde_json::from_str(&text(&o).0).unwrap();
    assert_eq!(j["ok"], true);
    assert_eq!(j["bundle"]["slot"], "root-b");
    assert_eq!(j["bundle"]["sha256"], summary["sha256"]);
    assert_eq!(
        j["bundle"]["header"]["payloads"][1]["offset"],
        b.data_at as u64
    );
    assert_eq!(j["manifests"][0]["rootfs"]["partition"], "root-b");
    // Without --key: KEY.pub next to the bundle is found by its key id.
    std::fs::copy(&pubkey, env.p("pub/k.pub")).unwrap();
    assert_eq!(env.inspect(&path, &[]).status.code(), Some(0));
    // A key that is not the signer's: the manifest check fails.
    ok(&imagegen(&[
        "keygen",
        "-o",
        env.p("other").to_str().unwrap(),
    ]));
    let o = env.inspect(&path, &["--key", env.p("other.pub").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).0.contains("bundle: manifest signature: "),
        "{}",
        text(&o).0
    );
}

#[test]
fn bundles_are_reproducible() {
    let env = Env::new();
    let a = std::fs::read(env.bundle("one/u.azb", &[])).unwrap();
    let b = std::fs::read(env.bundle("two/elsewhere.azb", &[])).unwrap();
    assert!(a == b, "same inputs, different bundle bytes");
    let o = env.cmd(
        "bundle",
        &[
            "--key",
            env.p("k").to_str().unwrap(),
            "-o",
            env.p("three.azb").to_str().unwrap(),
        ],
        &[("SOURCE_DATE_EPOCH", "1700000000")],
    );
    ok(&o);
    assert!(std::fs::read(env.p("three.azb")).unwrap() != a);
}

/// root-a and root-b bundles of one build differ exactly where the slot is
/// named: partition, verity salt/uuid (derived from the slot name), the
/// root hash and tree that follow from them, the slot digests, the
/// reference PCRs (the measured manifest identity names the slot), and the
/// boot config's root slot (in the squashfs and the initramfs). The
/// root-a bundle's manifest is the one `imagegen build` writes.
#[test]
fn root_a_and_root_b_manifests_differ_only_by_slot() {
    let env = Env::new();
    let a = parts(&env.bundle("a.azb", &["--slot", "root-a"]));
    let b = parts(&env.bundle("b.azb", &["--slot", "root-b"]));
    let (ma, mb) = (&a.manifest, &b.manifest);
    assert_eq!(ma.rootfs.partition.as_str(), "root-a");
    assert_eq!(mb.rootfs.partition.as_str(), "root-b");
    assert_ne!(ma.rootfs.verity.salt, mb.rootfs.verity.salt);
    assert_ne!(ma.rootfs.verity.uuid, mb.rootfs.verity.uuid);
    assert_ne!(ma.rootfs.verity.root_hash, mb.rootfs.verity.root_hash);
    assert_ne!(ma.reference, mb.reference);
    // The squashfs differs only in the boot config's root slot (each
    // slot's boot.cfg names the slot it is built for); same everything else.
    let (cfg_a, list_a) = squashfs_boot_config(&env, "a", &a);
    let (cfg_b, list_b) = squashfs_boot_config(&env, "b", &b);
    assert_eq!(list_a, list_b);
    assert_eq!(cfg_a.root.as_ref().unwrap().partition, "root-a");
    assert_eq!(cfg_b.root.as_ref().unwrap().partition, "root-b");
    let mut cfg_same = cfg_b.clone();
    cfg_same.root.as_mut().unwrap().partition = "root-a".into();
    assert_eq!(cfg_same, cfg_a);
    let mut same = mb.clone();
    same.rootfs.partition = ma.rootfs.partition.clone();
    same.rootfs.verity.salt = ma.rootfs.verity.salt.clone();
    same.rootfs.verity.uuid = ma.rootfs.verity.uuid;
    same.rootfs.verity.root_hash = ma.rootfs.verity.root_hash;
    same.reference = ma.reference.clone();
    // The SBOM lists the root's boot.cfg, which names the slot.
    same.sbom_sha256 = ma.sbom_sha256;
    // The boot config names the slot, and the initramfs (hence the boot
    // partition) carries a copy of it.
    same.initramfs = ma.initramfs.clone();
    for (p, q) in same.partitions.iter_mut().zip(&ma.partitions) {
        if p.name.starts_with("root-") || p.name == "boot" {
            p.sha256 = q.sha256;
        }
    }
    assert_eq!(&same, ma);
    let digest = |m: &Manifest, n: &str| m.partitions.iter().find(|p| p.name == n).unwrap().sha256;
    assert!(digest(ma, "root-a").is_some() && digest(ma, "root-b").is_none());
    assert!(digest(mb, "root-b").is_some() && digest(mb, "root-a").is_none());

    // `imagegen build` fills root-a with exactly the root-a bundle's slot.
    let out = env.p("out");
    ok(&env.cmd(
        "build",
        &[
            "--key",
            env.p("k").to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        &[],
    ));
    assert!(std::fs::read(out.join("manifest.bin")).unwrap() == a.section);
}

/// The boot config in a bundle's squashfs (`unsquashfs -cat`, the
/// reference tool) and the squashfs listing.
fn squashfs_boot_config(env: &Env, name: &str, b: &Parts) -> (BootConfig, String) {
    let data = env.p(&format!("{name}-data.img"));
    std::fs::write(&data, &b.bytes[b.data_at..]).unwrap();
    let run = |args: &[&str]| {
        let o = Command::new("unsquashfs")
            .args(args)
            .arg(&data)
            .args(if args[0] == "-cat" {
                vec!["etc/azl-edge/boot.cfg"]
            } else {
                vec![]
            })
            .output()
            .expect("unsquashfs (scripts/setup.sh installs it)");
        assert!(o.status.success(), "unsquashfs: {}", text(&o).1);
        o.stdout
    };
    let cfg = BootConfig::from_bytes(&run(&["-cat"])).unwrap();
    let list = String::from_utf8(run(&["-l"])).unwrap();
    (cfg, list)
}

#[test]
fn refusals_name_the_problem() {
    let env = Env::new();
    let key = env.p("k");
    let out = env.p("x.azb");
    let run = |extra: &[&str]| {
        let mut args = vec!["-o", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        let o = env.cmd("bundle", &args, &[]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o).1);
        text(&o).1
    };
    let e = run(&["--key", key.to_str().unwrap(), "--slot", "data"]);
    assert!(
        e.contains("\"data\" is not a root slot of board abboard's disk layout (root slots: root-a, root-b)"),
        "{e}"
    );
    let e = run(&["--key", key.to_str().unwrap(), "--slot", "root-c"]);
    assert!(e.contains("\"root-c\" is not a root slot"), "{e}");
    let e = run(&[]);
    assert!(
        e.contains("a bundle needs a signing key: pass --key KEY"),
        "{e}"
    );
    let e = run(&["--insecure-unsigned"]);
    assert!(
        e.contains("bundles are always signed: --insecure-unsigned is refused"),
        "{e}"
    );
    let e = run(&["--key", key.to_str().unwrap(), "--insecure-unsigned"]);
    assert!(e.contains("bundles are always signed"), "{e}");
    let e = run(&["--key", env.p("nokey").to_str().unwrap()]);
    assert!(e.contains("nokey"), "{e}");
    assert!(!out.exists(), "nothing is written on a refusal");
    // An image without a disk has no slot to bundle.
    let cfg = std::fs::read_to_string(env.p("image.toml")).unwrap();
    put(
        &env.p("image.toml"),
        cfg.replace("[image]\n", "[image]\nroot = \"initramfs\"\n")
            .as_bytes(),
    );
    let e = run(&["--key", key.to_str().unwrap()]);
    assert!(
        e.contains("a bundle carries a root slot, but this image has no disk image"),
        "{e}"
    );
}

/// Write `bytes` as a new bundle file next to the good one.
fn variant(env: &Env, name: &str, bytes: &[u8]) -> PathBuf {
    let p = env.p(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn inspect_fails_damaged_bundles_by_name() {
    let env = Env::new();
    let good = env.bundle("good.azb", &[]);
    let b = parts(&good);
    let pubkey = env.p("k.pub");
    let fails = |path: &Path, wants: &[&str]| {
        let o = env.inspect(path, &["--key", pubkey.to_str().unwrap()]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{out}{err}");
        assert!(out.contains("result: FAILED"), "{out}");
        for w in wants {
            assert!(out.contains(w), "{w:?} missing:\n{out}");
        }
    };

    // One flipped data byte: its block, and the payload digest.
    let mut d = b.bytes.clone();
    let block = 37;
    d[b.data_at + block * 4096 + 100] ^= 0x01;
    fails(
        &variant(&env, "data.azb", &d),
        &[
            "bundle: sha256 root-data: bundle root-data payload does not match its sha256",
            &format!("bundle: data blocks: 1 of {} data blocks do not match the signed verity tree: block {block} (slot offset {})", b.manifest.rootfs.verity.data_blocks, block * 4096),
        ],
    );
    // One flipped tree byte (first hash block after the superblock).
    let mut t = b.bytes.clone();
    t[b.tree_at + 4096 + 5] ^= 0x80;
    fails(
        &variant(&env, "tree.azb", &t),
        &[
            "bundle: sha256 hash-tree: bundle hash-tree payload does not match its sha256",
            "bundle: hash tree: bundle hash tree: ",
        ],
    );
    // Truncated: in the data, in the tree, in the header; and trailing bytes.
    fails(
        &variant(&env, "cut.azb", &b.bytes[..b.bytes.len() - 1000]),
        &[&format!(
            "bundle: length: bundle is truncated in its root-data: {} of {} bytes",
            b.manifest.rootfs.data_size - 1000,
            b.manifest.rootfs.data_size
        )],
    );
    fails(
        &variant(&env, "cut2.azb", &b.bytes[..b.tree_at + 10]),
        &["bundle is truncated in its hash-tree: 10 of "],
    );
    fails(
        &variant(&env, "cut3.azb", &b.bytes[..b.tree_at - 10]),
        &["bundle is truncated in its header: "],
    );
    fails(
        &variant(&env, "long.azb", &[b.bytes.as_slice(), b"x"].concat()),
        &["bundle has 1 bytes after its last payload"],
    );
    // The header re-signed by another key.
    ok(&imagegen(&[
        "keygen",
        "-o",
        env.p("other").to_str().unwrap(),
    ]));
    let other = SigningKey::load(&env.p("other")).unwrap();
    let forged = SignedHeader {
        signature: other.sign(&b.signed_header.header),
        header: b.signed_header.header.clone(),
    };
    let mut h = encode_head(&b.section, &forged).unwrap();
    h.extend_from_slice(&b.bytes[b.tree_at..]);
    fails(
        &variant(&env, "header.azb", &h),
        &[&format!(
            "bundle: header signature: bundle header signed by key {} but the manifest's key is {}",
            Hex(&other.key_id()),
            Hex(&azl_sign::key_id(&std::fs::read(&pubkey).unwrap()))
        )],
    );
    // A header for another manifest (a root-a bundle's header on root-b's manifest).
    let a = parts(&env.bundle("a.azb", &["--slot", "root-a"]));
    let mut mixed = encode_head(&b.section, &a.signed_header).unwrap();
    mixed.extend_from_slice(&b.bytes[b.tree_at..]);
    fails(
        &variant(&env, "mixed.azb", &mixed),
        &["bundle: layout: bundle header was signed for a different manifest"],
    );
    // Not readable at all: exit 2.
    let o = env.inspect(&env.p("missing.azb"), &[]);
    assert_eq!(o.status.code(), Some(2));
}

/// The payloads as files: veritysetup verifies the data against the tree
/// with the manifest's root hash; unsquashfs lists the image's files.
#[test]
fn reference_tools_accept_the_payloads() {
    let env = Env::new();
    let b = parts(&env.bundle("u.azb", &[]));
    let data = env.p("data.img");
    let tree = env.p("tree.img");
    std::fs::write(&data, &b.bytes[b.data_at..]).unwrap();
    std::fs::write(&tree, &b.bytes[b.tree_at..b.data_at]).unwrap();
    let root = Hex(&b.manifest.rootfs.verity.root_hash).to_string();
    let verify = |data: &Path| {
        Command::new("veritysetup")
            .arg("verify")
            .arg(data)
            .arg(&tree)
            .arg(&root)
            .arg("--hash-offset=0")
            .output()
            .expect("veritysetup (scripts/setup.sh installs it)")
    };
    let o = verify(&data);
    assert!(
        o.status.success(),
        "veritysetup verify: {}{}",
        text(&o).0,
        text(&o).1
    );
    // …and refuses a flipped data byte.
    let mut bad = b.bytes[b.data_at..].to_vec();
    bad[5000] ^= 1;
    let bad_path = env.p("bad.img");
    std::fs::write(&bad_path, &bad).unwrap();
    assert!(!verify(&bad_path).status.success());

    let o = Command::new("unsquashfs")
        .arg("-l")
        .arg(&data)
        .output()
        .expect("unsquashfs (scripts/setup.sh installs it)");
    let (out, err) = text(&o);
    assert!(o.status.success(), "unsquashfs: {err}");
    for f in [
        "squashfs-root/sbin/init",
        "squashfs-root/etc/motd",
        "squashfs-root/usr/share/noise",
        "squashfs-root/etc/azl-edge/services.tbl",
    ] {
        assert!(
            out.lines().any(|l| l == f),
            "unsquashfs -l lacks {f}\n{out}"
        );
    }
}

/// A disk after an update, composed on the host: `imagegen build` of
/// 1.0 (security version 5) fills root-a and the boot partition; the
/// 2.0 (security version 6) root-b bundle's slot image is written into
/// root-b the way `update install` lays it out (data at 0, hash area at
/// its offset, manifest region at the end). One kernel and initramfs
/// (1.0's) serve both slots (initramfs-select).
fn updated_disk(env: &Env) -> (PathBuf, Parts) {
    env.config("1.0", 5);
    let out = env.p("upd");
    ok(&env.cmd(
        "build",
        &[
            "--key",
            env.p("k").to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        &[],
    ));
    env.config("2.0", 6);
    let b = parts(&env.bundle("v2.azb", &["--slot", "root-b"]));
    let disk = out.join("disk.img");
    let o = imagegen(&["inspect", disk.to_str().unwrap(), "--json"]);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let rb = report["disk"]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "root-b")
        .unwrap()
        .clone();
    let (off, size) = (rb["offset"].as_u64().unwrap(), rb["size"].as_u64().unwrap());
    let mut bytes = std::fs::read(&disk).unwrap();
    let at = |o: u64| usize::try_from(o).unwrap();
    let data = &b.bytes[b.data_at..];
    bytes[at(off)..at(off) + data.len()].copy_from_slice(data);
    let hash_at = at(off + b.manifest.rootfs.verity.hash_offset);
    let tree = &b.bytes[b.tree_at..b.data_at];
    bytes[hash_at..hash_at + tree.len()].copy_from_slice(tree);
    let region = azl_formats::manifest::region_of(&b.section).unwrap();
    let reg_at = at(off + size) - region.len();
    bytes[reg_at..reg_at + region.len()].copy_from_slice(&region);
    std::fs::write(&disk, bytes).unwrap();
    (out, b)
}

/// Each slot against its own manifest: root-a (1.0) owns the boot
/// partition and the output directory; root-b (2.0, from the bundle) is
/// checked for its own layout, verity area and digest, and is not held to
/// a boot partition or output files that were never its build. Damage to
/// the boot partition or root-b is still found.
#[test]
fn inspect_reports_both_slots_of_an_updated_disk() {
    let env = Env::new();
    let (out, b) = updated_disk(&env);
    let disk = out.join("disk.img");
    let key = env.p("k.pub");
    let k = key.to_str().unwrap();
    for target in [&disk, &out] {
        let o = imagegen(&["inspect", target.to_str().unwrap(), "--key", k, "--json"]);
        let (stdout, stderr) = text(&o);
        assert!(
            o.status.success(),
            "inspect {}:\n{stdout}{stderr}",
            target.display()
        );
        let r: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(r["ok"], true, "{stdout}");
        let slot = |n: &str| {
            r["slots"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["partition"] == n)
                .unwrap()
                .clone()
        };
        let names = |s: &Value| -> Vec<String> {
            s["checks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    assert_eq!(c["ok"], true, "{c}");
                    c["name"].as_str().unwrap().to_string()
                })
                .collect()
        };
        let (a, rb) = (names(&slot("root-a")), names(&slot("root-b")));
        for n in [
            "describes this slot",
            "slot layout",
            "sha256 root-a",
            "sha256 boot",
            "initramfs on boot",
        ] {
            assert!(a.contains(&n.to_string()), "root-a lacks {n}: {a:?}");
        }
        for n in [
            "describes this slot",
            "slot layout",
            "sha256 root-b",
            "boot partition",
        ] {
            assert!(rb.contains(&n.to_string()), "root-b lacks {n}: {rb:?}");
        }
        assert!(
            !rb.iter()
                .any(|n| n.contains("on boot") || n.ends_with(" file")),
            "{rb:?}"
        );
        let m = |n: &str| {
            r["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["slot"] == n)
                .unwrap_or_else(|| panic!("no manifest for {n}: {stdout}"))
                .clone()
        };
        assert_eq!(m("root-a")["image_version"], "1.0", "{stdout}");
        assert_eq!(m("root-a")["security_version"], 5);
        assert_eq!(m("root-b")["image_version"], "2.0");
        assert_eq!(m("root-b")["security_version"], 6);
        assert_eq!(
            m("root-b")["rootfs"]["verity"]["root_hash"],
            Hex(&b.manifest.rootfs.verity.root_hash).to_string()
        );
        if target == &out {
            assert!(a.contains(&"initramfs.cpio.gz file".to_string()), "{a:?}");
        }
    }
    let o = imagegen(&["inspect", disk.to_str().unwrap(), "--key", k]);
    let t = ok(&o);
    assert!(
        t.contains("boot partition: shared: its kernel and initramfs are root-a's build"),
        "{t}"
    );

    // A flipped byte in root-b's data is root-b's failure only.
    let mut bytes = std::fs::read(&disk).unwrap();
    let off = 9437184 + 1000; // root-b's offset in abboard's layout
    bytes[off] ^= 1;
    let bad = env.p("bad-b.img");
    std::fs::write(&bad, &bytes).unwrap();
    let o = imagegen(&["inspect", bad.to_str().unwrap(), "--key", k]);
    let (t, _) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("- root-b: sha256 root-b: mismatch"), "{t}");
    assert!(!t.contains("- root-a:"), "{t}");
    // A boot partition that is neither slot's build fails both.
    let mut bytes = std::fs::read(&disk).unwrap();
    let boot = 1048576 + 4096 * 10;
    bytes[boot] ^= 0xff;
    let bad = env.p("bad-boot.img");
    std::fs::write(&bad, &bytes).unwrap();
    let o = imagegen(&["inspect", bad.to_str().unwrap(), "--key", k]);
    let (t, _) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("- root-a: sha256 boot: mismatch"), "{t}");
    assert!(t.contains("- root-b: sha256 boot: mismatch"), "{t}");
}
