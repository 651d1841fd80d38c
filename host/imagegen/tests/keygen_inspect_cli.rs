//! `imagegen keygen` and `imagegen inspect` through the real binary: files,
//! modes and output of keygen; inspect's text, JSON and exit status (0 all
//! checks pass, 1 a check failed, 2 nothing to inspect) on a disk image
//! written with the library's own disk writer and signer.
// Test helpers outside #[test] fns (fixtures, builders) fail the test by panicking.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
use azl_disk::{self as disk, Layout, PartSpec, TableKind, MIB};
use azl_formats::envelope::Enveloped;
use azl_formats::manifest::{FileDigest, Hex, Manifest, PartitionKind, RootFs, MANIFEST_REGION};
use azl_formats::ServiceTable;
use azl_imagepath::ImagePath;
use azl_sign::{self as sign, SigningKey};
use azl_squashfs::{self as squashfs, Entry, FileData, Node};
use azl_verity::{self as verity, VerityParams};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn imagegen(args: &[&std::ffi::OsStr]) -> Output {
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

fn sha256(b: &[u8]) -> [u8; 32] {
    ring::digest::digest(&ring::digest::SHA256, b)
        .as_ref()
        .try_into()
        .unwrap()
}

fn keygen(key: &Path) -> Output {
    imagegen(&["keygen".as_ref(), "-o".as_ref(), key.as_os_str()])
}

#[test]
fn keygen_writes_a_key_pair() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("build.key");
    let o = keygen(&key);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let public = std::fs::read(dir.path().join("build.key.pub")).unwrap();
    assert_eq!(public.len(), 32);
    assert!(
        out.contains(&format!("public key (hex): {}", Hex(&public))),
        "{out}"
    );
    assert!(
        out.contains(&format!("key id: {}", Hex(&sign::key_id(&public)))),
        "{out}"
    );
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        SigningKey::load(&key).unwrap().public_key().as_slice(),
        public
    );

    // Never overwritten without --force.
    let before = std::fs::read(&key).unwrap();
    let o = keygen(&key);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("already exists (use --force"), "{err}");
    assert_eq!(std::fs::read(&key).unwrap(), before);
    let o = imagegen(&[
        "keygen".as_ref(),
        "--force".as_ref(),
        "-o".as_ref(),
        key.as_os_str(),
    ]);
    assert!(o.status.success());
    assert_ne!(std::fs::read(&key).unwrap(), before);

    // A directory that does not exist: an error naming it, no files.
    let o = keygen(&dir.path().join("no/such/dir/k"));
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("no/such/dir/k"), "{}", text(&o).1);
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

/// OUT/disk.img with a signed manifest in root-a; returns (OUT, root-a offset).
fn disk_image(dir: &Path, key: &SigningKey) -> (PathBuf, u64) {
    let services = ServiceTable::default().to_bytes().unwrap();
    let sq = squashfs::build(
        &[
            entry(
                "/etc/azl-edge/services.tbl",
                Node::File(FileData::Bytes(services.clone())),
            ),
            entry("/sbin/init", Node::File(FileData::Bytes(vec![1; 3000]))),
        ],
        &squashfs::Options::default(),
    )
    .unwrap();
    let params = VerityParams::new(vec![1, 2, 3, 4], [5; 16]);
    let tree = verity::build(&sq.bytes, &params).unwrap();
    let mut root = sq.bytes.clone();
    root.extend_from_slice(&tree.superblock_and_tree);
    let spec = |name: &str, kind, size| PartSpec {
        name: name.into(),
        kind,
        size,
    };
    let placed = disk::place(
        &Layout {
            table: TableKind::Gpt,
            partitions: vec![
                spec("boot", PartitionKind::Boot, MIB),
                spec("root-a", PartitionKind::Root, MIB),
                spec("root-b", PartitionKind::Root, MIB),
                spec("bootstate", PartitionKind::BootState, MIB),
                spec("data", PartitionKind::Data, 8 * MIB),
            ],
        },
        b"cli-test",
    )
    .unwrap();
    let mut partitions: Vec<_> = placed
        .partitions
        .iter()
        .map(|p| p.manifest_entry().unwrap())
        .collect();
    partitions[1].sha256 = Some(sha256(&root));
    let manifest = Manifest {
        board: "qemu-virt".into(),
        image_name: "cli".into(),
        image_version: "0.1".into(),
        security_version: 0,
        build_epoch: 0,
        disk_guid: placed.disk_guid,
        partitions,
        kernel: FileDigest {
            size: 0,
            sha256: sha256(b""),
        },
        initramfs: FileDigest {
            size: 0,
            sha256: sha256(b""),
        },
        cmdline: "console=ttyAMA0".into(),
        rootfs: RootFs {
            partition: azl_formats::name("root-a").unwrap(),
            data_size: sq.bytes.len() as u64,
            verity: tree.to_manifest(&params, sq.bytes.len() as u64).unwrap(),
        },
        service_table_sha256: sha256(&services),
        lock_sha256: None,
        sbom_sha256: [0; 32],
        reference: None,
    };
    let region = sign::sign(&manifest, Some(key))
        .unwrap()
        .to_region()
        .unwrap();
    let mut slot = vec![0u8; MIB as usize];
    slot[..root.len()].copy_from_slice(&root);
    slot[(MIB - MANIFEST_REGION) as usize..].copy_from_slice(&region);
    let boot = disk::fat_image(
        MIB,
        "BOOT",
        1,
        &[
            ("/Image".to_string(), Vec::new()),
            ("/initramfs.cpio.gz".to_string(), Vec::new()),
        ],
    )
    .unwrap();
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    disk::write_disk(
        &out.join("disk.img"),
        &placed,
        &[("boot", &boot), ("root-a", &slot)],
    )
    .unwrap();
    (out, placed.partitions[1].offset)
}

