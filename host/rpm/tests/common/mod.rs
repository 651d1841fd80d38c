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
    let text = format!(
        "Name: {}\nVersion: {}\nRelease: {}\nSummary: test package {}\nLicense: MIT\nBuildArch: {}\n{}\n%description\nTest package.\n%install\n{install}\n%files\n{files}",
        spec.name, spec.version, spec.release, spec.name, spec.arch, spec.header
    );
    let sp = specs.join(format!("{}.spec", spec.name));
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

pub mod spec;
