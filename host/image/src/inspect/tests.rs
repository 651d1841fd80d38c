//! Inspect tests on a small but complete disk written by `azl_disk`:
//! boot (FAT), root-a (a real squashfs + verity tree + signed manifest),
//! root-b (empty), bootstate, data (ext4).
use super::*;
use azl_formats::manifest::{FileDigest, Partition, RootFs};
use azl_imagepath::ImagePath;
use azl_sign::testing::test_key;
use azl_sign::SigningKey;
use azl_squashfs::{self as squashfs, Entry, FileData, Node};
use azl_verity::{self as verity, VerityParams};
use serde_json::Value;
use std::io::Write;

use azl_disk::{self as disk, Layout, PartSpec, TableKind, MIB};

const DATA_SIZE: u64 = 8 * MIB;

fn put(f: &mut File, offset: u64, bytes: &[u8]) {
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(bytes).unwrap();
}

fn flip(path: &Path, offset: u64) {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.read_exact(&mut b).unwrap();
    put(&mut f, offset, &[b[0] ^ 0x01]);
}

fn entry(path: &str, node: Node) -> Entry {
    Entry {
        path: ImagePath::parse(path).unwrap(),
        node,
        mode: 0o755,
        uid: 0,
        gid: 0,
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    disk: PathBuf,
    manifest: Manifest,
    /// Offset of each partition, by name.
    offsets: BTreeMap<String, u64>,
    /// Absolute offset of root-a's manifest region.
    region: u64,
}

const KERNEL: &[u8] = b"pretend this is an arm64 Image";
const INITRAMFS: &[u8] = b"pretend this is a gzipped cpio";

/// Build OUT/disk.img (plus kernel, initramfs.cpio.gz, services.tbl) with
/// the real disk writer: boot (FAT), root-a (squashfs ‖ verity ‖ … ‖
/// manifest), root-b (empty), bootstate, data (ext4). root-a's manifest is
/// signed with `key` (`None`: unsigned); `edit` may change the manifest
/// before it is signed.
fn fixture(key: Option<&SigningKey>, edit: impl FnOnce(&mut Manifest)) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let services = ServiceTable::default().to_bytes().unwrap();
    let entries = [
        entry("/etc", Node::Dir),
        entry("/etc/azl-edge", Node::Dir),
        entry(
            "/etc/azl-edge/services.tbl",
            Node::File(FileData::Bytes(services.clone())),
        ),
        entry("/usr/bin/app", Node::File(FileData::Bytes(vec![7; 10_000]))),
        entry(
            "/usr/lib/libx.so",
            Node::File(FileData::Bytes(vec![9; 500])),
        ),
        entry(
            "/init",
            Node::File(FileData::Bytes(b"#!/bin/sh\n".to_vec())),
        ),
    ];
    let sq = squashfs::build(&entries, &squashfs::Options::default()).unwrap();
    let params = VerityParams::new(vec![0x5a; 32], [0x11; 16]);
    let tree = verity::build(&sq.bytes, &params).unwrap();
    let hash_offset = sq.bytes.len() as u64;
    let mut root = sq.bytes.clone();
    root.extend_from_slice(&tree.superblock_and_tree);

    let spec = |name: &str, kind, size| PartSpec {
        name: name.into(),
        kind,
        size,
    };
    let layout = Layout {
        table: TableKind::Gpt,
        partitions: vec![
            spec("boot", PartitionKind::Boot, MIB),
            spec("root-a", PartitionKind::Root, MIB),
            spec("root-b", PartitionKind::Root, MIB),
            spec("bootstate", PartitionKind::BootState, MIB),
            spec("data", PartitionKind::Data, DATA_SIZE),
        ],
    };
    let placed = disk::place(&layout, b"inspect-test").unwrap();
    let boot = disk::fat_image(
        MIB,
        "BOOT",
        0x1234_5678,
        &[
            ("/Image".to_string(), KERNEL.to_vec()),
            ("/initramfs.cpio.gz".to_string(), INITRAMFS.to_vec()),
        ],
    )
    .unwrap();
    let data = disk::ext4_image(DATA_SIZE, [0x22; 16], 1, "data").unwrap();

    let mut partitions: Vec<Partition> = placed
        .partitions
        .iter()
        .map(|p| p.manifest_entry().unwrap())
        .collect();
    partitions[0].sha256 = Some(sha256(&boot));
    partitions[1].sha256 = Some(sha256(&root));
    let mut manifest = Manifest {
        board: "qemu-virt".into(),
        image_name: "demo".into(),
        image_version: "1.2.3".into(),
        security_version: 0,
        build_epoch: 1_700_000_000,
        disk_guid: placed.disk_guid,
        partitions: partitions.clone(),
        kernel: FileDigest {
            size: KERNEL.len() as u64,
            sha256: sha256(KERNEL),
        },
        initramfs: FileDigest {
            size: INITRAMFS.len() as u64,
            sha256: sha256(INITRAMFS),
        },
        cmdline: "console=ttyAMA0 quiet".into(),
        rootfs: RootFs {
            partition: azl_formats::name("root-a").unwrap(),
            data_size: sq.bytes.len() as u64,
            verity: tree.to_manifest(&params, hash_offset).unwrap(),
        },
        service_table_sha256: sha256(&services),
        lock_sha256: None,
        sbom_sha256: [0; 32],
        reference: None,
    };
    edit(&mut manifest);
    let region = azl_sign::sign(&manifest, key).unwrap().to_region().unwrap();
    let mut root_a = vec![0u8; MIB as usize];
    root_a[..root.len()].copy_from_slice(&root);
    root_a[(MIB - MANIFEST_REGION) as usize..].copy_from_slice(&region);

    let disk_path = dir.path().join(DISK_IMAGE);
    disk::write_disk(
        &disk_path,
        &placed,
        &[("boot", &boot), ("root-a", &root_a), ("data", &data)],
    )
    .unwrap();
    let offsets: BTreeMap<String, u64> = partitions
        .iter()
        .map(|p| (p.name.to_string(), p.offset))
        .collect();
    std::fs::write(dir.path().join(output::KERNEL), KERNEL).unwrap();
    std::fs::write(dir.path().join(output::INITRAMFS), INITRAMFS).unwrap();
    std::fs::write(dir.path().join(output::SERVICES), &services).unwrap();
    Fixture {
        dir,
        region: offsets["root-a"] + MIB - MANIFEST_REGION,
        disk: disk_path,
        manifest,
        offsets,
    }
}

