//! The verified disk image: GPT with boot (FAT), root-a/root-b (squashfs +
//! dm-verity + signed manifest), bootstate and data (ext4). Booted in QEMU
//! with both kernels, attacked (flipped bytes, foreign keys, edited and
//! missing manifests) and cross-checked with veritysetup, unsquashfs,
//! fsck.vfat and e2fsck.
use azl_e2e::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A disk image whose services come from the verified root and which
/// keeps a boot counter in /data.
fn counter_image(kernel: Kernel, key: &Path) -> Image {
    Image::new("disk", kernel)
        .disk(key)
        .with("[[file]]\ndst = \"/etc/marker\"\nsrc = \"marker.txt\"\nmode = \"0644\"\n")
        .finisher(
            &[],
            "echo root=$(grep ' / ' /proc/mounts | cut -d' ' -f1,3,4); \
             echo datamount=$(grep ' /data ' /proc/mounts | cut -d' ' -f3,4 | cut -d, -f1); \
             echo marker=$(cat /etc/marker); \
             n=$(cat /data/boots 2>/dev/null || echo 0); n=$((n+1)); echo $n > /data/boots; sync; echo boots=$n; \
             touch /etc/x 2>/dev/null && echo rootwrite=yes || echo rootwrite=no",
        )
        .with_applets(&["cut"])
}

fn build_in(dir: &Path, image: &Image) -> PathBuf {
    std::fs::write(dir.join("marker.txt"), "from-the-verified-root\n").unwrap_or_default();
    image.build(dir)
}

fn check_verified_boot_and_persistence(kernel: Kernel) {
    let dir = tempdir();
    let key = keygen(dir.path(), "build.key");
    let out = build_in(dir.path(), &counter_image(kernel, &key));
    assert!(out.join("disk.img").exists());
    let b = boot(&out, &Boot::default());
    b.assert_order(&[
        "manifest: disk 1.0.0 signature OK",
        "verity: ",
        "data: ",
        "started finish",
    ]);
    assert!(
        b.value("root").starts_with("/dev/dm-0 squashfs ro,nodev"),
        "{}",
        b.dump()
    );
    assert_eq!(b.value("datamount"), "ext4 rw", "{}", b.dump());
    assert_eq!(b.value("marker"), "from-the-verified-root");
    assert_eq!(b.value("rootwrite"), "no");
    assert_eq!(b.value("boots"), "1");
    b.assert_clean_poweroff();
    // Second boot of the same disk: /data kept the counter.
    let b = boot(&out, &Boot::default());
    assert_eq!(b.value("boots"), "2", "{}", b.dump());
    b.assert_clean_poweroff();
}

#[test]
fn verified_root_and_persistent_data_small_kernel() {
    check_verified_boot_and_persistence(Kernel::Small);
}

#[test]
fn verified_root_and_persistent_data_debian_kernel() {
    check_verified_boot_and_persistence(Kernel::Debian);
}

/// Boot expecting the emergency state; returns the log.
fn boot_refused(out: &Path) -> Booted {
    let b = boot(out, &Boot::default());
    b.line("EMERGENCY: ");
    assert!(
        !b.has("ready: "),
        "device must not come up healthy\n{}",
        b.dump()
    );
    assert!(!b.has("started finish"), "no service may run\n{}", b.dump());
    b
}

fn small_disk(dir: &Path, key: &Path) -> PathBuf {
    build_in(
        dir,
        &counter_image(Kernel::Small, key).board_file(fast_emergency_board(dir)),
    )
}

/// qemu-virt with a 1 s emergency delay, so refused boots end quickly.
fn fast_emergency_board(dir: &Path) -> PathBuf {
    board_variant(
        dir,
        &[(
            "emergency_reboot_delay_s = 10",
            "emergency_reboot_delay_s = 1",
        )],
    )
}

#[test]
fn flipped_rootfs_byte_is_reported_as_corruption() {
    let dir = tempdir();
    let key = keygen(dir.path(), "k");
    let out = small_disk(dir.path(), &key);
    let disk = out.join("disk.img");
    let root = partition(&disk, "root-a");
    // Byte 100 of the squashfs superblock: read by the very first mount.
    let orig = read_at(&disk, root.offset + 100, 1);
    write_at(&disk, root.offset + 100, &[orig[0] ^ 0xff]);
    let b = boot_refused(&out);
    b.line("data block 0 is corrupted");
    b.line("EMERGENCY: cannot mount squashfs /dev/dm-0 on /sysroot: I/O error");
    b.line("kernel: ");
}

