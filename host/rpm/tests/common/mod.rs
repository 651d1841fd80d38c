//! Test repositories built with the reference tools: RPMs from spec text
//! with `rpmbuild`, repodata with `createrepo_c`. Tests that need them are
//! `#[ignore]`d when the tools are missing (scripts/setup.sh installs them).
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

/// A package to build: spec header lines (after Name/Version/Release) and
/// files to install (`path`, contents).
pub struct Spec<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub release: &'a str,
    pub arch: &'a str,
    pub header: &'a str,
    pub files: &'a [(&'a str, &'a str)],
    /// rpmbuild's `_binary_payload`, e.g. `w19.zstdio`, `w6.xzdio`, `w9.gzdio`.
    pub payload: &'a str,
}

impl Spec<'_> {
    pub fn simple<'a>(name: &'a str, version: &'a str, header: &'a str) -> Spec<'a> {
        Spec {
            name,
            version,
            release: "1",
            arch: "noarch",
            header,
            files: &[],
            payload: "w19.zstdio",
        }
    }
}

/// Builds `spec` into `out` (flat), returns the .rpm path.
pub fn build(top: &Path, out: &Path, spec: &Spec) -> PathBuf {
    let specs = top.join("SPECS");
    std::fs::create_dir_all(&specs).unwrap();
    let mut install = String::new();
    let mut files = String::new();
    for (path, body) in spec.files {
        let dir = Path::new(path).parent().unwrap().display().to_string();
        install.push_str(&format!(
            "mkdir -p %{{buildroot}}{dir}\nprintf '%s' '{body}' > %{{buildroot}}{path}\n"
        ));
        files.push_str(&format!("{path}\n"));
    }
    // rpmbuild refuses `BuildArch: aarch64` on another host ("no
    // compatible architectures"), but `--target aarch64` alone builds a
    // package without binaries for it.
    let build_arch = if spec.arch == "noarch" {
        "BuildArch: noarch\n"
    } else {
        ""
    };
    let text = format!(
        "Name: {}\nVersion: {}\nRelease: {}\nSummary: test package {}\nLicense: MIT\n{build_arch}{}\n%description\nTest package.\n%install\n{install}\n%files\n{files}",
        spec.name, spec.version, spec.release, spec.name, spec.header
    );
    let sp = specs.join(format!(
        "{}-{}-{}.{}.spec",
        spec.name, spec.version, spec.release, spec.arch
    ));
    std::fs::write(&sp, text).unwrap();
    let st = Command::new("rpmbuild")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .arg("--define")
        .arg(format!("_binary_payload {}", spec.payload))
        .arg("--define")
        .arg("_build_id_links none")
        .args(["--target", spec.arch, "-bb", "--quiet"])
        .arg(&sp)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "rpmbuild: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let file = format!(
        "{}-{}-{}.{}.rpm",
        spec.name, spec.version, spec.release, spec.arch
    );
    let built = top.join("RPMS").join(spec.arch).join(&file);
    std::fs::create_dir_all(out).unwrap();
    let dest = out.join(&file);
    std::fs::copy(&built, &dest).unwrap();
    dest
}

/// `createrepo_c` over `dir`.
pub fn createrepo(dir: &Path, extra: &[&str]) {
    let st = Command::new("createrepo_c")
        .args(["--quiet", "--no-database"])
        .args(extra)
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "createrepo_c: {}",
        String::from_utf8_lossy(&st.stderr)
    );
}

