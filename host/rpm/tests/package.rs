//! RPM files end to end: built by rpmbuild (zstd, xz, gzip payloads; a
//! symlink, a hard link, a directory, a %pre script), signed by rpmsign
//! with a gpg key, then checked and unpacked by azl-rpm and compared with
//! what `rpm -qp` says of the same file. Hostile packages (bad digests,
//! bad or missing signatures, truncation, `..` paths, escaping links,
//! conflicts) are each refused with their reason.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod common;

use azl_rpm::package::entries::{EntryError, Kind, Options};
use azl_rpm::package::tree::{Tree, TreeError};
use azl_rpm::package::{check, Keys, PackageError, Trust};
use azl_rpm::repomd::Checksum;
use common::spec::{build_spec, Key};
use std::path::{Path, PathBuf};
use std::process::Command;

const SPEC: &str = r#"Name: web
Version: 1.0
Release: 1
Summary: test package web
License: MIT AND BSD-2-Clause
BuildArch: noarch
%description
Test package.
%pre
getent group web >/dev/null || groupadd -r web
getent passwd web >/dev/null || useradd -r -g web -d /var/lib/web web
exit 0
%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/var/lib/web %{buildroot}/etc
printf 'echo web\n' > %{buildroot}/usr/bin/web
chmod 0755 %{buildroot}/usr/bin/web
ln %{buildroot}/usr/bin/web %{buildroot}/usr/bin/web-hard
ln -s web %{buildroot}/usr/bin/web-link
printf 'port=80\n' > %{buildroot}/etc/web.conf
%files
%attr(0755,root,root) /usr/bin/web
%attr(0755,root,root) /usr/bin/web-hard
/usr/bin/web-link
%config(noreplace) /etc/web.conf
%dir %attr(0750,root,root) /var/lib/web
"#;

fn web(dir: &Path, payload: &str) -> PathBuf {
    build_spec(
        &dir.join(format!("top-{payload}")),
        &dir.join(format!("out-{payload}")),
        ("web", "1.0", "1", "noarch"),
        SPEC,
        payload,
    )
}

fn sha256(bytes: &[u8]) -> Checksum {
    let hex: String = ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Checksum::parse(Some("sha256"), &hex).unwrap()
}

/// `path mode` lines rpm itself reports for the package's files.
fn rpm_says(rpm: &Path) -> Vec<(String, u32)> {
    let o = Command::new("rpm")
        .args([
            "-qp",
            "--nosignature",
            "--qf",
            "[%{FILENAMES} %{FILEMODES:octal}\n]",
        ])
        .arg(rpm)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (p, m) = l.rsplit_once(' ').unwrap();
            (p.to_string(), u32::from_str_radix(m, 8).unwrap() & 0o7777)
        })
        .collect()
}

#[test]
fn signed_packages_of_every_payload_compression_unpack_like_rpm_lists_them() {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::new(dir.path(), "azl test <test@azl-edge.invalid>");
    let keys = Keys::from_armored("test key", &key.public()).unwrap();
    for payload in ["w19.zstdio", "w6.xzdio", "w9.gzdio"] {
        let file = web(dir.path(), payload);
        key.sign(&file);
        let bytes = std::fs::read(&file).unwrap();
        let pkg = check("web.rpm", &bytes, Some(&sha256(&bytes)), Trust::Keys(&keys))
            .unwrap_or_else(|e| panic!("{payload}: {e}"));
        assert_eq!(pkg.nevra, "web-1.0-1.noarch");
        assert_eq!(pkg.license, "MIT AND BSD-2-Clause");
        let items = pkg.unpack(&Options::default()).unwrap();
        let mut ours: Vec<(String, u32)> = items.iter().map(|i| (i.path.clone(), i.mode)).collect();
        let mut theirs = rpm_says(&file);
        ours.sort();
        theirs.sort();
        assert_eq!(ours, theirs, "{payload}");
        let get = |p: &str| items.iter().find(|i| i.path == p).unwrap();
        assert_eq!(get("/usr/bin/web-link").kind, Kind::Symlink("web".into()));
        assert_eq!(get("/var/lib/web").kind, Kind::Dir);
        assert!(get("/etc/web.conf").config);
        // One of the two hard-linked names holds the bytes, the other links to it.
        let (a, b) = (&get("/usr/bin/web").kind, &get("/usr/bin/web-hard").kind);
        match (a, b) {
            (Kind::File(c), Kind::HardLink(t)) => {
                assert_eq!(
                    (c.as_slice(), t.as_str()),
                    (&b"echo web\n"[..], "/usr/bin/web")
                )
            }
            (Kind::HardLink(t), Kind::File(c)) => {
                assert_eq!(
                    (c.as_slice(), t.as_str()),
                    (&b"echo web\n"[..], "/usr/bin/web-hard")
                )
            }
            other => panic!("{payload}: hard link pair {other:?}"),
        }
        let mut tree = Tree::new();
        tree.add(&pkg.nevra, items).unwrap();
        let s = pkg.scriptlets();
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!((s[0].kind, s[0].interpreter.as_str()), ("%pre", "/bin/sh"));
        assert_eq!(
            s[0].would,
            [
                "getent group web >/dev/null || groupadd -r web",
                "getent passwd web >/dev/null || useradd -r -g web -d /var/lib/web web"
            ]
        );
    }
}

