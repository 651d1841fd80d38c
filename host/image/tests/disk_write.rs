//! A whole disk image built from the repository's qemu-virt board, checked
//! with the reference tools (sgdisk, sfdisk, fsck.vfat, mtools, e2fsck,
//! dumpe2fs; `scripts/setup.sh` installs them), for reproducibility, and
//! for its errors.
// Test helpers outside #[test] fns (builders, tool runners) fail the test by panicking.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
use azl_disk::*;
use azl_formats::manifest::PartitionKind;
use azl_image::board;
use azl_image::config::BoardRef;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

fn spec(name: &str, kind: PartitionKind, size: u64) -> PartSpec {
    PartSpec {
        name: name.into(),
        kind,
        size,
    }
}

fn tool(name: &str) -> PathBuf {
    find_tool(name).unwrap_or_else(|| panic!("{name} not found: run scripts/setup.sh"))
}

/// Run a reference tool; its exit status and stdout + stderr.
fn run(name: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(tool(name))
        .args(args)
        .env("TZ", "UTC")
        .env("LC_ALL", "C")
        .output()
        .unwrap_or_else(|e| panic!("running {name}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn qemu_virt() -> Layout {
    board::resolve(
        &BoardRef::Name("qemu-virt".into()),
        &board::default_boards_dir(),
    )
    .unwrap()
    .disk
    .expect("boards/qemu-virt.toml has a [disk] section")
}

fn pattern(len: usize, salt: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) ^ salt).to_le_bytes()[1])
        .collect()
}

struct Built {
    path: PathBuf,
    placed: Placed,
    boot_files: Vec<(String, Vec<u8>)>,
    root_a: Vec<u8>,
    data_uuid: [u8; 16],
}

fn build(dir: &Path, seed: &[u8], epoch: u32) -> Built {
    let placed = place(&qemu_virt(), seed).unwrap();
    let boot_files = vec![
        ("/EFI/BOOT/BOOTAA64.EFI".to_string(), pattern(70_000, 1)),
        ("/azl/initramfs.cpio.gz".to_string(), pattern(300_001, 2)),
        (
            "/cmdline.txt".to_string(),
            b"console=ttyAMA0 panic=-1\n".to_vec(),
        ),
        ("/empty".to_string(), Vec::new()),
    ];
    let boot_size = placed.partition("boot").unwrap().size;
    let boot = fat_image(boot_size, "boot", 0x1234_abcd, &boot_files).unwrap();
    let data_uuid = fs_uuid(seed, "fs:data");
    let data = ext4_image(
        placed.partition("data").unwrap().size,
        data_uuid,
        epoch,
        "data",
    )
    .unwrap();
    let mut root_a = pattern(3 * MIB as usize + 4096, 3);
    root_a[..4].copy_from_slice(b"hsqs");
    let path = dir.join("disk.img");
    write_disk(
        &path,
        &placed,
        &[("boot", &boot), ("root-a", &root_a), ("data", &data)],
    )
    .unwrap();
    Built {
        path,
        placed,
        boot_files,
        root_a,
        data_uuid,
    }
}

fn read_range(path: &Path, offset: u64, len: u64) -> Vec<u8> {
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::File::open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    let mut buf = vec![0u8; len as usize];
    f.read_exact(&mut buf).unwrap();
    buf
}

fn extract(b: &Built, name: &str, to: &Path) {
    let p = b.placed.partition(name).unwrap();
    std::fs::write(to, read_range(&b.path, p.offset, p.size)).unwrap();
}

fn file_sha256(path: &Path) -> Vec<u8> {
    let mut f = std::fs::File::open(path).unwrap();
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    ctx.finish().as_ref().to_vec()
}

