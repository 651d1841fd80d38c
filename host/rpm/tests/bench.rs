//! Benchmark (ignored in the normal suite; `scripts/bench.sh bench_rpm`
//! runs it): resolve + fetch + check + unpack of a generated repository of
//! `AZL_BENCH_PACKAGES` (default 2000) RPMs, against Debian's
//! `dnf --installroot … install` of the same set on the same machine in
//! the same run (goal: ≥ 1.0× dnf's speed). Prints a markdown table
//! between `BENCH-BEGIN` and `BENCH-END`; goals are reported, never
//! asserted.
//!
//! The packages are made with the `rpm` crate's builder (rpmbuild would
//! take minutes for 2000), zstd payloads, noarch, each with two files and
//! up to three requirements on earlier packages (by name, by a versioned
//! capability, by a rich `or`); repodata by createrepo_c. Both sides run
//! without signature checks (the packages are unsigned; digests are still
//! checked by both) and from a cold cache. What each side does differs and
//! the table says so: azl-rpm resolves, copies each RPM into its sha256
//! cache, checks its digests and unpacks the payload into the in-memory
//! tree the image is written from; dnf resolves, copies the RPMs into its
//! cache, and rpm installs them — files on disk and its database.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod common;

use azl_rpm::cache::{fetch_package, Cache};
use azl_rpm::package::entries::Options;
use azl_rpm::package::{check, tree::Tree, Trust};
use azl_rpm::solve::{self, Repo, Request};
use azl_rpm::source::LocalDir;
use common::{have, xorshift};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn count() -> usize {
    std::env::var("AZL_BENCH_PACKAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

/// `n` RPMs `q0…` into `dir`, then repodata.
fn generate(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    for i in 0..n {
        let name = format!("q{i}");
        let mut b = rpm::PackageBuilder::new(&name, "1.0", "MIT", "noarch", "bench package");
        b.using_config(rpm::BuildConfig::default().compression(rpm::CompressionWithLevel::Zstd(3)));
        b.release("1");
        b.provides(rpm::Dependency::eq(format!("qcap{i}"), "1.0"));
        for k in 0..3 {
            if i == 0 {
                break;
            }
            let j = (next() as usize) % i;
            b.requires(match k {
                0 => rpm::Dependency::any(format!("q{j}")),
                1 => rpm::Dependency::greater_eq(format!("qcap{j}"), "1.0"),
                _ => rpm::Dependency::any(format!("(q{j} or q{})", (j + 1) % i)),
            });
        }
        let data: Vec<u8> = (0..2048).map(|k| b"abcdefgh\n"[(k + i) % 9]).collect();
        b.with_file_contents(
            data,
            rpm::FileOptions::new(format!("/usr/share/bench/{name}/data")),
        )
        .unwrap();
        b.with_file_contents(
            format!("#!/bin/sh\necho {name}\n"),
            rpm::FileOptions::new(format!("/usr/bin/{name}")).mode(0o100755),
        )
        .unwrap();
        let mut f = std::fs::File::create(dir.join(format!("{name}.rpm"))).unwrap();
        b.build().unwrap().write(&mut f).unwrap();
    }
    azl_rpm::testing::createrepo(dir);
}

/// Ours: load, resolve, fetch into a fresh cache, check, unpack, merge.
/// Returns the time and the number of packages and files.
fn ours(repo: &Path, names: &[String], work: &Path) -> (Duration, usize, usize) {
    let t = Instant::now();
    let src = LocalDir::from_url(repo.to_str().unwrap()).unwrap();
    let packages = azl_rpm::repo::load("bench", &src, None).unwrap();
    let repos = [Repo {
        name: "bench".into(),
        packages,
    }];
    let req = Request {
        install: names.to_vec(),
        ..Request::default()
    };
    let solution = solve::resolve(&repos, &req).unwrap();
    let cache = Cache::new(work.join("cache"));
    let mut tree = Tree::new();
    let mut files = 0;
    for c in &solution.packages {
        let p = c.package;
        let sum = p.checksum.as_ref().unwrap();
        let got = fetch_package(&src, &p.location, p.package_size, sum, &cache).unwrap();
        let checked = check(&p.location, &got.bytes, Some(sum), Trust::NoSignature).unwrap();
        let items = checked.unpack(&Options::default()).unwrap();
        files += items.len();
        tree.add(&checked.nevra, items).unwrap();
    }
    (t.elapsed(), solution.packages.len(), files)
}

/// dnf: the same request into a fresh install root and cache.
fn dnf(repo: &Path, names: &[String], work: &Path) -> Duration {
    let root = work.join("root");
    let t = Instant::now();
    let o = Command::new("dnf")
        .arg("--installroot")
        .arg(&root)
        .args(["--releasever", "1", "--setopt=reposdir=/dev/null"])
        .arg(format!(
            "--setopt=cachedir={}",
            work.join("dnf-cache").display()
        ))
        .args(["--setopt=gpgcheck=0", "--noplugins", "--repofrompath"])
        .arg(format!("bench,{}", repo.display()))
        .args([
            "--repo",
            "bench",
            "--setopt=install_weak_deps=False",
            "-y",
            "-q",
        ])
        .arg("install")
        .args(names)
        .output()
        .unwrap();
    let took = t.elapsed();
    assert!(
        o.status.success(),
        "dnf install failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let last = names.last().unwrap();
    assert!(
        root.join("usr/bin").join(last).is_file(),
        "dnf did not install {last}"
    );
    took
}

#[test]
#[ignore = "benchmark: scripts/bench.sh bench_rpm"]
fn bench_rpm_resolve_fetch_unpack_vs_dnf() {
    for t in ["createrepo_c", "dnf"] {
        assert!(have(t), "{t} is missing: run scripts/setup.sh");
    }
    let n = count();
    let w = tempfile::tempdir().unwrap();
    let repo = w.path().join("repo");
    let t = Instant::now();
    generate(&repo, n);
    eprintln!("bench: {n} packages generated in {:.1?}", t.elapsed());
    let names: Vec<String> = (0..n).map(|i| format!("q{i}")).collect();
    // Interleaved, 3 rounds; each round from cold caches.
    let (mut a, mut d) = (Vec::new(), Vec::new());
    let mut shape = (0, 0);
    for round in 0..3 {
        let wa = w.path().join(format!("ours-{round}"));
        let (took, pkgs, files) = ours(&repo, &names, &wa);
        assert_eq!(pkgs, n);
        shape = (pkgs, files);
        a.push(took.as_secs_f64());
        d.push(dnf(&repo, &names, &w.path().join(format!("dnf-{round}"))).as_secs_f64());
        eprintln!(
            "bench: round {round}: ours {:.2} s, dnf {:.2} s",
            a[round], d[round]
        );
    }
    a.sort_by(f64::total_cmp);
    d.sort_by(f64::total_cmp);
    let (ma, md) = (a[1], d[1]);
    let speed = md / ma;
    println!("BENCH-BEGIN");
    println!("### Resolve + fetch + unpack, {n} generated RPMs (median of 3, cold caches)\n");
    println!("| | time | |\n|---|---|---|");
    println!(
        "| azl-rpm: resolve, fetch into the sha256 cache, check digests, unpack {} files into the in-memory tree | {ma:.2} s | |",
        shape.1
    );
    println!("| dnf --installroot install (resolve, cache, rpm writes the files and its database) | {md:.2} s | baseline |");
    println!(
        "| speed vs dnf (goal ≥ 1.0×) | {speed:.2}× | {} |",
        if speed >= 1.0 { "pass" } else { "miss" }
    );
    println!("BENCH-END");
}