fn sha256_hex(p: &Path) -> String {
    let o = Command::new("sha256sum").arg(p).output().unwrap();
    String::from_utf8(o.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Replace the repository's xz primary by a zstd one (made by the `zstd`
/// tool) and rewrite its repomd.xml entry: location, checksum, size.
pub fn recompress_primary_zstd(repo: &Path) {
    let md_path = repo.join("repodata/repomd.xml");
    let md = std::fs::read_to_string(&md_path).unwrap();
    let start = md.find("<data type=\"primary\">").unwrap();
    let end = start + md[start..].find("</data>").unwrap();
    let entry = &md[start..end];
    let href = entry
        .split("href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let xz = repo.join(href);
    let plain = repo.join("repodata/primary.xml");
    let o = Command::new("xz").arg("-dc").arg(&xz).output().unwrap();
    std::fs::write(&plain, &o.stdout).unwrap();
    let zst = repo.join("repodata/primary.xml.zst");
    let st = Command::new("zstd")
        .args(["-q", "-f", "-o"])
        .arg(&zst)
        .arg(&plain)
        .status()
        .unwrap();
    assert!(st.success());
    let old_sum = entry
        .split("<checksum type=\"sha256\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap();
    let old_size = entry
        .split("<size>")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap();
    let new_entry = entry
        .replace(href, "repodata/primary.xml.zst")
        .replace(old_sum, &sha256_hex(&zst))
        .replace(
            &format!("<size>{old_size}</size>"),
            &format!("<size>{}</size>", std::fs::metadata(&zst).unwrap().len()),
        );
    std::fs::write(&md_path, md.replace(entry, &new_entry)).unwrap();
}

/// The packages of a repository made by `createrepo`.
pub fn load_primary(dir: &Path) -> Result<Vec<azl_rpm::primary::Package>, String> {
    use azl_rpm::source::Source;
    let src = azl_rpm::source::LocalDir::from_url(&format!("file://{}", dir.display())).unwrap();
    let md = src
        .get("repodata/repomd.xml", azl_rpm::limits::REPOMD_MAX)
        .map_err(|e| e.to_string())?;
    let md = azl_rpm::repomd::Repomd::parse(&md).map_err(|e| e.to_string())?;
    let p = azl_rpm::metadata::load(&src, md.get("primary").unwrap()).map_err(|e| e.to_string())?;
    azl_rpm::primary::parse(&p).map_err(|e| e.to_string())
}

/// What Debian's dnf would install: `dnf install --assumeno` against the
/// repository alone (no system repos, plugins, GPG or network: a
/// `file://` repository from `--repofrompath`, a fresh install root and
/// cache), for aarch64, without weak dependencies. The package set is
/// read from the transaction table dnf prints ("Installing:",
/// "Installing dependencies:" rows, not "Skipping packages with
/// conflicts:": name, arch, [epoch:]version-release,
/// repo, size) and returned as `name-[E:]V-R.arch`, the form
/// [`azl_rpm::primary::Package::nevra`] prints. `Err` is dnf's output
/// when it resolved nothing.
pub fn dnf_install(
    repo: &Path,
    install: &[&str],
    exclude: &[&str],
) -> Result<std::collections::BTreeSet<String>, String> {
    let root = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("dnf");
    cmd.arg("--installroot")
        .arg(root.path().join("root"))
        .args(["--releasever", "1", "--setopt=reposdir=/dev/null"])
        .arg(format!(
            "--setopt=cachedir={}",
            root.path().join("cache").display()
        ))
        .args(["--setopt=gpgcheck=0", "--noplugins", "--repofrompath"])
        .arg(format!("r,{}", repo.display()))
        .args(["--repo", "r", "--forcearch", "aarch64", "--assumeno"])
        .arg("--setopt=install_weak_deps=False");
    for x in exclude {
        cmd.arg(format!("--exclude={x}"));
    }
    cmd.arg("install").args(install).env("COLUMNS", "200");
    let o = cmd.output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let all = format!("{out}{}", String::from_utf8_lossy(&o.stderr));
    if !out.contains("Dependencies resolved.") || !out.contains("Transaction Summary") {
        return Err(all);
    }
    let mut set = std::collections::BTreeSet::new();
    let mut in_table = false;
    for line in out.lines() {
        if line.starts_with("Installing") {
            in_table = true;
            continue;
        }
        // "Skipping packages with conflicts:" lists candidates dnf passed
        // over (best=False), not installed ones.
        if line.starts_with("Skipping") || line.starts_with("Transaction Summary") {
            break;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        if in_table && line.starts_with(' ') && f.len() >= 5 && f[0] != "replacing" {
            set.insert(format!("{}-{}.{}", f[0], f[2], f[1]));
        }
    }
    Ok(set)
}

/// A deterministic xorshift64 stream from `seed` (non-zero), for
/// generated repositories.
pub fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// A synthetic repository for benchmarks: `n` packages `p0…`, each
/// requiring up to three earlier ones (some through a versioned
/// capability, some through a rich `or`), in memory (no rpmbuild).
pub fn synthetic(n: usize) -> Vec<azl_rpm::primary::Package> {
    use azl_rpm::dep::{Cmp, Dep, Rich};
    use azl_rpm::evr::Evr;
    use azl_rpm::primary::{Package, Requirement};
    let mut out = Vec::with_capacity(n);
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    for i in 0..n {
        let name = format!("p{i}");
        let evr = Evr::new(0, &format!("{}.0", 1 + i % 3), Some("1"));
        let mut requires = Vec::new();
        for k in 0..3 {
            if i == 0 {
                break;
            }
            let j = (next() as usize) % i;
            let dep = match k {
                0 => Rich::Dep(Dep::any(&format!("p{j}"))),
                1 => Rich::Dep(Dep::new(
                    &format!("cap{j}"),
                    Cmp::Ge,
                    Evr::new(0, "1.0", None),
                )),
                _ => Rich::Or(vec![
                    Rich::Dep(Dep::any(&format!("p{j}"))),
                    Rich::Dep(Dep::any(&format!("p{}", (j + 1) % i))),
                ]),
            };
            requires.push(Requirement { dep, pre: false });
        }
        out.push(Package {
            name: name.clone(),
            arch: if i % 2 == 0 { "noarch" } else { "aarch64" }.into(),
            evr: Some(evr.clone()),
            location: format!("{name}.rpm"),
            provides: vec![
                Dep::new(&name, Cmp::Eq, evr.clone()),
                Dep::new(&format!("cap{i}"), Cmp::Eq, evr),
            ],
            requires,
            ..Package::default()
        });
    }
    out
}
pub mod http;
/// The fixture builders shared with the end-to-end tests.
#[allow(unused_imports)]
pub mod spec {
    pub use azl_rpm::testing::{build_spec, Key};
}