fn run(path: &Path, key: Option<&Path>) -> Report {
    inspect(&InspectOptions {
        path: path.to_path_buf(),
        key: key.map(Path::to_path_buf),
    })
    .unwrap()
}

fn write_pub(dir: &Path, name: &str, key: &SigningKey) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, key.public_key()).unwrap();
    p
}

fn json(r: &Report) -> Value {
    serde_json::to_value(r).unwrap()
}

fn check<'a>(r: &'a Report, slot: &str, name: &str) -> &'a Check {
    r.slots
        .iter()
        .find(|s| s.partition == slot)
        .and_then(|s| s.checks.iter().find(|c| c.name == name))
        .unwrap_or_else(|| panic!("no check {name:?} in {slot}: {r:#?}"))
}

#[test]
fn signed_disk_report() {
    let key = test_key();
    let fx = fixture(Some(&key), |_| {});
    let elsewhere = tempfile::tempdir().unwrap();
    let pubkey = write_pub(elsewhere.path(), "k.pub", &key);
    let r = run(&fx.disk, Some(&pubkey));
    assert!(r.ok(), "{r}");
    assert_eq!(r.exit_code(), 0);

    let text = r.to_string();
    let id = Hex(&key.key_id()).to_string();
    let v = &fx.manifest.rootfs.verity;
    for want in [
        format!(
            "signed by key {id}, verified (public key {})",
            pubkey.display()
        ),
        "qemu-virt".to_string(),
        "demo 1.2.3".to_string(),
        "1700000000 (2023-11-14 22:13:20 UTC)".to_string(),
        "console=ttyAMA0 quiet".to_string(),
        Hex(&v.root_hash).to_string(),
        Hex(&fx.manifest.kernel.sha256).to_string(),
        Hex(&fx.manifest.service_table_sha256).to_string(),
        "/usr".to_string(),
        "bootstate".to_string(),
        "none (region is empty)".to_string(),
        "ok    sha256 boot".to_string(),
        "ok    partition table: matches the GPT (5 partitions)".to_string(),
        "result: OK".to_string(),
    ] {
        assert!(text.contains(&want), "missing {want:?} in\n{text}");
    }
    assert!(!text.contains("FAIL"), "{text}");

    let j = json(&r);
    assert_eq!(j["ok"], true);
    let m = &j["manifests"][0];
    assert_eq!(j["manifests"].as_array().unwrap().len(), 1, "{j:#}");
    assert_eq!(m["slot"], "root-a");
    assert_eq!(m["signature"]["status"], "verified");
    assert_eq!(m["signature"]["key_id"], id);
    assert_eq!(m["board"], "qemu-virt");
    assert_eq!(m["image_version"], "1.2.3");
    assert_eq!(m["build_epoch"], 1_700_000_000u64);
    assert_eq!(m["kernel"]["size"], KERNEL.len());
    assert_eq!(m["rootfs"]["partition"], "root-a");
    assert_eq!(m["rootfs"]["data_size"], fx.manifest.rootfs.data_size);
    assert_eq!(
        m["rootfs"]["verity"]["root_hash"],
        Hex(&v.root_hash).to_string()
    );
    assert_eq!(m["rootfs"]["verity"]["salt"], "5a".repeat(32));
    assert_eq!(
        m["rootfs"]["verity"]["uuid"],
        "11111111-1111-1111-1111-111111111111"
    );
    assert_eq!(m["rootfs"]["verity"]["hash_offset"], v.hash_offset);
    assert_eq!(m["rootfs"]["verity"]["hash_size"], v.hash_size);
    assert_eq!(m["partitions"][1]["name"], "root-a");
    assert_eq!(m["partitions"][1]["kind"], "root");
    assert_eq!(m["partitions"][4]["sha256"], Value::Null);
    assert_eq!(
        m["partitions"][0]["type_guid"],
        "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
    );

    let d = &j["disk"];
    assert_eq!(d["size"], 14 * MIB);
    assert_eq!(d["disk_guid"], guid_string(&fx.manifest.disk_guid));
    let names: Vec<&str> = d["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["boot", "root-a", "root-b", "bootstate", "data"]);
    let hash_end = v.hash_offset + v.hash_size;
    let root_a = &d["partitions"][1];
    assert_eq!(root_a["offset"], 2 * MIB);
    assert_eq!(root_a["kind"], "root");
    assert_eq!(root_a["free"], MIB - MANIFEST_REGION - hash_end);
    assert_eq!(root_a["number"], 2);
    // FAT and ext4 report their free space; bootstate has none to report.
    let (boot, data) = (&d["partitions"][0], &d["partitions"][4]);
    assert_eq!(boot["kind"], "boot");
    let boot_free = boot["free"].as_u64().unwrap();
    assert!(boot_free > MIB / 2 && boot_free < MIB, "{boot}");
    let data_free = data["free"].as_u64().unwrap();
    assert!(data_free > DATA_SIZE / 4 && data_free < DATA_SIZE, "{data}");
    assert_eq!(d["partitions"][3]["free"], Value::Null);
    assert_eq!(d["partitions"][3]["kind"], "bootstate");

    let slots = j["slots"].as_array().unwrap();
    assert_eq!(slots.len(), 2);
    assert_eq!(slots[0]["state"], "manifest");
    assert_eq!(slots[1]["state"], "empty");
    let layout = &slots[0]["layout"];
    assert_eq!(layout["verity_size"], v.hash_size);
    assert_eq!(layout["manifest_region"], MANIFEST_REGION);
    let sq = &slots[0]["squashfs"];
    assert_eq!(sq["compression"], "zstd");
    assert!(sq["bytes_used"].as_u64().unwrap() <= fx.manifest.rootfs.data_size);
    let dirs: Vec<(String, u64, u64)> = sq["dirs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["path"].as_str().unwrap().to_string(),
                d["entries"].as_u64().unwrap(),
                d["bytes"].as_u64().unwrap(),
            )
        })
        .collect();
    let services_len = ServiceTable::default().to_bytes().unwrap().len() as u64;
    assert_eq!(
        dirs,
        [
            ("/etc".to_string(), 3, services_len),
            ("/init".to_string(), 1, 10),
            ("/usr".to_string(), 5, 10_500),
        ]
    );
    let checks = slots[0]["checks"].as_array().unwrap();
    assert!(checks.iter().all(|c| c["ok"] == true), "{checks:#?}");
    for name in ["kernel on boot", "initramfs on boot"] {
        assert!(
            checks.iter().any(|c| c["name"] == name),
            "{name}: {checks:#?}"
        );
    }
    // Every recorded digest was checked (boot, root-a).
    assert_eq!(
        checks
            .iter()
            .filter(|c| c["name"].as_str().unwrap().starts_with("sha256 "))
            .count(),
        2
    );
}