#[test]
fn disk_image_checked_by_reference_tools() {
    let tmp = tempfile::tempdir().unwrap();
    let b = build(tmp.path(), b"test-seed", 1_700_000_000);
    let img = b.path.to_str().unwrap();
    let meta = std::fs::metadata(&b.path).unwrap();
    assert_eq!(meta.len(), b.placed.disk_size);
    {
        use std::os::unix::fs::MetadataExt;
        assert!(meta.blocks() * 512 < meta.len() / 2, "written sparse");
    }

    // sgdisk: the table is consistent.
    let (ok, out) = run("sgdisk", &["-v", img]);
    assert!(ok && out.contains("No problems found"), "{out}");

    // sfdisk: our names, offsets, sizes, GUIDs.
    let (ok, out) = run("sfdisk", &["--json", img]);
    assert!(ok, "{out}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    let t = &j["partitiontable"];
    assert_eq!(t["label"], "gpt");
    assert_eq!(t["sectorsize"], 512);
    let up = |g: &[u8; 16]| guid_string(g).to_uppercase();
    assert_eq!(t["id"], up(&b.placed.disk_guid));
    let parts = t["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), b.placed.partitions.len());
    for (i, (j, p)) in parts.iter().zip(&b.placed.partitions).enumerate() {
        assert_eq!(j["node"], format!("{img}{}", i + 1));
        assert_eq!(j["start"], p.offset / 512, "{}", p.spec.name);
        assert_eq!(j["size"], p.size / 512, "{}", p.spec.name);
        assert_eq!(j["type"], up(&p.type_guid));
        assert_eq!(j["uuid"], up(&p.part_guid));
        assert_eq!(j["name"], p.spec.name.as_str());
    }
    assert_eq!(parts[1]["type"], "B921B045-1DF0-41C3-AF44-4C6F280D3FAE");

    // read_gpt gives back what place() decided.
    let info = read_gpt(&b.path).unwrap();
    assert_eq!(info.disk_guid, b.placed.disk_guid);
    assert_eq!(info.sector_size, 512);
    let want: Vec<GptPartition> = b
        .placed
        .partitions
        .iter()
        .enumerate()
        .map(|(i, p)| GptPartition {
            number: i as u32 + 1,
            name: p.spec.name.clone(),
            type_guid: p.type_guid,
            part_guid: p.part_guid,
            offset: p.offset,
            size: p.size,
        })
        .collect();
    assert_eq!(info.partitions, want);

    // The boot partition: fsck.vfat accepts it, mtools reads our files back.
    let boot = tmp.path().join("boot.img");
    extract(&b, "boot", &boot);
    let boot_s = boot.to_str().unwrap();
    let (ok, out) = run("fsck.vfat", &["-n", "-v", boot_s]);
    assert!(ok, "{out}");
    let (ok, out) = run("minfo", &["-i", boot_s, "::"]);
    assert!(ok, "{out}");
    for want in [
        "serial number: 1234ABCD",
        "disk label=\"BOOT       \"",
        "disk type=\"FAT32   \"",
    ] {
        assert!(out.contains(want), "{want} in {out}");
    }
    let (ok, out) = run("mdir", &["-i", boot_s, "::/EFI/BOOT"]);
    assert!(
        ok && out.contains("BOOTAA64") && out.contains("BOOT"),
        "{out}"
    );
    for (path, want) in &b.boot_files {
        let dst = tmp.path().join("copied");
        let _ = std::fs::remove_file(&dst);
        let (ok, out) = run(
            "mcopy",
            &[
                "-n",
                "-i",
                boot_s,
                &format!("::{path}"),
                dst.to_str().unwrap(),
            ],
        );
        assert!(ok, "{path}: {out}");
        assert!(std::fs::read(&dst).unwrap() == *want, "{path} differs");
    }

    // The smaller FAT types are clean too.
    for (size, ty) in [(16 * MIB, "FAT16   "), (MIB, "FAT12   ")] {
        let img = tmp.path().join("small-fat.img");
        std::fs::write(&img, fat_image(size, "b", 7, &b.boot_files).unwrap()).unwrap();
        let img_s = img.to_str().unwrap();
        let (ok, out) = run("fsck.vfat", &["-n", img_s]);
        assert!(ok, "{size}: {out}");
        let (ok, out) = run("minfo", &["-i", img_s, "::"]);
        assert!(ok && out.contains(&format!("disk type=\"{ty}\"")), "{out}");
    }

    // The data partition: e2fsck accepts it; our UUID and label.
    let data = tmp.path().join("data.img");
    extract(&b, "data", &data);
    let data_s = data.to_str().unwrap();
    let (ok, out) = run("e2fsck", &["-fn", data_s]);
    assert!(ok, "{out}");
    let (ok, out) = run("dumpe2fs", &["-h", data_s]);
    assert!(ok, "{out}");
    let field = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.trim_start_matches(':').trim().to_string())
            .unwrap_or_else(|| panic!("no {k} in {out}"))
    };
    assert_eq!(field("Filesystem UUID"), uuid_string(&b.data_uuid));
    assert_eq!(field("Filesystem volume name"), "data");
    assert_eq!(field("Filesystem created"), "Tue Nov 14 22:13:20 2023");
    assert!(field("Filesystem features").contains("has_journal"));
    let (ok, out) = run("debugfs", &["-R", "stat /", data_s]);
    assert!(ok, "{out}");
    assert!(out.contains("Mode:  0755"), "{out}");
    assert!(out.contains("User:     0   Group:     0"), "{out}");

    // root-a holds our bytes, then zeros; root-b and bootstate are zero.
    let ra = b.placed.partition("root-a").unwrap();
    let got = read_range(&b.path, ra.offset, ra.size);
    assert!(got[..b.root_a.len()] == b.root_a[..]);
    assert!(got[b.root_a.len()..].iter().all(|&x| x == 0));
    for name in ["root-b", "bootstate"] {
        let p = b.placed.partition(name).unwrap();
        assert!(read_range(&b.path, p.offset, p.size)
            .iter()
            .all(|&x| x == 0));
    }
}

