//! `imagegen.lock`: the exact packages of an image — name,
//! `[epoch:]version-release`, arch, repository and the sha256 of the .rpm
//! file. `imagegen lock` writes it from a resolution; `imagegen build
//! --locked` installs exactly these and fails, naming the package, when a
//! repository no longer has one of them byte for byte. The file is plain
//! TOML, written in a fixed order so the same set always gives the same
//! bytes (its sha256 goes into the signed manifest).
//!
//! ```toml
//! # imagegen.lock: written by `imagegen lock`; `imagegen build --locked` installs exactly this.
//! version = 1
//!
//! [[package]]
//! name = "busybox"
//! evr = "1.36.1-1"
//! arch = "aarch64"
//! repo = "base"
//! sha256 = "3b9c…"
//! ```
use super::Installed;
use azl_rpm::primary::Package;
use azl_rpm::repomd::Algorithm;
use azl_rpm::solve::Repo;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The lock file's name, next to the image config.
pub const FILE: &str = "imagegen.lock";
/// Largest lock file read.
pub const MAX: u64 = 16 << 20;
/// Format version written and read.
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub name: String,
    pub evr: String,
    pub arch: String,
    pub repo: String,
    pub sha256: String,
}

impl Entry {
    pub fn nevra(&self) -> String {
        format!("{}-{}.{}", self.name, self.evr, self.arch)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    pub version: u32,
    #[serde(default, rename = "package")]
    pub packages: Vec<Entry>,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{path}: {err}")]
    Read {
        path: PathBuf,
        err: azl_fileread::ReadError,
    },
    #[error("{path}: {msg}")]
    Syntax { path: PathBuf, msg: String },
    #[error("writing {path}: {err}")]
    Write { path: PathBuf, err: std::io::Error },
    #[error("{path}: lock format version {got}; this imagegen reads version {VERSION}")]
    Version { path: PathBuf, got: u32 },
    #[error("{path}: package {nevra}: {why}")]
    Entry {
        path: PathBuf,
        nevra: String,
        why: &'static str,
    },
    #[error("imagegen.lock: {nevra} is locked to repository {repo}, which the image config does not define")]
    NoRepo { nevra: String, repo: String },
    #[error("imagegen.lock: repository {repo} no longer has {nevra} (sha256 {sha256}); run `imagegen lock` to take what it has now")]
    Gone {
        nevra: String,
        repo: String,
        sha256: String,
    },
    #[error("imagegen.lock: repository {repo} has {nevra} with another content (sha256 {got}, locked {want})")]
    Changed {
        nevra: String,
        repo: String,
        got: String,
        want: String,
    },
}

impl Lock {
    /// The lock of what was installed.
    pub fn of(installed: &[Installed]) -> Lock {
        Lock {
            version: VERSION,
            packages: installed
                .iter()
                .map(|i| Entry {
                    name: i.name.clone(),
                    evr: i.evr.clone(),
                    arch: i.arch.clone(),
                    repo: i.repo.clone(),
                    sha256: i.sha256.clone(),
                })
                .collect(),
        }
    }