#[test]
fn key_is_found_next_to_the_image() {
    let key = test_key();
    let fx = fixture(Some(&key), |_| {});
    let status = |r: &Report| r.manifests[0].signature.status;

    // Nothing next to it: signed, not verified, not a failure.
    let r = run(&fx.disk, None);
    assert_eq!(status(&r), SigStatus::Unverified);
    assert!(r.ok(), "{r}");
    assert!(r.to_string().contains("NOT verified"));

    // KEY.pub from keygen next to the image, matched by key id.
    let other = test_key();
    write_pub(fx.dir.path(), "aaa-other.pub", &other);
    let p = write_pub(fx.dir.path(), "build.key.pub", &key);
    let r = run(&fx.disk, None);
    assert_eq!(status(&r), SigStatus::Verified);
    assert_eq!(
        r.manifests[0].signature.key_file,
        Some(p.display().to_string())
    );

    // OUT/manifest.pub is the device's key: another key there is invalid.
    write_pub(fx.dir.path(), PUBLIC_KEY, &other);
    let r = run(&fx.disk, None);
    assert_eq!(status(&r), SigStatus::Invalid);
    assert!(!r.ok());
    let text = r.to_string();
    assert!(text.contains("INVALID: key id mismatch"), "{text}");
    assert_eq!(r.exit_code(), 1);

    write_pub(fx.dir.path(), PUBLIC_KEY, &key);
    let r = run(fx.dir.path(), None);
    assert_eq!(status(&r), SigStatus::Verified);
    assert!(r.ok(), "{r}");
}