#[test]
fn manifest_signed_by_another_key_is_refused() {
    let dir = tempdir();
    let trusted = keygen(dir.path(), "trusted");
    let other = keygen(dir.path(), "other");
    let out = small_disk(dir.path(), &trusted);
    // The same image signed by another key: graft its manifest region.
    let dir2 = tempdir();
    let foreign = small_disk(dir2.path(), &other);
    let (d1, d2) = (out.join("disk.img"), foreign.join("disk.img"));
    let (p1, p2) = (partition(&d1, "root-a"), partition(&d2, "root-a"));
    let region = read_at(&d2, p2.offset + p2.size - 65536, 65536);
    write_at(&d1, p1.offset + p1.size - 65536, &region);
    let b = boot_refused(&out);
    b.line("manifest signed by key ");
    b.line("but this device trusts key ");
}

#[test]
fn edited_manifest_is_refused() {
    let dir = tempdir();
    let key = keygen(dir.path(), "k");
    let out = small_disk(dir.path(), &key);
    let disk = out.join("disk.img");
    let p = partition(&disk, "root-a");
    // Inside the signed manifest bytes (after the 4-byte length, 6-byte
    // envelope header and the manifest's own length prefix).
    let at = p.offset + p.size - 65536 + 40;
    let orig = read_at(&disk, at, 1);
    write_at(&disk, at, &[orig[0] ^ 0x01]);
    let b = boot_refused(&out);
    b.line("signature does not verify");
}

#[test]
fn missing_manifest_is_refused() {
    let dir = tempdir();
    let key = keygen(dir.path(), "k");
    let out = small_disk(dir.path(), &key);
    let disk = out.join("disk.img");
    let p = partition(&disk, "root-a");
    write_at(&disk, p.offset + p.size - 65536, &vec![0u8; 65536]);
    let b = boot_refused(&out);
    b.line("no manifest (region is empty)");
}

#[test]
fn unsigned_build_must_be_explicit_and_boots_loudly() {
    let dir = tempdir();
    let img = counter_image(Kernel::Small, Path::new("/nonexistent")).disk_unsigned();
    std::fs::write(dir.path().join("marker.txt"), "m\n").unwrap_or_default();
    // Neither --key nor --insecure-unsigned: refused with the way out.
    let r = build_config(dir.path(), &img.config_text(), &[]);
    assert!(!r.ok);
    assert!(r.stderr.contains("--insecure-unsigned"), "{}", r.stderr);
    let out = img.build(dir.path());
    let b = boot(&out, &Boot::default());
    b.line("INSECURE: manifest is UNSIGNED");
    b.assert_clean_poweroff();
}

