//! One repository's package list: `repodata/repomd.xml` (capped), then
//! the primary metadata it names, loaded and checked by [`metadata`]
//! (size and checksum before and after decompression), then parsed by
//! [`primary`]. Every error names the repository. When a requirement
//! names a path no primary file list has ([`unlisted_paths`]), the
//! repository's filelists are read the same way for just those paths
//! ([`add_files`]).
use crate::filelists::{self, FilelistsError};
use crate::keys::Keys;
use crate::metadata::{self, MetadataError};
use crate::primary::{self, Package, PrimaryError};
use crate::repomd_sig;
use crate::source::Source;
use std::collections::BTreeSet;

pub const REPOMD: &str = "repodata/repomd.xml";

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("repository {repo}: {err}")]
    Repomd {
        repo: String,
        err: repomd_sig::LoadError,
    },
    #[error("repository {repo}: {REPOMD} lists no primary metadata")]
    NoPrimary { repo: String },
    #[error("repository {repo}: {err}")]
    Metadata { repo: String, err: MetadataError },
    #[error("repository {repo}: {err}")]
    Primary { repo: String, err: PrimaryError },
    #[error("repository {repo}: {REPOMD} lists no filelists metadata, and {path} is required")]
    NoFilelists { repo: String, path: String },
    #[error("repository {repo}: {err}")]
    Filelists { repo: String, err: FilelistsError },
}

/// The packages of the repository `name` at `src`; with `keys`
/// (repo_gpgcheck) repomd.xml must carry a valid signature by one of them.
pub fn load(name: &str, src: &dyn Source, keys: Option<&Keys>) -> Result<Vec<Package>, RepoError> {
    let repo = || name.to_string();
    let md = repomd_sig::load(src, keys).map_err(|err| RepoError::Repomd { repo: repo(), err })?;
    let data = md
        .get("primary")
        .ok_or_else(|| RepoError::NoPrimary { repo: repo() })?;
    let xml = metadata::load(src, data).map_err(|err| RepoError::Metadata { repo: repo(), err })?;
    primary::parse(&xml).map_err(|err| RepoError::Primary { repo: repo(), err })
}

/// The paths that a requirement of any package in `repos`, or an entry of
/// `install`, names and that no package's primary file list has.
pub fn unlisted_paths<'a>(
    repos: impl IntoIterator<Item = &'a [Package]> + Clone,
    install: &[String],
) -> BTreeSet<String> {
    let listed: BTreeSet<&str> = repos
        .clone()
        .into_iter()
        .flatten()
        .flat_map(|p| p.files.iter().map(String::as_str))
        .collect();
    let required = repos
        .into_iter()
        .flatten()
        .flat_map(|p| p.requires.iter().flat_map(|r| r.dep.deps()))
        .map(|d| d.name.as_str())
        .chain(install.iter().filter_map(|i| i.split_whitespace().next()));
    required
        .filter(|n| n.starts_with('/') && !listed.contains(n))
        .map(str::to_string)
        .collect()
}

/// Reads the filelists of repository `name` (repomd checked again, with
/// `keys` when repo_gpgcheck) and adds to each of its `packages` the
/// `wanted` paths it owns; returns how many it added.
pub fn add_files(
    name: &str,
    src: &dyn Source,
    keys: Option<&Keys>,
    packages: &mut [Package],
    wanted: &BTreeSet<String>,
) -> Result<usize, RepoError> {
    let repo = || name.to_string();
    let md = repomd_sig::load(src, keys).map_err(|err| RepoError::Repomd { repo: repo(), err })?;
    let data = md.get("filelists").ok_or_else(|| RepoError::NoFilelists {
        repo: repo(),
        path: wanted.iter().next().cloned().unwrap_or_default(),
    })?;
    let xml = metadata::load(src, data).map_err(|err| RepoError::Metadata { repo: repo(), err })?;
    let owners =
        filelists::parse(&xml, wanted).map_err(|err| RepoError::Filelists { repo: repo(), err })?;
    let mut added = 0;
    for p in packages.iter_mut() {
        let Some(files) = p.checksum.as_ref().and_then(|c| owners.get(&c.hex)) else {
            continue;
        };
        for f in files {
            if !p.files.contains(f) {
                p.files.push(f.clone());
                added += 1;
            }
        }
    }
    Ok(added)
}
