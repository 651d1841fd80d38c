//! Test fixtures made with the reference tools (feature `testing`, for
//! this crate's tests and the end-to-end tests): RPMs from whole spec
//! files (`rpmbuild`), OpenPGP keys (`gpg`, batch mode) that sign them
//! (`rpmsign`), repodata (`createrepo_c`). Panics on any failure, with the
//! tool's stderr.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]
use std::path::{Path, PathBuf};
use std::process::Command;

/// `createrepo_c` over `dir` (no sqlite databases).
pub fn createrepo(dir: &Path) {
    run(Command::new("createrepo_c")
        .args(["--quiet", "--no-database"])
        .arg(dir));
}

fn run(cmd: &mut Command) -> std::process::Output {
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// Builds the spec `text` (for `name-version-release.arch`) with the
/// binary payload `payload` (`w19.zstdio`, `w6.xzdio`, `w9.gzdio`) into
/// `out`; returns the .rpm path.
pub fn build_spec(
    top: &Path,
    out: &Path,
    nvra: (&str, &str, &str, &str),
    text: &str,
    payload: &str,
) -> PathBuf {
    let (name, version, release, arch) = nvra;
    let specs = top.join("SPECS");
    std::fs::create_dir_all(&specs).unwrap();
    let sp = specs.join(format!("{name}.spec"));
    std::fs::write(&sp, text).unwrap();
    run(Command::new("rpmbuild")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .arg("--define")
        .arg(format!("_binary_payload {payload}"))
        .arg("--define")
        .arg("_build_id_links none")
        .args(["--target", arch, "-bb", "--quiet"])
        .arg(&sp));
    let file = format!("{name}-{version}-{release}.{arch}.rpm");
    std::fs::create_dir_all(out).unwrap();
    let dest = out.join(&file);
    std::fs::copy(top.join("RPMS").join(arch).join(&file), &dest).unwrap();
    dest
}

/// A throwaway gpg home with one unprotected signing key.
pub struct Key {
    pub home: PathBuf,
    pub uid: String,
}

impl Key {
    pub fn new(dir: &Path, uid: &str) -> Key {
        let home = dir.join(format!("gnupg-{}", uid.replace(['@', ' ', '<', '>'], "_")));
        std::fs::create_dir_all(&home).unwrap();
        std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        run(Command::new("gpg").env("GNUPGHOME", &home).args([
            "--batch",
            "--passphrase",
            "",
            "--quick-gen-key",
            uid,
            "rsa2048",
            "sign",
            "never",
        ]));
        Key {
            home,
            uid: uid.to_string(),
        }
    }

    /// The armored public key.
    pub fn public(&self) -> Vec<u8> {
        run(Command::new("gpg")
            .env("GNUPGHOME", &self.home)
            .args(["--batch", "--armor", "--export", &self.uid]))
        .stdout
    }

    /// `gpg --armor --detach-sign`: writes `<file>.asc` and returns its path.
    pub fn detach_sign(&self, file: &Path) -> PathBuf {
        let asc = PathBuf::from(format!("{}.asc", file.display()));
        run(Command::new("gpg")
            .env("GNUPGHOME", &self.home)
            .args(["--batch", "--yes", "--armor", "--detach-sign"])
            .args(["--local-user", &self.uid, "--output"])
            .arg(&asc)
            .arg(file));
        asc
    }

    /// `rpmsign --addsign` in place.
    pub fn sign(&self, rpm: &Path) {
        run(Command::new("rpmsign")
            .env("GNUPGHOME", &self.home)
            .arg("--define")
            .arg(format!("_gpg_name {}", self.uid))
            .arg("--define")
            .arg(format!("_gpg_path {}", self.home.display()))
            .arg("--define")
            .arg("__gpg /usr/bin/gpg")
            .arg("--addsign")
            .arg(rpm));
    }
}