#[test]
fn partitions_pass_the_reference_tools() {
    let dir = tempdir();
    let key = keygen(dir.path(), "k");
    let out = small_disk(dir.path(), &key);
    let disk = out.join("disk.img");
    let info = inspect_json(&disk);
    let verity = &info["manifests"][0]["rootfs"]["verity"];
    let salt = verity["salt"].as_str().unwrap_or_default().to_string();
    let uuid = verity["uuid"].as_str().unwrap_or_default().to_string();
    let root_hash = verity["root_hash"].as_str().unwrap_or_default().to_string();
    let data_size = info["manifests"][0]["rootfs"]["data_size"]
        .as_u64()
        .unwrap_or(0);
    let hash_offset = verity["hash_offset"].as_u64().unwrap_or(0);
    let hash_size = verity["hash_size"].as_u64().unwrap_or(0);
    assert!(
        data_size > 0 && hash_offset == data_size && hash_size > 0,
        "{info}"
    );

    // Verity: veritysetup format of the same data with the same salt and
    // uuid writes the same tree, and veritysetup verify accepts the slot.
    let rootimg = dir.path().join("root-a.img");
    extract_partition(&disk, "root-a", &rootimg);
    let data = dir.path().join("data.img");
    std::fs::write(&data, read_at(&rootimg, 0, data_size as usize)).unwrap_or_default();
    let hash = dir.path().join("hash.img");
    let r = run_mut(
        Command::new("veritysetup")
            .args(["format", "--hash", "sha256", "--data-block-size", "4096"])
            .args([
                "--hash-block-size",
                "4096",
                "--salt",
                &salt,
                "--uuid",
                &uuid,
            ])
            .arg(&data)
            .arg(&hash),
    );
    assert!(r.ok, "veritysetup format: {}", r.stderr);
    assert!(
        r.stdout.contains(&root_hash),
        "veritysetup root hash differs\n{}\nours {root_hash}",
        r.stdout
    );
    let theirs = std::fs::read(&hash).unwrap_or_default();
    let ours = read_at(&rootimg, hash_offset, theirs.len());
    assert!(theirs == ours, "hash tree bytes differ from veritysetup's");
    let r = run_mut(
        Command::new("veritysetup")
            .arg("verify")
            .arg(&rootimg)
            .arg(&rootimg)
            .arg(&root_hash)
            .arg(format!("--hash-offset={hash_offset}")),
    );
    assert!(r.ok, "veritysetup verify: {}{}", r.stdout, r.stderr);

    // squashfs lists our files.
    let r = run_mut(Command::new("unsquashfs").arg("-l").arg(&data));
    assert!(r.ok, "unsquashfs: {}", r.stderr);
    for f in [
        "squashfs-root/sbin/init",
        "squashfs-root/etc/marker",
        "squashfs-root/bin/busybox",
        "squashfs-root/etc/azl-edge/services.tbl",
    ] {
        assert!(
            r.stdout.lines().any(|l| l == f),
            "unsquashfs -l lacks {f}\n{}",
            r.stdout
        );
    }

    // FAT boot partition and ext4 data partition pass fsck.
    let boot_img = dir.path().join("boot.img");
    extract_partition(&disk, "boot", &boot_img);
    let r = run_mut(Command::new("fsck.vfat").arg("-n").arg(&boot_img));
    assert!(r.ok, "fsck.vfat: {}{}", r.stdout, r.stderr);
    let data_img = dir.path().join("datap.img");
    extract_partition(&disk, "data", &data_img);
    let r = run_mut(Command::new("e2fsck").arg("-fn").arg(&data_img));
    assert!(r.ok, "e2fsck: {}{}", r.stdout, r.stderr);
    // GPT itself.
    let r = run_mut(Command::new("sgdisk").arg("-v").arg(&disk));
    assert!(
        r.ok && r.stdout.contains("No problems found"),
        "sgdisk -v: {}{}",
        r.stdout,
        r.stderr
    );
}

#[test]
fn builds_are_byte_identical_across_directories_and_time() {
    let key_dir = tempdir();
    let key = keygen(key_dir.path(), "k");
    let a = tempdir();
    let b = tempdir();
    let oa = build_in(a.path(), &counter_image(Kernel::Small, &key));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let ob = build_in(b.path(), &counter_image(Kernel::Small, &key));
    let (da, db) = (
        std::fs::read(oa.join("disk.img")).unwrap_or_default(),
        std::fs::read(ob.join("disk.img")).unwrap_or_default(),
    );
    assert!(!da.is_empty() && da == db, "disk images differ");
    assert_eq!(
        std::fs::read(oa.join("initramfs.cpio.gz")).ok(),
        std::fs::read(ob.join("initramfs.cpio.gz")).ok()
    );
    // The SBOM names no host path or clock time. (provenance.json records
    // the config path as given on the command line, so it is compared by
    // --verify-reproducible below, which rebuilds from the same path.)
    let sbom_a = std::fs::read(oa.join("sbom.spdx.json")).unwrap_or_default();
    assert!(!sbom_a.is_empty(), "no sbom.spdx.json");
    assert_eq!(Some(sbom_a), std::fs::read(ob.join("sbom.spdx.json")).ok());
    // The built-in check builds twice and compares.
    let c = tempdir();
    std::fs::write(c.path().join("marker.txt"), "from-the-verified-root\n").unwrap_or_default();
    let img = counter_image(Kernel::Small, &key);
    let mut args: Vec<&str> = img.build_args.iter().map(String::as_str).collect();
    args.push("--verify-reproducible");
    let r = build_config(c.path(), &img.config_text(), &args);
    assert!(r.ok, "{}", r.stderr);
    assert!(r.stdout.contains("reproducible"), "{}", r.stdout);
}