#[test]
fn wrong_key_is_invalid() {
    let (key, other) = (test_key(), test_key());
    let fx = fixture(Some(&key), |_| {});
    let p = write_pub(fx.dir.path(), "other.pub", &other);
    let r = run(&fx.disk, Some(&p));
    assert!(!r.ok());
    let sig = &r.manifests[0].signature;
    assert_eq!(sig.status, SigStatus::Invalid);
    assert_eq!(sig.key_id, Some(Hex(&key.key_id()).to_string()));
    assert!(
        r.problems.iter().any(|p| p.contains("key id mismatch")),
        "{:?}",
        r.problems
    );
    // A --key that is not a raw public key is an error, not a report.
    let bad = fx.dir.path().join("bad.pub");
    std::fs::write(&bad, b"short").unwrap();
    let err = inspect(&InspectOptions {
        path: fx.disk.clone(),
        key: Some(bad),
    })
    .unwrap_err();
    assert!(err.to_string().contains("5 bytes"), "{err}");
}

#[test]
fn unsigned_is_insecure() {
    let key = test_key();
    let fx = fixture(None, |_| {});
    let r = run(&fx.disk, None);
    assert!(r.ok(), "{r}");
    assert_eq!(r.manifests[0].signature.status, SigStatus::Unsigned);
    assert!(r.to_string().contains("UNSIGNED (insecure)"));
    assert_eq!(json(&r)["manifests"][0]["signature"]["status"], "unsigned");
    // Asking for a signature check of an unsigned image fails.
    let p = write_pub(fx.dir.path(), "k.pub", &key);
    let r = run(&fx.disk, Some(&p));
    assert!(!r.ok());
    assert!(
        r.problems.iter().any(|p| p.contains("UNSIGNED")),
        "{:?}",
        r.problems
    );
}

#[test]
fn edited_manifest_is_bad_signature() {
    let key = test_key();
    let fx = fixture(Some(&key), |_| {});
    let p = write_pub(fx.dir.path(), PUBLIC_KEY, &key);
    // Change the board name in place: still decodes, no longer verifies.
    let region = std::fs::read(&fx.disk).unwrap()
        [fx.region as usize..(fx.region + MANIFEST_REGION) as usize]
        .to_vec();
    let at = region.windows(9).position(|w| w == b"qemu-virt").unwrap() as u64;
    flip(&fx.disk, fx.region + at);
    let r = run(&fx.disk, Some(&p));
    assert!(!r.ok());
    assert_eq!(r.exit_code(), 1);
    let m = &r.manifests[0];
    assert_eq!(m.board, "pemu-virt");
    assert_eq!(m.signature.status, SigStatus::Invalid);
    let text = r.to_string();
    assert!(
        text.contains("INVALID: bad signature (manifest altered or forged)"),
        "{text}"
    );
    assert!(text.contains("result: FAILED"), "{text}");
    let j = json(&r);
    assert_eq!(j["ok"], false);
    assert_eq!(j["manifests"][0]["signature"]["status"], "invalid");

    // The byte the e2e test flips (inside the manifest's length prefix or
    // header): whatever it breaks, the slot is reported invalid.
    let fx = fixture(Some(&key), |_| {});
    flip(&fx.disk, fx.region + 40);
    let r = run(&fx.disk, Some(&p));
    assert!(!r.ok());
    assert!(r.to_string().contains("INVALID"), "{r}");
}

