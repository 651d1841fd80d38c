//! One repository's package list: `repodata/repomd.xml` (capped), then
//! the primary metadata it names, loaded and checked by [`metadata`]
//! (size and checksum before and after decompression), then parsed by
//! [`primary`]. Every error names the repository.
use crate::keys::Keys;
use crate::metadata::{self, MetadataError};
use crate::primary::{self, Package, PrimaryError};
use crate::repomd_sig;
use crate::source::Source;

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