    /// The file's text (fixed order, one form).
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "# {FILE}: written by `imagegen lock`; `imagegen build --locked` installs exactly this.\nversion = {}\n",
            self.version
        );
        for p in &self.packages {
            s.push_str(&format!(
                "\n[[package]]\nname = {}\nevr = {}\narch = {}\nrepo = {}\nsha256 = {}\n",
                quote(&p.name),
                quote(&p.evr),
                quote(&p.arch),
                quote(&p.repo),
                quote(&p.sha256)
            ));
        }
        s
    }

    /// sha256 of [`Lock::to_text`].
    pub fn digest(&self) -> [u8; 32] {
        let d = ring::digest::digest(&ring::digest::SHA256, self.to_text().as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        out
    }

    /// Write the lock to `path` atomically (a temp file in the same
    /// directory, synced, renamed over it).
    pub fn write(&self, path: &Path) -> Result<(), LockError> {
        use std::io::Write;
        let werr = |err: std::io::Error| LockError::Write {
            path: path.to_path_buf(),
            err,
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(werr)?;
        tmp.write_all(self.to_text().as_bytes()).map_err(werr)?;
        tmp.as_file().sync_all().map_err(werr)?;
        tmp.persist(path).map_err(|e| werr(e.error))?;
        Ok(())
    }

    /// Read and check `path`.
    pub fn read(path: &Path) -> Result<Lock, LockError> {
        let text = azl_fileread::read_to_string(path, MAX).map_err(|err| LockError::Read {
            path: path.to_path_buf(),
            err,
        })?;
        Lock::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Lock, LockError> {
        let lock: Lock = toml::from_str(text).map_err(|e| LockError::Syntax {
            path: path.to_path_buf(),
            msg: e.message().trim_end().to_string(),
        })?;
        if lock.version != VERSION {
            return Err(LockError::Version {
                path: path.to_path_buf(),
                got: lock.version,
            });
        }
        let mut seen = std::collections::BTreeSet::new();
        for p in &lock.packages {
            let bad = |why| LockError::Entry {
                path: path.to_path_buf(),
                nevra: p.nevra(),
                why,
            };
            if p.name.is_empty() || p.evr.is_empty() || p.arch.is_empty() || p.repo.is_empty() {
                return Err(bad("name, evr, arch and repo must not be empty"));
            }
            if p.sha256.len() != 64
                || !p
                    .sha256
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            {
                return Err(bad("sha256 must be 64 lower-case hex digits"));
            }
            if !seen.insert((p.name.as_str(), p.arch.as_str())) {
                return Err(bad("is locked twice"));
            }
        }
        Ok(lock)
    }

    /// Each locked package in `repos` (index of its repository), matched
    /// by name, EVR, arch and — where the metadata has a sha256 — its
    /// checksum (the fetched file is checked against the lock again).
    pub fn find<'a>(&self, repos: &'a [Repo]) -> Result<Vec<(usize, &'a Package)>, LockError> {
        let mut out = Vec::with_capacity(self.packages.len());
        for e in &self.packages {
            let (i, repo) = repos
                .iter()
                .enumerate()
                .find(|(_, r)| r.name == e.repo)
                .ok_or_else(|| LockError::NoRepo {
                    nevra: e.nevra(),
                    repo: e.repo.clone(),
                })?;
            let same = |p: &&Package| {
                p.name == e.name
                    && p.arch == e.arch
                    && p.evr.as_ref().is_some_and(|v| v.to_string() == e.evr)
            };
            let candidates: Vec<&Package> = repo.packages.iter().filter(same).collect();
            let exact = candidates.iter().copied().find(|p| match &p.checksum {
                Some(c) if c.kind == Algorithm::Sha256 => c.hex == e.sha256,
                _ => true,
            });
            match (exact, candidates.first()) {
                (Some(p), _) => out.push((i, p)),
                (None, Some(p)) => {
                    return Err(LockError::Changed {
                        nevra: e.nevra(),
                        repo: e.repo.clone(),
                        got: p
                            .checksum
                            .as_ref()
                            .map(|c| c.hex.clone())
                            .unwrap_or_default(),
                        want: e.sha256.clone(),
                    })
                }
                (None, None) => {
                    return Err(LockError::Gone {
                        nevra: e.nevra(),
                        repo: e.repo.clone(),
                        sha256: e.sha256.clone(),
                    })
                }
            }
        }
        Ok(out)
    }

    /// The fetched package `got` is the locked one.
    pub fn check_fetched(&self, got: &Installed) -> Result<(), LockError> {
        match self
            .packages
            .iter()
            .find(|e| e.name == got.name && e.arch == got.arch)
        {
            Some(e) if e.sha256 == got.sha256 && e.evr == got.evr => Ok(()),
            Some(e) => Err(LockError::Changed {
                nevra: e.nevra(),
                repo: e.repo.clone(),
                got: got.sha256.clone(),
                want: e.sha256.clone(),
            }),
            None => Ok(()),
        }
    }
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn installed(name: &str, sha: char) -> Installed {
        Installed {
            name: name.into(),
            evr: "1:2.0-3".into(),
            arch: "aarch64".into(),
            repo: "base".into(),
            sha256: sha.to_string().repeat(64),
            license: "MIT".into(),
            location: format!("Packages/{name}.rpm"),
        }
    }

    #[test]
    fn round_trips_byte_for_byte() {
        let lock = Lock::of(&[installed("a\"b", 'a'), installed("busybox", 'b')]);
        let text = lock.to_text();
        let back = Lock::parse(Path::new("imagegen.lock"), &text).unwrap();
        assert_eq!(back, lock);
        assert_eq!(back.to_text(), text);
        assert_eq!(back.digest(), lock.digest());
    }

    #[test]
    fn bad_locks_are_refused_with_the_package_named() {
        let p = Path::new("x.lock");
        let e = Lock::parse(p, "version = 2\n").unwrap_err();
        assert!(e.to_string().contains("version 2"), "{e}");
        let mut l = Lock::of(&[installed("a", 'a')]);
        l.packages[0].sha256 = "ABC".into();
        let e = Lock::parse(p, &l.to_text()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.lock: package a-1:2.0-3.aarch64: sha256 must be 64 lower-case hex digits"
        );
        let two = Lock::of(&[installed("a", 'a'), installed("a", 'b')]);
        assert!(Lock::parse(p, &two.to_text())
            .unwrap_err()
            .to_string()
            .contains("locked twice"));
        let e = Lock::parse(p, "version = 1\nextra = 1\n").unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
    }
}