#[test]
fn edited_partitions_are_sha256_mismatches() {
    let key = test_key();
    let fx = fixture(Some(&key), |_| {});
    let p = write_pub(fx.dir.path(), PUBLIC_KEY, &key);
    flip(&fx.disk, fx.offsets["boot"] + 1000);
    // Last byte of root-a's hash tree.
    let v = &fx.manifest.rootfs.verity;
    flip(
        &fx.disk,
        fx.offsets["root-a"] + v.hash_offset + v.hash_size - 1,
    );
    // Bytes no digest covers: root-a's free space, root-b, bootstate.
    flip(&fx.disk, fx.region - 1);
    flip(&fx.disk, fx.offsets["root-b"] + 5);
    flip(&fx.disk, fx.offsets["bootstate"] + 5);
    let r = run(&fx.disk, Some(&p));
    assert!(!r.ok());
    assert_eq!(r.exit_code(), 1);
    assert_eq!(r.manifests[0].signature.status, SigStatus::Verified);
    assert!(!check(&r, "root-a", "sha256 boot").ok);
    assert!(!check(&r, "root-a", "sha256 root-a").ok);
    assert!(check(&r, "root-a", "sha256 boot")
        .detail
        .starts_with("mismatch: manifest says"));
    assert_eq!(r.problems.len(), 2, "{:?}", r.problems);
    let text = r.to_string();
    assert!(text.contains("FAIL  sha256 boot: mismatch"), "{text}");
    assert!(text.contains("result: FAILED (2 problems)"), "{text}");
}

#[test]
fn gpt_and_manifest_must_agree() {
    let key = test_key();
    let fx = fixture(Some(&key), |m| {
        m.partitions[4].size = 2 * MIB;
        assert_eq!(m.partitions[4].name.as_str(), "data");
        m.partitions[3].part_guid = [0xee; 16];
        m.disk_guid = [0; 16];
    });
    let p = write_pub(fx.dir.path(), PUBLIC_KEY, &key);
    let r = run(&fx.disk, Some(&p));
    assert!(!r.ok());
    let c = check(&r, "root-a", "partition table");
    assert!(!c.ok);
    for want in [
        "disk GUID 00000000-0000-0000-0000-000000000000 vs GPT ",
        "#4 partition GUID eeeeeeee-eeee-eeee-eeee-eeeeeeeeeeee vs GPT ",
        "#5 size 2097152 vs GPT 8388608",
    ] {
        assert!(c.detail.contains(want), "{want:?} not in {}", c.detail);
    }
}

#[test]
fn slot_layout_and_own_partition() {
    let key = test_key();
    // A manifest for root-b in root-a, with a verity area running into
    // the manifest region.
    let fx = fixture(Some(&key), |m| {
        m.rootfs.partition = azl_formats::name("root-b").unwrap();
        m.rootfs.verity.hash_size = MIB;
    });
    let r = run(&fx.disk, None);
    assert!(!r.ok());
    assert!(!check(&r, "root-a", "describes this slot").ok);
    let c = check(&r, "root-a", "slot layout");
    assert!(!c.ok);
    assert!(
        c.detail.contains("past the manifest region"),
        "{}",
        c.detail
    );
}

#[test]
fn output_dir_files_against_the_manifest() {
    let key = test_key();
    let fx = fixture(Some(&key), |_| {});
    write_pub(fx.dir.path(), PUBLIC_KEY, &key);
    let r = run(fx.dir.path(), None);
    assert!(r.ok(), "{r}");
    assert!(check(&r, "root-a", "kernel file").ok);
    assert!(check(&r, "root-a", "services.tbl file").ok);
    assert_eq!(r.files.len(), 3);
    std::fs::write(fx.dir.path().join(output::KERNEL), b"another kernel").unwrap();
    let r = run(fx.dir.path(), None);
    assert!(!r.ok());
    assert!(!check(&r, "root-a", "kernel file").ok);
    assert!(check(&r, "root-a", "initramfs.cpio.gz file").ok);
}