#[test]
fn size_budget_overrun_fails_the_build_with_a_diff() {
    let dir = tempdir();
    let key = keygen(dir.path(), "k");
    let board = board_variant(
        dir.path(),
        &[
            ("rootfs = \"160M\"", "rootfs = \"100K\""),
            ("initramfs = \"32M\"", "initramfs = \"10K\""),
        ],
    );
    let img = counter_image(Kernel::Small, &key).board_file(board);
    std::fs::write(dir.path().join("marker.txt"), "m\n").unwrap_or_default();
    let args: Vec<&str> = img.build_args.iter().map(String::as_str).collect();
    let r = build_config(dir.path(), &img.config_text(), &args);
    assert!(!r.ok, "{}", r.stdout);
    assert!(
        r.stderr.contains("over the board's size budget"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("rootfs is ") && r.stderr.contains("budget 100.0 KiB (102400 bytes)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("initramfs is "), "{}", r.stderr);
    assert!(!r.stderr.contains("kernel is "), "{}", r.stderr);
}

/// The whole build runs as an ordinary user: no root, no mount, no loop
/// devices. Inputs are copied where user `nobody` can read them.
#[test]
fn build_is_rootless() {
    let dir = tempdir();
    let root = dir.path();
    let run_as_nobody = |args: &[&str]| {
        run_mut(
            Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                .args(args),
        )
    };
    // Everything the build reads, in a world-readable place.
    for sub in ["kernel", "bin"] {
        std::fs::create_dir_all(root.join(sub)).unwrap_or_default();
    }
    let kdir = Kernel::Small.dir();
    run_mut(
        Command::new("cp")
            .arg("-r")
            .arg(kdir.join("boot"))
            .arg(kdir.join("lib"))
            .arg(root.join("kernel")),
    );
    std::fs::copy(init_binary(), root.join("bin/init")).unwrap_or_default();
    std::fs::copy(busybox(), root.join("bin/busybox")).unwrap_or_default();
    std::fs::copy(imagegen(), root.join("bin/imagegen")).unwrap_or_default();
    std::fs::write(root.join("marker.txt"), "m\n").unwrap_or_default();
    // The board files too: the checkout may sit below a directory only
    // its owner can enter (a clone in `mktemp -d`).
    run_mut(
        Command::new("cp")
            .arg("-r")
            .arg(workspace().join("boards"))
            .arg(root.join("boards")),
    );
    let config = counter_image(Kernel::Small, Path::new("/unused"))
        .config_text()
        .replace(
            &init_binary().display().to_string(),
            &root.join("bin/init").display().to_string(),
        )
        .replace(
            &busybox().display().to_string(),
            &root.join("bin/busybox").display().to_string(),
        )
        .replace(
            &kdir.display().to_string(),
            &root.join("kernel").display().to_string(),
        );
    std::fs::write(root.join("image.toml"), config).unwrap_or_default();
    run_mut(Command::new("chmod").args(["-R", "a+rwX"]).arg(root));
    let imagegen_bin = root.join("bin/imagegen").display().to_string();
    let key = root.join("user.key").display().to_string();
    let r = run_as_nobody(&[&imagegen_bin, "keygen", "-o", &key]);
    assert!(r.ok, "keygen as nobody: {}", r.stderr);
    let cfg = root.join("image.toml").display().to_string();
    let out = root.join("out").display().to_string();
    let boards = root.join("boards");
    let r = run_as_nobody(&[
        &imagegen_bin,
        "build",
        "--config",
        &cfg,
        "-o",
        &out,
        "--key",
        &key,
        "--boards-dir",
        &boards.display().to_string(),
    ]);
    assert!(r.ok, "build as nobody: {}{}", r.stdout, r.stderr);
    let owner = run_mut(
        Command::new("stat")
            .args(["-c", "%u"])
            .arg(root.join("out/disk.img")),
    );
    assert_eq!(owner.stdout.trim(), "65534");
}

/// Run sgdisk (gdisk package, the reference GPT editor) on a disk image.
fn sgdisk(disk: &Path, args: &[String]) {
    let mut cmd = Command::new("sgdisk");
    cmd.args(args).arg(disk);
    let r = run(cmd);
    assert!(r.ok, "sgdisk {args:?}: {}\n{}", r.stdout, r.stderr);
}

/// 1-based GPT entry number of the partition named `name` (sfdisk order is
/// entry order).
fn entry_number(disk: &Path, name: &str) -> usize {
    sfdisk_partitions(disk)
        .iter()
        .position(|p| p.name == name)
        .unwrap_or_else(|| panic!("no {name}"))
        + 1
}

/// root-b's range, holding a byte copy of the signed root-a slot.
fn copy_root_a_over_root_b(disk: &Path) -> (RefPartition, RefPartition) {
    let a = partition(disk, "root-a");
    let b = partition(disk, "root-b");
    assert!(b.size >= a.size, "root-b smaller than root-a");
    // The manifest is read from the end of the partition: keep the copy
    // as long as the original so it ends in the same place relative to it.
    let bytes = read_at(disk, a.offset, a.size as usize);
    write_at(disk, b.offset, &bytes);
    (a, b)
}

#[test]
fn duplicate_root_partition_name_is_refused() {
    // Rollback attempt: entry 10, named root-a like entry 2, holds another
    // signed slot. Scanning sysfs by name found vda10 before vda2.
    let dir = tempdir();
    let key = keygen(dir.path(), "k");
    let out = small_disk(dir.path(), &key);
    let disk = out.join("disk.img");
    let (a, b) = copy_root_a_over_root_b(&disk);
    let nb = entry_number(&disk, "root-b");
    let (first, last) = (b.offset / 512, (b.offset + a.size) / 512 - 1);
    sgdisk(
        &disk,
        &[
            format!("--delete={nb}"),
            format!("--new=10:{first}:{last}"),
            "--change-name=10:root-a".into(),
        ],
    );
    let b = boot_refused(&out);
    b.line("GPT entries 2 and 10 are both named \"root-a\"");
}

#[test]
fn root_slot_moved_away_from_the_signed_partition_table_is_refused() {
    // The GPT renamed so that "root-a" is a byte copy of the slot at another
    // place on the disk: the manifest verifies, the signed table disagrees.
    let dir = tempdir();
    let key = keygen(dir.path(), "k");
    let out = small_disk(dir.path(), &key);
    let disk = out.join("disk.img");
    let (a, b) = copy_root_a_over_root_b(&disk);
    let na = entry_number(&disk, "root-a");
    let nb = entry_number(&disk, "root-b");
    let (first, last) = (b.offset / 512, (b.offset + a.size) / 512 - 1);
    sgdisk(
        &disk,
        &[
            format!("--change-name={na}:old"),
            format!("--delete={nb}"),
            format!("--new={nb}:{first}:{last}"),
            format!("--change-name={nb}:root-a"),
        ],
    );
    let b = boot_refused(&out);
    b.line("(a moved or copied slot)");
}

#[test]
fn corrupt_primary_gpt_boots_from_the_backup() {
    let dir = tempdir();
    let key = keygen(dir.path(), "k");
    let out = small_disk(dir.path(), &key);
    let disk = out.join("disk.img");
    write_at(&disk, 512, &[0u8; 512]);
    let b = boot(&out, &Boot::default());
    b.assert_order(&[
        "primary GPT is corrupt (no GPT header signature at LBA 1); using the backup GPT at LBA ",
        "added from the GPT",
        "manifest: disk 1.0.0 signature OK",
        "data: ",
        "started finish",
    ]);
    assert_eq!(b.value("boots"), "1", "{}", b.dump());
    b.assert_clean_poweroff();
}

#[test]
fn device_gpt_reader_agrees_with_sfdisk_on_built_images() {
    // The device's GPT reader (azl_formats::gpt) on the table imagegen
    // wrote, against the reference tool; then on the backup alone.
    let dir = tempdir();
    let key = keygen(dir.path(), "k");
    let out = small_disk(dir.path(), &key);
    let disk = out.join("disk.img");
    let bytes = std::fs::read(&disk).unwrap_or_default();
    let read = |b: &[u8]| {
        azl_formats::gpt::read(b.len() as u64, |off, len| {
            b.get(off as usize..off as usize + len)
                .map(<[u8]>::to_vec)
                .ok_or(())
        })
    };
    let expected: Vec<(String, u64, u64)> = sfdisk_partitions(&disk)
        .into_iter()
        .map(|p| (p.name, p.offset, p.size))
        .collect();
    let got = |g: &azl_formats::gpt::Gpt| -> Vec<(String, u64, u64)> {
        g.entries
            .iter()
            .map(|e| (e.name.clone(), e.offset(), e.size()))
            .collect()
    };
    let g = read(&bytes).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(g.copy, azl_formats::gpt::Which::Primary);
    assert_eq!(got(&g), expected);
    let mut damaged = bytes.clone();
    damaged[512..1024].fill(0);
    let g = read(&damaged).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(g.copy, azl_formats::gpt::Which::Backup);
    assert_eq!(got(&g), expected);
}