#[test]
fn disk_image_reproducible() {
    let (t1, t2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Epoch 0 is the case mke2fs would fill in from the clock.
    let a = build(t1.path(), b"seed", 0);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let b = build(t2.path(), b"seed", 0);
    assert_eq!(
        file_sha256(&a.path),
        file_sha256(&b.path),
        "same inputs, byte-identical disk"
    );
    let t3 = tempfile::tempdir().unwrap();
    let c = build(t3.path(), b"another seed", 0);
    let (ga, gc) = (read_gpt(&a.path).unwrap(), read_gpt(&c.path).unwrap());
    assert_ne!(ga.disk_guid, gc.disk_guid);
    for (pa, pc) in ga.partitions.iter().zip(&gc.partitions) {
        assert_ne!(pa.part_guid, pc.part_guid, "{}", pa.name);
        assert_eq!((pa.offset, pa.type_guid), (pc.offset, pc.type_guid));
    }
    assert_ne!(a.data_uuid, c.data_uuid);
}

/// A small valid layout (13 MiB disk) for the error cases.
fn small() -> Placed {
    use azl_formats::manifest::PartitionKind as K;
    let l = Layout {
        table: TableKind::Gpt,
        partitions: vec![
            spec("boot", K::Boot, MIB),
            spec("root-a", K::Root, MIB),
            spec("bootstate", K::BootState, MIB),
            spec("data", K::Data, 8 * MIB),
        ],
    };
    place(&l, b"small").unwrap()
}

#[test]
fn disk_write_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("d.img");
    let p = small();
    let big = vec![1u8; MIB as usize + 1];
    let e = write_disk(&path, &p, &[("root-a", &big)]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "partition \"root-a\": content is 1048577 bytes but the partition holds 1048576"
    );
    let e = write_disk(&path, &p, &[("root-b", b"x")]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "content given for partition \"root-b\", which is not in the partition table"
    );
    let e = write_disk(&path, &p, &[("boot", b"x"), ("boot", b"y")]).unwrap_err();
    assert_eq!(e.to_string(), "content given twice for partition \"boot\"");
    let mut overlong = p.clone();
    overlong.partitions[3].size += MIB; // runs into the backup GPT
    let e = write_disk(&path, &overlong, &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "partition \"data\" at offset {} (9437184 bytes) is not sector-aligned or lies outside the disk's usable area",
            4 * MIB
        )
    );
    let e = write_disk(&tmp.path().join("no/such/dir/d.img"), &p, &[]).unwrap_err();
    assert!(
        e.to_string().starts_with("writing disk image ")
            && e.to_string().contains("creating a temporary file"),
        "{e}"
    );
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "nothing written, no temporary file left"
    );

    // A full-size partition content fits exactly.
    let exact = vec![7u8; MIB as usize];
    write_disk(&path, &p, &[("root-a", &exact)]).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), p.disk_size);
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
}

#[test]
fn disk_read_gpt_rejects_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("d.img");
    let p = small();
    write_disk(&path, &p, &[]).unwrap();
    let good = std::fs::read(&path).unwrap();
    assert_eq!(read_gpt(&path).unwrap().partitions.len(), 4);
    let last = good.len() - 512;
    let cases: Vec<(usize, &str)> = vec![
        // read_gpt reads through azl_formats::gpt (the device's rules) and
        // refuses any damage to either copy.
        (510, "not a GPT disk: no protective MBR"),
        (512 + 8, "primary GPT: GPT header at LBA 1: CRC"),
        (512 + 100, ""), // padding after the 92-byte header: not covered, ignored
        (
            1024 + 56,
            "primary GPT: GPT entries of the header at LBA 1: CRC",
        ),
        (last + 56, "backup GPT: GPT header at LBA"),
        (
            last - 16384 + 3,
            "backup GPT: GPT entries of the header at LBA",
        ),
    ];
    for (at, want) in cases {
        let mut bad = good.clone();
        bad[at] ^= 0x01;
        std::fs::write(&path, &bad).unwrap();
        let r = read_gpt(&path);
        if want.is_empty() {
            assert!(r.is_ok(), "byte {at}: {r:?}");
            continue;
        }
        let e = r.unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}: {want}", path.display())),
            "byte {at}: {e}"
        );
    }
    // A disk that grew: the backup is no longer in the last sector.
    let mut grown = good.clone();
    grown.extend_from_slice(&[0u8; 512]);
    std::fs::write(&path, &grown).unwrap();
    let e = read_gpt(&path).unwrap_err().to_string();
    assert!(e.contains("is not the last sector"), "{e}");
    // Too small, missing.
    std::fs::write(&path, [0u8; 4096]).unwrap();
    assert!(read_gpt(&path)
        .unwrap_err()
        .to_string()
        .ends_with("no valid GPT: primary: no GPT header signature at LBA 1; backup: no GPT header signature at LBA 7"));
    let e = read_gpt(&tmp.path().join("missing"))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("reading ") && e.contains("missing"), "{e}");
}