#[test]
fn output_dir_without_disk() {
    let dir = tempfile::tempdir().unwrap();
    let err = inspect(&InspectOptions {
        path: dir.path().to_path_buf(),
        key: None,
    })
    .unwrap_err();
    assert!(matches!(err, InspectError::NotAnImage { .. }), "{err}");

    let cfg = BootConfig {
        image_name: "demo".into(),
        image_version: "1.0".into(),
        board: "qemu-virt".into(),
        hostname: "edge".into(),
        modules: vec!["/lib/modules/a.ko".into()],
        watchdog: None,
        emergency_reboot_delay_s: 10,
        shutdown_grace_ms: 5000,
        root: None,
    };
    let d = dir.path();
    std::fs::write(d.join(output::KERNEL), KERNEL).unwrap();
    std::fs::write(d.join(output::INITRAMFS), INITRAMFS).unwrap();
    std::fs::write(d.join(output::BOOT_CFG), cfg.to_bytes().unwrap()).unwrap();
    std::fs::write(
        d.join(output::SERVICES),
        ServiceTable::default().to_bytes().unwrap(),
    )
    .unwrap();
    let r = run(d, None);
    assert!(r.ok(), "{r}");
    assert!(r.disk.is_none() && r.slots.is_empty());
    let names: Vec<&str> = r.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        ["kernel", "initramfs.cpio.gz", "boot.cfg", "services.tbl"]
    );
    assert_eq!(r.files[0].size, KERNEL.len() as u64);
    assert_eq!(r.files[0].sha256, Hex(&sha256(KERNEL)).to_string());
    let text = r.to_string();
    for want in [
        "kernel",
        "demo 1.0",
        "initramfs only",
        "(none)",
        "result: OK",
    ] {
        assert!(text.contains(want), "{want:?} not in\n{text}");
    }
    assert_eq!(json(&r)["boot_config"]["modules"], 1);

    std::fs::write(d.join(output::SERVICES), b"garbage").unwrap();
    let r = run(d, None);
    assert!(!r.ok());
    assert!(r.problems[0].contains("services.tbl"), "{:?}", r.problems);
}

#[test]
fn damaged_images() {
    let key = test_key();
    // A manifest length running past the region: root-a is invalid.
    let fx = fixture(Some(&key), |_| {});
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&fx.disk)
        .unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(&u32::MAX.to_le_bytes(), fx.region).unwrap();
    let r = run(&fx.disk, None);
    assert!(!r.ok());
    assert_eq!(r.slots[0].state, SlotState::Invalid);
    assert!(r.manifests.is_empty());
    let text = r.to_string();
    assert!(
        text.contains("manifest        INVALID: manifest length"),
        "{text}"
    );
    assert!(text.contains("no root slot holds a manifest"), "{text}");

    // A truncated disk has no backup GPT: nothing to inspect.
    f.set_len(fx.offsets["root-b"] + 4096).unwrap();
    let err = inspect(&InspectOptions {
        path: fx.disk.clone(),
        key: None,
    })
    .unwrap_err();
    assert!(matches!(err, InspectError::Gpt(_)), "{err}");
}

#[test]
fn helpers() {
    assert_eq!(text::human(1536), "1.5 KiB");
    assert_eq!(text::human(100), "100 B");
    assert_eq!(text::human(3 * MIB), "3.0 MiB");
    assert_eq!(text::utc(0), "1970-01-01 00:00:00 UTC");
    assert_eq!(text::utc(951_782_400), "2000-02-29 00:00:00 UTC");
    assert_eq!(text::utc(4_102_444_799), "2099-12-31 23:59:59 UTC");
}

#[test]
fn boot_files_against_the_manifest() {
    let key = test_key();
    // The manifest names another kernel than the one on the boot partition.
    let fx = fixture(Some(&key), |m| m.kernel.size += 1);
    let r = run(&fx.disk, None);
    assert!(!r.ok());
    let c = check(&r, "root-a", "kernel on boot");
    assert!(!c.ok);
    assert!(
        c.detail.starts_with("/Image is 30 bytes sha256 "),
        "{}",
        c.detail
    );
    assert!(check(&r, "root-a", "initramfs on boot").ok);
    // No FAT at all.
    let fx = fixture(Some(&key), |_| {});
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&fx.disk)
        .unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(&[0; 512], fx.offsets["boot"]).unwrap();
    let r = run(&fx.disk, None);
    let c = check(&r, "root-a", "kernel on boot");
    assert!(
        c.detail.contains("not a readable FAT filesystem"),
        "{}",
        c.detail
    );
}

/// Run `inspect` in a thread; fail (rather than hang) after `secs`.
fn run_within(secs: u64, path: &Path, key: Option<&Path>) -> Result<Report, InspectError> {
    let opts = InspectOptions {
        path: path.to_path_buf(),
        key: key.map(Path::to_path_buf),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(inspect(&opts));
    });
    rx.recv_timeout(std::time::Duration::from_secs(secs))
        .unwrap_or_else(|_| panic!("inspect {} took more than {secs} s", path.display()))
}

