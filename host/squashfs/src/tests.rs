//! Cross-checks against squashfs-tools (`unsquashfs`).
use super::*;
use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::{Command, Output};

const MTIME: u32 = 1_700_000_000; // 2023-11-14 22:13:20 UTC
const MTIME_TEXT: &str = "2023-11-14 22:13";

fn p(s: &str) -> ImagePath {
    ImagePath::parse(s).unwrap()
}

fn entry(path: &str, node: Node, mode: u32) -> Entry {
    Entry {
        path: p(path),
        node,
        mode,
        uid: 0,
        gid: 0,
    }
}

fn bytes(b: &[u8]) -> Node {
    Node::File(FileData::Bytes(b.to_vec()))
}

/// Deterministic bytes: half pseudo-random, half text-like, so that
/// compression has something to do and something it cannot shrink.
fn mixed_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        if (out.len() / 65536) % 2 == 0 {
            out.extend_from_slice(&z.to_le_bytes());
        } else {
            out.extend_from_slice(format!("line {} ", z % 1000).as_bytes());
        }
    }
    out.truncate(len);
    out
}

fn run(cmd: &str, args: &[&str]) -> Output {
    let out = Command::new(cmd)
        .args(args)
        .env("TZ", "UTC")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd} ({e}): run scripts/setup.sh"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn is_root() -> bool {
    let out = run("id", &["-u"]);
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

