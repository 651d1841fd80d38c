//! Packages from RPM repositories (docs/packages.md): the `[[repo]]`s are
//! loaded, what `[packages] install` asks for (and the `[kernel] rpm`) is
//! resolved — or taken exactly from the lock file — each RPM fetched,
//! checked against its repository's checksum and key and unpacked in
//! memory (all by `azl-rpm`; RPMs are kept in the sha256-addressed cache
//! `${AZL_CACHE}/rpms`, so a locked rebuild works offline), and the files merged into one tree that
//! [`place`] adds to the image's file set. No scriptlet is run; the
//! result lists the ones skipped.
//!
//! The kernel package's files do not go into the root: [`kernel`] puts
//! them in a cache directory that is used like `[kernel] path`.
pub mod kernel;
pub mod lock;
pub mod place;

use crate::config::packages::{PackageSettings, RepoSettings};
use azl_rpm::cache::Cache;
use azl_rpm::keys::{KeyError, Keys};
use azl_rpm::package::entries::Options;
use azl_rpm::package::scriptlets::Skipped;
use azl_rpm::package::tree::{Tree, TreeError};
use azl_rpm::package::{self, PackageError, Trust};
use azl_rpm::primary::Package;
use azl_rpm::repo::RepoError;
use azl_rpm::solve::{self, Repo, Request, SolveError};
use azl_rpm::source::{Source, SourceError};
use lock::Lock;
use std::path::{Path, PathBuf};

/// Largest key file read.
const KEY_MAX: u64 = 1 << 20;

/// One installed package, as the lock file and the SBOM record it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub name: String,
    /// `[epoch:]version-release`.
    pub evr: String,
    pub arch: String,
    pub repo: String,
    /// Of the .rpm file.
    pub sha256: String,
    pub license: String,
    /// Relative to the repository's base.
    pub location: String,
}

/// What [`install`] produced.
#[derive(Debug, Default)]
pub struct Packages {
    /// Sorted by name, EVR, arch (the solver's order).
    pub installed: Vec<Installed>,
    /// Every file of every package but the kernel's.
    pub tree: Tree,
    /// The kernel package's files (`[kernel] rpm`).
    pub kernel: Option<(Installed, Vec<azl_rpm::package::entries::Item>)>,
    pub scriptlets: Vec<Skipped>,
}