/// Regression: an unsigned 64 KiB manifest listing 600 partitions (each a
/// different range, so no digest is reused) made `inspect --key` hash the
/// disk 600 times over. Now nothing the manifest says is acted on before
/// its signature verifies, and without --key nothing is hashed unless its
/// partition table is the GPT's.
#[test]
fn unsigned_manifest_of_600_partitions_is_not_hashed() {
    let key = test_key();
    let fx = fixture(None, |m| {
        let data = m.partitions[4].clone();
        for i in 0..600u64 {
            let mut p = data.clone();
            p.name = azl_formats::name(&format!("p{i}")).unwrap();
            p.offset = 0;
            p.size = data.offset + data.size - 512 * i;
            p.sha256 = Some([0xab; 32]);
            m.partitions.push(p);
        }
    });
    let p = write_pub(fx.dir.path(), "k.pub", &key);
    let t = std::time::Instant::now();
    let r = run_within(60, &fx.disk, Some(&p)).unwrap();
    assert!(
        t.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        t.elapsed()
    );
    assert!(!r.ok());
    assert_eq!(r.exit_code(), EXIT_FAILED);
    let slot = &r.slots[0];
    assert!(slot.checks.is_empty(), "{:?}", slot.checks);
    assert!(
        slot.not_checked
            .as_deref()
            .is_some_and(|w| w.contains("unsigned and --key was given")),
        "{slot:?}"
    );
    assert_eq!(r.manifests[0].partitions.len(), 605);
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("root-a (#2): not checked")),
        "{:?}",
        r.problems
    );
    assert!(r.to_string().contains("NOT RUN: the manifest's content"));

    // Without --key an unsigned manifest is inspected (insecure), but its
    // table is not the GPT's, so nothing is hashed either.
    let t = std::time::Instant::now();
    let r = run_within(60, &fx.disk, None).unwrap();
    assert!(
        t.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        t.elapsed()
    );
    assert!(!check(&r, "root-a", "partition table").ok);
    let c = check(&r, "root-a", "sha256");
    assert!(!c.ok && c.detail.contains("not computed"), "{c:?}");
    assert!(
        !r.slots[0]
            .checks
            .iter()
            .any(|c| c.name.starts_with("sha256 ")),
        "{:?}",
        r.slots[0].checks
    );
}

/// An invalid signature: the manifest is shown, but nothing it says is
/// hashed or compared.
#[test]
fn invalid_signature_is_not_acted_on() {
    let (key, other) = (test_key(), test_key());
    let fx = fixture(Some(&other), |_| {});
    let p = write_pub(fx.dir.path(), "k.pub", &key);
    let r = run(&fx.disk, Some(&p));
    assert_eq!(r.manifests[0].signature.status, SigStatus::Invalid);
    assert!(r.slots[0].checks.is_empty(), "{:?}", r.slots[0].checks);
    assert!(r.slots[0].squashfs.is_none());
    assert!(r.slots[0]
        .not_checked
        .as_deref()
        .is_some_and(|w| w.contains("key id mismatch")));
    assert_eq!(r.exit_code(), EXIT_FAILED);
}

/// Rewrite GPT entry `number`'s name in both copies and re-seal the CRCs,
/// as someone editing the table would.
fn rename_entry(path: &Path, number: usize, name: &str) {
    let mut b = std::fs::read(path).unwrap();
    let last = b.len() / 512 - 1;
    for header in [1usize, last] {
        let h = header * 512;
        let array = u64::from_le_bytes(b[h + 72..h + 80].try_into().unwrap()) as usize * 512;
        let e = array + (number - 1) * 128;
        b[e + 56..e + 128].fill(0);
        for (i, u) in name.encode_utf16().enumerate() {
            b[e + 56 + 2 * i..e + 58 + 2 * i].copy_from_slice(&u.to_le_bytes());
        }
        let crc = azl_formats::gpt::crc32(&b[array..array + 128 * 128]);
        b[h + 88..h + 92].copy_from_slice(&crc.to_le_bytes());
        b[h + 16..h + 20].fill(0);
        let crc = azl_formats::gpt::crc32(&b[h..h + 92]);
        b[h + 16..h + 20].copy_from_slice(&crc.to_le_bytes());
    }
    std::fs::write(path, b).unwrap();
}