fn s(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

/// The test tree; `host` is a host file to include as /etc/hostname.
fn tree(host: &Path) -> Vec<Entry> {
    let mut v = vec![
        entry("/", Node::Dir, 0o755),
        entry("/usr/bin/tool", bytes(b"#!/bin/sh\necho tool\n"), 0o4755),
        entry("/usr/lib/big.bin", bytes(&mixed_bytes(1_500_000, 1)), 0o644),
        entry("/usr/lib/zeros", bytes(&[0; 3 * 131072 + 100]), 0o644),
        entry("/usr/lib/exact", bytes(&mixed_bytes(131072, 2)), 0o644),
        entry("/etc/empty", bytes(b""), 0o644),
        entry(
            "/etc/hostname",
            Node::File(FileData::Host(host.into())),
            0o644,
        ),
        entry("/bin", Node::Symlink("usr/bin".into()), 0o777),
        entry("/dev/console", Node::CharDev { major: 5, minor: 1 }, 0o600),
        entry(
            "/dev/vda",
            Node::BlockDev {
                major: 254,
                minor: 0,
            },
            0o660,
        ),
        entry(
            "/dev/nvme",
            Node::BlockDev {
                major: 259,
                minor: 300_000,
            },
            0o660,
        ),
        entry("/a/b/c/d/e.txt", bytes(b"deep\n"), 0o444),
        entry("/var/empty", Node::Dir, 0o1777),
    ];
    let mut home = entry("/home/user", Node::Dir, 0o700);
    home.uid = 1000;
    home.gid = 1000;
    let mut notes = entry("/home/user/notes", bytes(b"mine\n"), 0o600);
    notes.uid = 1000;
    notes.gid = 100;
    v.extend([home, notes]);
    v
}

fn options(compression: Compression) -> Options {
    Options {
        compression,
        mtime: MTIME,
        ..Options::default()
    }
}

/// `unsquashfs -lln` as path → (mode string, owner, size or device, symlink target).
fn listing(img: &Path) -> HashMap<String, (String, String, String, Option<String>)> {
    let out = run("unsquashfs", &["-lln", s(img)]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut map = HashMap::new();
    for line in text.lines().filter(|l| l.contains("squashfs-root")) {
        let t: Vec<&str> = line.split_whitespace().collect();
        let at = t
            .iter()
            .position(|w| w.starts_with("squashfs-root"))
            .unwrap();
        let time = format!("{} {}", t[at - 2], t[at - 1]);
        // The root inode's mtime is 0 (see the module doc).
        let want = if t[at] == "squashfs-root" {
            "1970-01-01 00:00"
        } else {
            MTIME_TEXT
        };
        assert_eq!(time, want, "mtime of {line}");
        let path = t[at].trim_start_matches("squashfs-root").to_string();
        let path = if path.is_empty() {
            "/".to_string()
        } else {
            path
        };
        let target = (t.get(at + 1) == Some(&"->")).then(|| t[at + 2].to_string());
        map.insert(
            path,
            (
                t[0].to_string(),
                t[1].to_string(),
                t[2..at - 2].join(" "),
                target,
            ),
        );
    }
    map
}

#[test]
fn squashfs_matches_unsquashfs() {
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("hostname");
    fs::write(&host, b"edge-01\n").unwrap();
    let entries = tree(&host);
    let image = build(&entries, &options(Compression::default())).unwrap();
    assert_eq!(image.bytes.len() % 4096, 0);
    assert!(image.size <= image.bytes.len() as u64);
    assert!(image.bytes.len() as u64 - image.size < 4096);
    assert!(image.bytes[image.size as usize..].iter().all(|&b| b == 0));
    let img = dir.path().join("root.img");
    fs::write(&img, &image.bytes).unwrap();

    let info = String::from_utf8_lossy(&run("unsquashfs", &["-s", s(&img)]).stdout).into_owned();
    assert!(info.contains("Compression zstd"), "{info}");
    assert!(info.contains("Block size 131072"), "{info}");
    assert!(
        info.contains(&format!("Filesystem size {} bytes", image.size)),
        "{info}"
    );

    let ls = listing(&img);
    let get = |path: &str| {
        ls.get(path)
            .unwrap_or_else(|| panic!("{path} not listed: {ls:?}"))
    };
    assert_eq!(get("/").0, "drwxr-xr-x");
    assert_eq!(get("/usr/bin/tool").0, "-rwsr-xr-x");
    assert_eq!(get("/usr/bin/tool").1, "0/0");
    assert_eq!(get("/usr/lib/big.bin").2, "1500000");
    assert_eq!(get("/etc/empty").2, "0");
    assert_eq!(get("/bin").0, "lrwxrwxrwx");
    assert_eq!(get("/bin").3.as_deref(), Some("usr/bin"));
    assert_eq!(get("/dev/console").0, "crw-------");
    assert_eq!(get("/dev/console").2, "5, 1");
    assert_eq!(get("/dev/vda").0, "brw-rw----");
    assert_eq!(get("/dev/vda").2, "254, 0");
    assert_eq!(get("/home/user").0, "drwx------");
    assert_eq!(get("/home/user").1, "1000/1000");
    assert_eq!(get("/home/user/notes").1, "1000/100");
    assert_eq!(get("/var/empty").0, "drwxrwxrwt");
    for implicit in ["/usr", "/usr/lib", "/a", "/a/b/c/d", "/dev", "/home"] {
        assert_eq!(get(implicit).0, "drwxr-xr-x", "{implicit}");
        assert_eq!(get(implicit).1, "0/0", "{implicit}");
    }
    // /usr /usr/bin /usr/lib /etc /dev /a /a/b /a/b/c /a/b/c/d /var /home
    assert_eq!(ls.len(), entries.len() + 11, "{ls:?}");

    // Extract and compare contents, modes, owners, links, devices.
    // Device nodes need root; without it, extract everything else.
    let out = dir.path().join("out");
    let root = is_root();
    let mut args = vec!["-d", s(&out), s(&img)];
    if !root {
        args.extend(["/usr", "/etc", "/bin", "/a", "/var", "/home"]);
    }
    run("unsquashfs", &args);
    for e in &entries {
        let on_disk = out.join(e.path.archive_name());
        if !root && matches!(e.node, Node::CharDev { .. } | Node::BlockDev { .. }) {
            continue;
        }
        let md = fs::symlink_metadata(&on_disk).unwrap();
        if !matches!(e.node, Node::Symlink(_)) {
            assert_eq!(md.mode() & 0o7777, e.mode, "{}", e.path);
        }
        if root {
            assert_eq!((md.uid(), md.gid()), (e.uid, e.gid), "{}", e.path);
        }
        match &e.node {
            Node::Dir => assert!(md.is_dir()),
            Node::File(FileData::Bytes(b)) => {
                assert!(fs::read(&on_disk).unwrap() == *b, "{}", e.path)
            }
            Node::File(FileData::Host(h)) => {
                assert_eq!(fs::read(&on_disk).unwrap(), fs::read(h).unwrap())
            }
            Node::Symlink(t) => assert_eq!(fs::read_link(&on_disk).unwrap(), Path::new(t)),
            &Node::CharDev { major, minor } | &Node::BlockDev { major, minor } => {
                let is_char = matches!(e.node, Node::CharDev { .. });
                assert_eq!(md.file_type().is_char_device(), is_char, "{}", e.path);
                assert_eq!(md.file_type().is_block_device(), !is_char, "{}", e.path);
                let rdev = md.rdev();
                let got_major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
                let got_minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
                assert_eq!(
                    (got_major, got_minor),
                    (major.into(), minor.into()),
                    "{}",
                    e.path
                );
            }
        }
    }
}

#[test]
fn squashfs_is_reproducible() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for d in [&a, &b] {
        fs::write(d.path().join("hostname"), b"edge-01\n").unwrap();
    }
    let first = tree(&a.path().join("hostname"));
    let mut second = tree(&b.path().join("hostname"));
    second.reverse();
    let opts = options(Compression::default());
    let x = build(&first, &opts).unwrap();
    let y = build(&second, &opts).unwrap();
    assert!(
        x == y,
        "same entries in another order and directory gave other bytes"
    );
    // The thread count changes nothing (1 = no parallel pre-compression).
    for threads in [1, 2, 3] {
        let mut opts = options(Compression::default());
        opts.threads = NonZeroUsize::new(threads);
        assert!(build(&first, &opts).unwrap() == x, "{threads} threads");
    }
    // The mtime is the only time that goes in.
    let mut later = options(Compression::default());
    later.mtime += 1;
    assert!(build(&first, &later).unwrap() != x);
}

#[test]
fn squashfs_other_compressors() {
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("hostname");
    fs::write(&host, b"edge-01\n").unwrap();
    let entries: Vec<Entry> = tree(&host)
        .into_iter()
        .filter(|e| !matches!(e.node, Node::CharDev { .. } | Node::BlockDev { .. }))
        .collect();
    for (compression, name) in [
        (Compression::Xz, "xz"),
        (Compression::Gzip, "gzip"),
        (Compression::Zstd { level: 3 }, "zstd"),
    ] {
        let mut opts = options(compression);
        opts.block_size = 65536;
        let image = build(&entries, &opts).unwrap();
        let img = dir.path().join(format!("{name}.img"));
        fs::write(&img, &image.bytes).unwrap();
        let info =
            String::from_utf8_lossy(&run("unsquashfs", &["-s", s(&img)]).stdout).into_owned();
        assert!(info.contains(&format!("Compression {name}")), "{info}");
        assert!(info.contains("Block size 65536"), "{info}");
        let out = dir.path().join(name);
        run("unsquashfs", &["-d", s(&out), s(&img)]);
        for e in &entries {
            if let Node::File(FileData::Bytes(b)) = &e.node {
                let got = fs::read(out.join(e.path.archive_name())).unwrap();
                assert!(got == *b, "{name}: {}", e.path);
            }
        }
    }
}

#[test]
fn squashfs_rejects_bad_entries() {
    let opts = Options::default();
    let f = || entry("/x", bytes(b"x"), 0o644);
    let err = build(&[f(), f()], &opts).unwrap_err();
    assert!(matches!(err, SquashfsError::Duplicate(_)), "{err}");
    let err = build(&[f(), entry("/x/y", bytes(b""), 0o644)], &opts).unwrap_err();
    assert!(matches!(err, SquashfsError::ParentNotDir { .. }), "{err}");
    let err = build(&[entry("/x", bytes(b""), 0o10644)], &opts).unwrap_err();
    assert!(
        matches!(err, SquashfsError::BadMode { mode: 0o10644, .. }),
        "{err}"
    );
    let dev = Node::CharDev {
        major: 4096,
        minor: 0,
    };
    let err = build(&[entry("/c", dev, 0o600)], &opts).unwrap_err();
    assert!(matches!(err, SquashfsError::BadDevice { .. }), "{err}");
    let err = build(&[entry("/l", Node::Symlink(String::new()), 0o777)], &opts).unwrap_err();
    assert!(matches!(err, SquashfsError::BadSymlink { .. }), "{err}");
    let err = build(&[entry("/", bytes(b""), 0o755)], &opts).unwrap_err();
    assert!(matches!(err, SquashfsError::RootNotDir), "{err}");
    let mut root = entry("/", Node::Dir, 0o755);
    root.uid = 5;
    assert!(matches!(
        build(&[root], &opts),
        Err(SquashfsError::RootOwner { uid: 5, .. })
    ));
    let bad = Options {
        block_size: 3000,
        ..opts
    };
    assert!(matches!(
        build(&[], &bad),
        Err(SquashfsError::BadBlockSize(3000))
    ));
    let bad = Options {
        compression: Compression::Zstd { level: 0 },
        ..opts
    };
    assert!(matches!(
        build(&[], &bad),
        Err(SquashfsError::BadZstdLevel(0))
    ));
    let missing = Node::File(FileData::Host("/nonexistent/azl-edge-test".into()));
    let err = build(&[entry("/m", missing, 0o644)], &opts).unwrap_err();
    let text = format!(
        "{err}: {}",
        std::error::Error::source(&err)
            .map(|s| s.to_string())
            .unwrap_or_default()
    );
    assert!(text.contains("/nonexistent/azl-edge-test"), "{text}");
}

#[test]
fn squashfs_empty_image() {
    let image = build(&[], &Options::default()).unwrap();
    assert_eq!(image.bytes.len(), 4096);
    assert_eq!(&image.bytes[..4], b"hsqs");
}