#[test]
fn signatures_digests_and_truncation_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::new(dir.path(), "azl test <test@azl-edge.invalid>");
    let other = Key::new(dir.path(), "someone else <other@azl-edge.invalid>");
    let keys = Keys::from_armored("repo key", &key.public()).unwrap();
    let file = web(dir.path(), "w19.zstdio");
    let unsigned = std::fs::read(&file).unwrap();
    // Unsigned, with gpgcheck: refused; without: accepted (digests only).
    let e = check("web.rpm", &unsigned, None, Trust::Keys(&keys))
        .err()
        .unwrap();
    assert!(matches!(e, PackageError::Unsigned { .. }), "{e}");
    assert!(e.to_string().contains("is not signed"), "{e}");
    check("web.rpm", &unsigned, None, Trust::NoSignature).unwrap();
    // Signed by another key.
    other.sign(&file);
    let foreign = std::fs::read(&file).unwrap();
    let e = check("web.rpm", &foreign, None, Trust::Keys(&keys))
        .err()
        .unwrap();
    assert!(matches!(e, PackageError::BadSignature { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("no valid signature by a key of repo key"),
        "{e}"
    );
    // The repository's checksum does not match the file.
    let e = check(
        "web.rpm",
        &unsigned,
        Some(&sha256(b"other")),
        Trust::NoSignature,
    )
    .err()
    .unwrap();
    assert!(matches!(e, PackageError::Digest { .. }), "{e}");
    // One payload byte changed: the payload digest (which the signature covers) catches it.
    let mut flipped = unsigned.clone();
    let last = flipped.len() - 20;
    flipped[last] ^= 0x40;
    let e = check("web.rpm", &flipped, None, Trust::NoSignature)
        .err()
        .unwrap();
    assert!(
        matches!(
            e,
            PackageError::DigestMismatch {
                what: "payload",
                ..
            }
        ),
        "{e}"
    );
    // Truncated anywhere: refused.
    for cut in [unsigned.len() - 1, unsigned.len() / 2, 200, 10] {
        let e = check("web.rpm", &unsigned[..cut], None, Trust::NoSignature).err();
        assert!(e.is_some(), "cut at {cut} accepted");
    }
}

/// Regression (CI fuzz smoke, target rpm_package): an index entry whose
/// offset or count points past its header's store panicked inside the
/// `rpm` crate; now the framing check refuses it first, for both headers.
#[test]
fn header_entries_outside_their_store_are_refused_before_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(web(dir.path(), "w19.zstdio")).unwrap();
    let be = |b: &[u8], at: usize| u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize;
    // Signature header at 96; the header after it, 8-aligned.
    let sig_end = 96 + 16 + 16 * be(&good, 96 + 8) + be(&good, 96 + 12);
    for start in [96, sig_end.next_multiple_of(8)] {
        // Entry 0: offset at +8, count at +12 of the entry (after the 16-byte intro).
        for (field, value) in [(8, 470_024_192u32), (12, u32::MAX)] {
            let mut bad = good.clone();
            let at = start + 16 + field;
            bad[at..at + 4].copy_from_slice(&value.to_be_bytes());
            let e = check("web.rpm", &bad, None, Trust::NoSignature)
                .err()
                .unwrap();
            assert!(
                matches!(e, PackageError::Frame { .. }),
                "{start}+{field}: {e}"
            );
            assert!(
                e.to_string().contains("web.rpm: not a well-formed RPM"),
                "{e}"
            );
        }
    }
}