fn inspect(args: &[&Path]) -> (Option<i32>, String, String) {
    let mut a: Vec<&std::ffi::OsStr> = vec!["inspect".as_ref()];
    a.extend(args.iter().map(|p| p.as_os_str()));
    let o = imagegen(&a);
    let (out, err) = text(&o);
    (o.status.code(), out, err)
}

#[test]
fn inspect_exit_status_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let keyfile = dir.path().join("k");
    assert!(keygen(&keyfile).status.success());
    let key = SigningKey::load(&keyfile).unwrap();
    let (out, root_a) = disk_image(dir.path(), &key);
    let disk = out.join("disk.img");
    let pubkey = dir.path().join("k.pub");
    let id = Hex(&key.key_id()).to_string();

    let (code, stdout, err) = inspect(&[&disk, Path::new("--key"), &pubkey]);
    assert_eq!(code, Some(0), "{stdout}{err}");
    assert!(
        stdout.contains(&format!("signed by key {id}, verified")),
        "{stdout}"
    );
    assert!(stdout.contains("result: OK"), "{stdout}");

    let (code, stdout, _) = inspect(&[Path::new("--json"), &out, Path::new("--key"), &pubkey]);
    assert_eq!(code, Some(0));
    let j: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(j["ok"], true);
    assert_eq!(j["manifests"][0]["signature"]["status"], "verified");
    assert_eq!(j["manifests"][0]["rootfs"]["verity"]["salt"], "01020304");
    assert_eq!(j["disk"]["partitions"][1]["name"], "root-a");

    // Edited root-a content: sha256 mismatch, exit 1, JSON still printed.
    let f = std::fs::OpenOptions::new().write(true).open(&disk).unwrap();
    f.write_all_at(b"X", root_a + 100).unwrap();
    let (code, stdout, _) = inspect(&[&disk, Path::new("--key"), &pubkey]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("FAIL  sha256 root-a: mismatch"), "{stdout}");
    let (code, stdout, _) = inspect(&[Path::new("--json"), &disk]);
    assert_eq!(code, Some(1));
    let j: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(j["ok"], false);

    // Nothing to inspect: exit 2 with the reason on stderr.
    let (code, _, err) = inspect(&[&dir.path().join("missing.img")]);
    assert_eq!(code, Some(2));
    assert!(err.contains("missing.img"), "{err}");
    let (code, _, err) = inspect(&[&pubkey]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("no protective MBR") || err.contains(&*pubkey.to_string_lossy()),
        "{err}"
    );
}

/// Run imagegen with its stdout a real pipe whose read end is closed before
/// the program writes anything (as `… | head -0` would): the status and
/// stderr.
fn with_closed_stdout(args: &[&std::ffi::OsStr]) -> (std::process::ExitStatus, String) {
    use std::io::Read;
    let mut child = Command::new(env!("CARGO_BIN_EXE_imagegen"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (child.wait().unwrap(), err)
}

#[test]
fn closed_stdout_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let keyfile = dir.path().join("k");
    assert!(keygen(&keyfile).status.success());
    let key = SigningKey::load(&keyfile).unwrap();
    let (out, _) = disk_image(dir.path(), &key);
    let pubkey = dir.path().join("k.pub");
    let k2 = dir.path().join("k2");
    let runs: [Vec<&std::ffi::OsStr>; 4] = [
        vec!["inspect".as_ref(), out.as_os_str()],
        vec![
            "inspect".as_ref(),
            "--json".as_ref(),
            out.as_os_str(),
            "--key".as_ref(),
            pubkey.as_os_str(),
        ],
        vec!["keygen".as_ref(), "-o".as_ref(), k2.as_os_str()],
        vec!["--help".as_ref()],
    ];
    for args in runs {
        let (status, err) = with_closed_stdout(&args);
        // clap prints --help itself and exits 0 or 141-style on EPIPE;
        // ours: 141 (128 + SIGPIPE), nothing on stderr.
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
        if args.first() != Some(&std::ffi::OsStr::new("--help")) {
            assert_eq!(status.code(), Some(141), "{args:?}: {err}");
        }
    }

    // And through a real `head -1`: one line, then a quiet end.
    let sh = format!(
        "{} inspect {} | head -1; echo \"status ${{PIPESTATUS[0]}}\"",
        env!("CARGO_BIN_EXE_imagegen"),
        out.display()
    );
    let o = Command::new("bash").arg("-c").arg(&sh).output().unwrap();
    let (stdout, stderr) = text(&o);
    assert!(stderr.is_empty(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[1] == "status 141" || lines[1] == "status 0",
        "{stdout}"
    );
}