#[derive(Debug, thiserror::Error)]
pub enum PackagesError {
    #[error("repository {repo}: {err}")]
    Source { repo: String, err: SourceError },
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error("repository {repo}: {}: {err}", path.display())]
    KeyRead {
        repo: String,
        path: PathBuf,
        err: azl_fileread::ReadError,
    },
    #[error("repository {repo}: {err}")]
    Key { repo: String, err: KeyError },
    #[error("repository {repo}: {err}")]
    Fetch {
        repo: String,
        err: azl_rpm::cache::FetchError,
    },
    #[error("RPM cache: {0}")]
    Cache(#[from] azl_rpm::cache::CacheError),
    #[error("repository {repo}: {nevra} has no checksum in the repository metadata")]
    NoChecksum { repo: String, nevra: String },
    #[error("cannot resolve [packages]: {0}")]
    Solve(#[from] SolveError),
    #[error("repository {repo}: {err}")]
    Package { repo: String, err: PackageError },
    #[error("repository {repo}: {location} is {got}, but the metadata names {want}")]
    NotTheNamed {
        repo: String,
        location: String,
        got: String,
        want: String,
    },
    #[error("{0}")]
    Tree(#[from] TreeError),
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    #[error("[kernel] rpm = {0:?}: no package of that name was installed")]
    NoKernelPackage(String),
    #[error("[packages] allow_devices names {0:?}, which is not installed")]
    UnusedDeviceAllowance(String),
}

struct Loaded {
    settings: RepoSettings,
    source: Box<dyn Source>,
    keys: Option<Keys>,
}

/// A key or CA file of repository `r` (at most [`KEY_MAX`] bytes).
fn read_key_file(r: &RepoSettings, path: &Path) -> Result<Vec<u8>, PackagesError> {
    azl_fileread::read(path, KEY_MAX).map_err(|err| PackagesError::KeyRead {
        repo: r.name.clone(),
        path: path.to_path_buf(),
        err,
    })
}

fn open_repo(r: &RepoSettings) -> Result<(Loaded, Vec<Package>), PackagesError> {
    let http = azl_rpm::source::HttpOptions {
        ca_certs: match &r.sslcacert {
            Some(path) => Some(read_key_file(r, path)?),
            None => None,
        },
        ..Default::default()
    };
    let source =
        azl_rpm::source::open_with(&r.baseurl, http).map_err(|err| PackagesError::Source {
            repo: r.name.clone(),
            err,
        })?;
    let keys = match &r.gpgkey {
        None => None,
        Some(path) => {
            let bytes = read_key_file(r, path)?;
            let k = Keys::from_armored(&path.display().to_string(), &bytes).map_err(|err| {
                PackagesError::Key {
                    repo: r.name.clone(),
                    err,
                }
            })?;
            Some(k)
        }
    };
    let repo_keys = keys.as_ref().filter(|_| r.repo_gpgcheck);
    let packages = azl_rpm::repo::load(&r.name, source.as_ref(), repo_keys)?;
    Ok((
        Loaded {
            settings: r.clone(),
            source,
            keys,
        },
        packages,
    ))
}

/// Resolve (or follow `lock`), fetch, check and unpack everything `p`
/// asks for.
/// `cache` is the build's `${AZL_CACHE}`; RPMs are kept in its `rpms/`.
pub fn install(
    p: &PackageSettings,
    locked: Option<&Lock>,
    cache: &std::path::Path,
) -> Result<Packages, PackagesError> {
    let mut loaded = Vec::new();
    let mut repos = Vec::new();
    for r in &p.repos {
        let (l, packages) = open_repo(r)?;
        loaded.push(l);
        repos.push(Repo {
            name: r.name.clone(),
            packages,
        });
    }
    let mut install = p.install.clone();
    install.extend(p.kernel_rpm.iter().cloned());
    if locked.is_none() {
        add_filelists(&loaded, &mut repos, &install)?;
    }
    let chosen: Vec<(usize, &Package)> = match locked {
        Some(lock) => lock.find(&repos)?,
        None => {
            let req = Request {
                install,
                exclude: p.exclude.clone(),
                weak_deps: p.weak_deps,
                ..Request::default()
            };
            let solution = solve::resolve(&repos, &req)?;
            solution
                .packages
                .iter()
                .map(|c| {
                    let i = repos.iter().position(|r| r.name == c.repo).unwrap_or(0);
                    (i, c.package)
                })
                .collect()
        }
    };
    let cache = Cache::new(cache.join("rpms"));
    let mut out = Packages::default();
    for (i, meta) in chosen {
        let Some(repo) = loaded.get(i) else { continue };
        let (installed, checked) = fetch(repo, meta, &cache)?;
        if let Some(lock) = locked {
            lock.check_fetched(&installed)?;
        }
        let opts = Options {
            allow_devices: p.allow_devices.contains(&installed.name),
        };
        let items = checked
            .unpack(&opts)
            .map_err(|err| PackagesError::Package {
                repo: repo.settings.name.clone(),
                err,
            })?;
        out.scriptlets.extend(checked.scriptlets());
        if p.kernel_rpm.as_deref() == Some(installed.name.as_str()) {
            out.kernel = Some((installed.clone(), items));
        } else {
            out.tree.add(&checked.nevra, items)?;
        }
        out.installed.push(installed);
    }
    if let Some(a) = p
        .allow_devices
        .iter()
        .find(|a| !out.installed.iter().any(|i| &i.name == *a))
    {
        return Err(PackagesError::UnusedDeviceAllowance(a.clone()));
    }
    if let Some(k) = &p.kernel_rpm {
        if out.kernel.is_none() {
            return Err(PackagesError::NoKernelPackage(k.clone()));
        }
    }
    Ok(out)
}

/// When a requirement names a path no primary file list has, every
/// repository's filelists are read for those paths (as dnf does).
fn add_filelists(
    loaded: &[Loaded],
    repos: &mut [Repo],
    install: &[String],
) -> Result<(), PackagesError> {
    let wanted =
        azl_rpm::repo::unlisted_paths(repos.iter().map(|r| r.packages.as_slice()), install);
    if wanted.is_empty() {
        return Ok(());
    }
    for (l, r) in loaded.iter().zip(repos.iter_mut()) {
        let keys = l.keys.as_ref().filter(|_| l.settings.repo_gpgcheck);
        azl_rpm::repo::add_files(&r.name, l.source.as_ref(), keys, &mut r.packages, &wanted)?;
    }
    Ok(())
}

/// The RPM `meta` names, from `cache` or read with its declared size as
/// the cap, and checked ([`package::check`]); it must be the package the
/// metadata says.
fn fetch(
    repo: &Loaded,
    meta: &Package,
    cache: &Cache,
) -> Result<(Installed, package::Checked), PackagesError> {
    let name = &repo.settings.name;
    let perr = |err| PackagesError::Package {
        repo: name.clone(),
        err,
    };
    let sum = meta
        .checksum
        .as_ref()
        .ok_or_else(|| PackagesError::NoChecksum {
            repo: name.clone(),
            nevra: meta.nevra(),
        })?;
    let bytes = azl_rpm::cache::fetch_package(
        repo.source.as_ref(),
        &meta.location,
        meta.package_size,
        sum,
        cache,
    )
    .map_err(|err| PackagesError::Fetch {
        repo: name.clone(),
        err,
    })?
    .bytes;
    let trust = match (&repo.keys, repo.settings.gpgcheck) {
        (Some(k), true) => Trust::Keys(k),
        _ => Trust::NoSignature,
    };
    let checked =
        package::check(&meta.location, &bytes, meta.checksum.as_ref(), trust).map_err(perr)?;
    let want = meta.nevra();
    if checked.nevra != want {
        return Err(PackagesError::NotTheNamed {
            repo: name.clone(),
            location: meta.location.clone(),
            got: checked.nevra.clone(),
            want,
        });
    }
    let sha256 = azl_rpm::metadata::digest_hex(azl_rpm::repomd::Algorithm::Sha256, &bytes);
    let installed = Installed {
        name: checked.name.clone(),
        evr: checked.evr.to_string(),
        arch: checked.arch.clone(),
        repo: name.clone(),
        sha256,
        license: checked.license.clone(),
        location: meta.location.clone(),
    };
    Ok((installed, checked))
}