fn crafted(files: &[(&str, &[u8])], links: &[(&str, &str)]) -> Vec<u8> {
    let mut b = rpm::PackageBuilder::new("evil", "1.0", "MIT", "noarch", "crafted");
    let dir = tempfile::tempdir().unwrap();
    for (i, (dest, body)) in files.iter().enumerate() {
        let src = dir.path().join(format!("f{i}"));
        std::fs::write(&src, body).unwrap();
        b.with_file(&src, rpm::FileOptions::new(*dest)).unwrap();
    }
    for (dest, target) in links {
        b.with_symlink(rpm::FileOptions::symlink(*dest, *target))
            .unwrap();
    }
    let mut out = Vec::new();
    b.build().unwrap().write(&mut out).unwrap();
    out
}

fn unpack_err(bytes: &[u8]) -> PackageError {
    let pkg = check("evil.rpm", bytes, None, Trust::NoSignature).unwrap();
    match pkg.unpack(&Options::default()) {
        Ok(items) => panic!("accepted: {items:?}"),
        Err(e) => e,
    }
}

#[test]
fn hostile_paths_and_links_are_refused() {
    type Case<'a> = (&'a [(&'a str, &'a [u8])], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case<'_>; 4] = [
        (
            &[("/usr/../../etc/passwd", b"x")],
            &[],
            "has a `.` or `..` component",
        ),
        (
            &[("/usr/./bin/x", b"x")],
            &[],
            "has a `.` or `..` component",
        ),
        (
            &[],
            &[("/usr/lib/x", "../../../../etc/shadow")],
            "points outside the image root",
        ),
        (
            &[],
            &[("/usr/lib/y", "/../../etc/shadow")],
            "points outside the image root",
        ),
    ];
    for (files, links, want) in cases {
        let bytes = crafted(files, links);
        let e = unpack_err(&bytes);
        assert!(e.to_string().contains(want), "{files:?} {links:?}: {e}");
        if want.contains("component") {
            assert!(
                matches!(
                    e,
                    PackageError::Entries {
                        err: EntryError::Path { .. },
                        ..
                    }
                ),
                "{e}"
            );
        }
    }
    // A well-formed crafted package unpacks (the refusals above are the paths, not the builder).
    let ok = crafted(
        &[("/usr/bin/tool", b"#!/bin/sh\n")],
        &[("/usr/bin/t", "tool")],
    );
    let pkg = check("ok.rpm", &ok, None, Trust::NoSignature).unwrap();
    assert_eq!(pkg.unpack(&Options::default()).unwrap().len(), 2);
}

#[test]
fn files_that_conflict_between_packages_are_refused() {
    let a = crafted(&[("/etc/app.conf", b"a=1\n")], &[]);
    let b = crafted(&[("/etc/app.conf", b"a=2\n")], &[]);
    let mut tree = Tree::new();
    for (name, bytes) in [("a-1.0-1.noarch", &a), ("b-1.0-1.noarch", &b)] {
        let items = check(name, bytes, None, Trust::NoSignature)
            .unwrap()
            .unpack(&Options::default())
            .unwrap();
        let r = tree.add(name, items);
        if name.starts_with('b') {
            let e = r.unwrap_err();
            assert!(matches!(e, TreeError::Conflict { .. }), "{e}");
            assert_eq!(
                e.to_string(),
                "`/etc/app.conf` conflicts between a-1.0-1.noarch and b-1.0-1.noarch"
            );
        } else {
            r.unwrap();
        }
    }
}
