//! Repository metadata made by the reference tools (rpmbuild,
//! createrepo_c) read back: every package, its EVR, checksum, location,
//! license and dependency lists as `rpm -qp` reports them; each
//! compression createrepo_c writes; and tampered metadata refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod common;
use azl_rpm::dep::Rich;
use azl_rpm::metadata::{self, MetadataError};
use azl_rpm::repomd::Repomd;
use azl_rpm::source::LocalDir;
use common::{build, createrepo, have, load_primary, Spec};
use std::process::Command;

/// The reference tools are installed by scripts/setup.sh; without them
/// these tests fail (they are the point of the tests).
fn tools() {
    for t in ["rpm", "rpmbuild", "createrepo_c", "zstd"] {
        assert!(have(t), "{t} is missing: run scripts/setup.sh");
    }
}

fn rpm_q(rpm: &std::path::Path, what: &str) -> Vec<String> {
    let o = Command::new("rpm")
        .args(["-qp", what])
        .arg(rpm)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn reads_what_rpm_reports() {
    tools();
    let w = tempfile::tempdir().unwrap();
    let repo = w.path().join("repo");
    let hello = build(
        &w.path().join("top"),
        &repo,
        &Spec {
            files: &[("/usr/bin/hello", "#!/bin/sh\n"), ("/usr/share/hello/a", "a")],
            ..Spec::simple(
                "hello",
                "1.2",
                "Epoch: 1\nRequires: libfoo >= 2.0\nRequires: (bar or baz)\nProvides: greeting = 1.0\nConflicts: oldhello < 1.0\nObsoletes: hello-legacy < 2\nRecommends: extra",
            )
        },
    );
    build(
        &w.path().join("top"),
        &repo,
        &Spec::simple("libfoo", "2.1", "Provides: libfoo.so.2()(64bit)"),
    );
    createrepo(&repo, &[]);
    let pkgs = load_primary(&repo).unwrap();
    assert_eq!(pkgs.len(), 2);
    let h = pkgs.iter().find(|p| p.name == "hello").unwrap();
    assert_eq!(h.nevra(), "hello-1:1.2-1.noarch");
    assert_eq!(h.license, "MIT");
    assert_eq!(h.location, "hello-1.2-1.noarch.rpm");
    let bytes = std::fs::read(&hello).unwrap();
    let sum = h.checksum.as_ref().unwrap();
    assert_eq!(metadata::digest_hex(sum.kind, &bytes), sum.hex);
    assert_eq!(h.package_size, bytes.len() as u64);
    // Dependencies as rpm prints them (rpm omits its own rpmlib() ones from primary).
    let mut provides: Vec<String> = h.provides.iter().map(|d| d.to_string()).collect();
    provides.sort();
    let mut want = rpm_q(&hello, "--provides");
    want.sort();
    assert_eq!(provides, want);
    let req: Vec<String> = h.requires.iter().map(|r| r.dep.to_string()).collect();
    for r in rpm_q(&hello, "--requires") {
        if r.starts_with("rpmlib(") {
            continue;
        }
        assert!(req.contains(&r), "{r} missing from {req:?}");
    }
    assert!(matches!(
        h.requires
            .iter()
            .find(|r| r.dep.to_string() == "(bar or baz)")
            .unwrap()
            .dep,
        Rich::Or(_)
    ));
    assert_eq!(h.conflicts[0].to_string(), rpm_q(&hello, "--conflicts")[0]);
    assert_eq!(h.obsoletes[0].to_string(), rpm_q(&hello, "--obsoletes")[0]);
    assert_eq!(h.recommends[0].to_string(), "extra");
    assert!(
        h.files.contains(&"/usr/bin/hello".to_string()),
        "{:?}",
        h.files
    );
}

#[test]
fn reads_every_compression_createrepo_writes() {
    tools();
    let w = tempfile::tempdir().unwrap();
    for (i, c) in ["gz", "xz"].iter().enumerate() {
        let repo = w.path().join(format!("repo-{c}"));
        build(
            &w.path().join(format!("top{i}")),
            &repo,
            &Spec::simple("one", "1", ""),
        );
        createrepo(&repo, &["--general-compress-type", c]);
        let pkgs = load_primary(&repo).unwrap_or_else(|e| panic!("{c}: {e}"));
        assert_eq!(pkgs[0].nevra(), "one-1-1.noarch", "{c}");
    }
    // Debian's createrepo_c cannot write zstd (Fedora's does): recompress
    // its primary with the zstd tool and point repomd.xml at it.
    let repo = w.path().join("repo-zstd");
    build(
        &w.path().join("top-z"),
        &repo,
        &Spec::simple("one", "1", ""),
    );
    createrepo(&repo, &["--general-compress-type", "xz"]);
    common::recompress_primary_zstd(&repo);
    let md = std::fs::read_to_string(repo.join("repodata/repomd.xml")).unwrap();
    assert!(md.contains("primary.xml.zst"), "{md}");
    assert_eq!(load_primary(&repo).unwrap()[0].nevra(), "one-1-1.noarch");
}

#[test]
fn refuses_tampered_metadata() {
    tools();
    let w = tempfile::tempdir().unwrap();
    let repo = w.path().join("repo");
    build(&w.path().join("top"), &repo, &Spec::simple("one", "1", ""));
    createrepo(&repo, &[]);
    let md = std::fs::read(repo.join("repodata/repomd.xml")).unwrap();
    let m = Repomd::parse(&md).unwrap();
    let p = repo.join(&m.get("primary").unwrap().href);
    let good = std::fs::read(&p).unwrap();
    // One byte changed: the stored checksum no longer matches.
    let mut bad = good.clone();
    let last = bad.len() - 9;
    bad[last] ^= 0x55;
    std::fs::write(&p, &bad).unwrap();
    let e = load_primary(&repo).unwrap_err();
    assert!(e.contains("checksum is sha256"), "{e}");
    // Replaced by other valid metadata of the same size: still the checksum.
    std::fs::write(&p, &good).unwrap();
    let src = LocalDir::from_url(repo.to_str().unwrap()).unwrap();
    let mut d = m.get("primary").unwrap().clone();
    d.size = Some(good.len() as u64 + 5);
    assert!(matches!(
        metadata::load(&src, &d),
        Err(MetadataError::Size { .. })
    ));
    d.size = Some(1 << 40);
    let e = metadata::load(&src, &d).unwrap_err().to_string();
    assert!(e.contains("more than"), "{e}");
    // A declared open size smaller than the real one: refused while decompressing.
    let mut d = m.get("primary").unwrap().clone();
    d.open_size = Some(10);
    let e = metadata::load(&src, &d).unwrap_err();
    assert!(matches!(e, MetadataError::Expands { max: 10, .. }), "{e}");
}

/// rpm's own rpmvercmp (through its Lua `rpm.vercmp`) agrees with ours.
#[test]
fn version_order_agrees_with_rpm() {
    tools();
    let pairs = [
        ("1.0", "1.0"),
        ("1.0", "1.1"),
        ("1.10", "1.9"),
        ("1.0~rc1", "1.0"),
        ("1.0^git1", "1.0"),
        ("1.0^git1", "1.0.1"),
        ("1.0a", "1.0"),
        ("1.0a", "1.0b"),
        ("2.0.0", "2.0"),
        ("1_0", "1.0"),
        ("001", "1"),
        ("1.0~~", "1.0~"),
        ("a", "1"),
        ("6.6.12", "6.6.9"),
        ("1:1", "2"),
        ("1.0-2.azl3", "1.0-10.azl3"),
        ("5.4p1", "5.4"),
        ("0.9~beta", "0.9~alpha"),
        ("2:0.1-1", "1:9.9-9"),
        ("1.0-1", "1.0"),
    ];
    let lua: String = pairs
        .iter()
        .map(|(a, b)| {
            format!("do local a=rpm.ver('{a}') local b=rpm.ver('{b}') r[#r+1]=(a<b and -1 or (a==b and 0 or 1)) end")
        })
        .collect::<Vec<_>>()
        .join(" ");
    let o = Command::new("rpm")
        .arg("--eval")
        .arg(format!(
            "%{{lua: local r={{}} {lua} print(table.concat(r,' '))}}"
        ))
        .output()
        .unwrap();
    let out = String::from_utf8(o.stdout).unwrap();
    let theirs: Vec<i32> = out
        .split_whitespace()
        .map(|s| s.parse().unwrap_or_else(|_| panic!("rpm printed {out:?}")))
        .collect();
    assert_eq!(theirs.len(), pairs.len(), "{out}");
    for ((a, b), t) in pairs.iter().zip(theirs) {
        let (x, y) = (
            azl_rpm::evr::Evr::parse(a).unwrap(),
            azl_rpm::evr::Evr::parse(b).unwrap(),
        );
        let ours = x.cmp_rpm(&y) as i32;
        assert_eq!(ours, t, "vercmp({a}, {b})");
    }
}
