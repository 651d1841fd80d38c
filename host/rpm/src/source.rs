//! Where a repository's files come from. Every read is capped: a source
//! never returns more than `max` bytes and says so when the file is longer.
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{url}: {err}")]
    Read {
        url: String,
        err: azl_fileread::ReadError,
    },
    #[error("`{0}` is not a repository location this build can read (file:///… or a directory)")]
    Unsupported(String),
}

/// A repository's base location.
pub trait Source {
    /// For messages: the base URL.
    fn url(&self) -> String;
    /// The file at `href` (relative, already checked by the caller), at
    /// most `max` bytes.
    fn get(&self, href: &str, max: u64) -> Result<Vec<u8>, SourceError>;
}

/// A repository in a local directory (`baseurl = "file:///srv/repo"`).
#[derive(Debug, Clone)]
pub struct LocalDir {
    pub root: PathBuf,
}

impl LocalDir {
    /// From a `file://` URL or a plain path.
    pub fn from_url(url: &str) -> Result<LocalDir, SourceError> {
        let path = match url.strip_prefix("file://") {
            Some(p) if p.starts_with('/') => p,
            Some(_) => return Err(SourceError::Unsupported(url.to_string())),
            None if url.contains("://") => return Err(SourceError::Unsupported(url.to_string())),
            None => url,
        };
        Ok(LocalDir {
            root: PathBuf::from(path),
        })
    }
}

impl Source for LocalDir {
    fn url(&self) -> String {
        format!("file://{}", self.root.display())
    }

    fn get(&self, href: &str, max: u64) -> Result<Vec<u8>, SourceError> {
        let p: &Path = &self.root.join(href);
        azl_fileread::read(p, max).map_err(|err| SourceError::Read {
            url: format!("{}/{href}", self.url()),
            err,
        })
    }
}