/// A second `root-a` entry (an old slot renamed so it boots): reported as
/// a problem and both entries listed, never resolved by a name lookup.
#[test]
fn duplicate_root_a_entry_is_a_problem() {
    let key = test_key();
    let fx = fixture(Some(&key), |_| {});
    let p = write_pub(fx.dir.path(), PUBLIC_KEY, &key);
    rename_entry(&fx.disk, 3, "root-a");
    let r = run(&fx.disk, Some(&p));
    assert!(!r.ok());
    assert_eq!(r.exit_code(), EXIT_FAILED);
    assert!(
        r.problems
            .contains(&"disk: GPT entries 2 and 3 are both named \"root-a\"".to_string()),
        "{:?}",
        r.problems
    );
    let d = r.disk.as_ref().unwrap();
    let named: Vec<u32> = d
        .partitions
        .iter()
        .filter(|p| p.name == "root-a")
        .map(|p| p.number)
        .collect();
    assert_eq!(named, vec![2, 3]);
    // Each slot is its own entry: #2 holds the manifest, #3 is empty.
    let slots: Vec<(u32, SlotState)> = r.slots.iter().map(|s| (s.number, s.state)).collect();
    assert_eq!(slots, vec![(2, SlotState::Manifest), (3, SlotState::Empty)]);
    // And the signed table no longer matches the GPT (entry 3's name).
    let c = check(&r, "root-a", "partition table");
    assert!(
        !c.ok && c.detail.contains("#3 name root-b vs GPT root-a"),
        "{c:?}"
    );
    let j = json(&r);
    assert_eq!(j["disk"]["partitions"][2]["name"], "root-a");
    assert_eq!(j["disk"]["partitions"][2]["number"], 3);
    assert_eq!(j["slots"][1]["number"], 3);
    let text = r.to_string();
    assert!(text.contains("slot root-a (GPT entry #3"), "{text}");
}

/// GPT and signed manifest disagreeing on an offset: a problem, and the
/// digests are not computed over ranges the GPT does not have.
#[test]
fn gpt_offset_mismatch_is_a_problem_and_nothing_is_hashed() {
    let key = test_key();
    let fx = fixture(Some(&key), |m| m.partitions[0].offset += MIB);
    let p = write_pub(fx.dir.path(), PUBLIC_KEY, &key);
    let r = run(&fx.disk, Some(&p));
    assert_eq!(r.exit_code(), EXIT_FAILED);
    let c = check(&r, "root-a", "partition table");
    assert!(!c.ok && c.detail.contains("#1 offset"), "{c:?}");
    assert!(!check(&r, "root-a", "sha256").ok);
    assert!(
        r.problems.iter().any(|p| p.contains("#1 offset")),
        "{:?}",
        r.problems
    );
}

/// A damaged primary GPT: read from the backup as the device would, and
/// reported.
#[test]
fn damaged_primary_gpt_is_read_from_the_backup() {
    let key = test_key();
    let fx = fixture(Some(&key), |_| {});
    let p = write_pub(fx.dir.path(), PUBLIC_KEY, &key);
    flip(&fx.disk, 512 + 8);
    let r = run(&fx.disk, Some(&p));
    assert_eq!(r.disk.as_ref().unwrap().gpt_copy, "backup");
    assert_eq!(r.manifests[0].signature.status, SigStatus::Verified);
    assert!(
        r.problems[0].starts_with("disk: GPT: primary GPT: GPT header at LBA 1: CRC"),
        "{:?}",
        r.problems
    );
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert_eq!(r.exit_code(), EXIT_FAILED);
}

/// A FIFO given as the disk image (directly or as OUT/disk.img) or as an
/// output file is refused at once, not waited on.
#[test]
fn fifos_are_refused_not_waited_on() {
    let fx = fixture(None, |_| {});
    let mkfifo = |p: &Path| {
        let st = std::process::Command::new("mkfifo")
            .arg(p)
            .status()
            .unwrap();
        assert!(st.success());
    };
    let fifo = fx.dir.path().join("fifo.img");
    mkfifo(&fifo);
    let e = run_within(10, &fifo, None).unwrap_err();
    assert!(
        e.to_string().contains("is a FIFO, not a regular file"),
        "{e}"
    );
    std::fs::remove_file(&fx.disk).unwrap();
    mkfifo(&fx.disk);
    let e = run_within(10, fx.dir.path(), None).unwrap_err();
    assert!(e.to_string().contains("disk.img: is a FIFO"), "{e}");
    std::fs::remove_file(&fx.disk).unwrap();
    let kernel = fx.dir.path().join(output::KERNEL);
    std::fs::remove_file(&kernel).unwrap();
    mkfifo(&kernel);
    let r = run_within(10, fx.dir.path(), None).unwrap();
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("is a FIFO, not a regular file")),
        "{:?}",
        r.problems
    );
}
