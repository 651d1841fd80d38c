//! Where a repository's files come from. Every read is capped: a source
//! never returns more than `max` bytes and says so when the file is longer.
//!
//! [`open`] picks the source from the base URL: `file:///…` or a plain
//! path is a [`LocalDir`], `http://` and `https://` are [`Http`]
//! (see [`http`] for its caps, timeouts and redirect rule); anything else is
//! refused with the URL.
pub mod http;

pub use http::{Http, HttpError, HttpOptions};

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{url}: {err}")]
    Read {
        url: String,
        err: azl_fileread::ReadError,
    },
    #[error("`{0}` is not a repository location this build can read (file:///…, a path, http:// or https://)")]
    Unsupported(String),
    #[error("{url}: {err}")]
    Http {
        url: String,
        #[source]
        err: HttpError,
    },
}

impl SourceError {
    /// The URL the error is about.
    pub fn url(&self) -> &str {
        match self {
            SourceError::Read { url, .. } | SourceError::Http { url, .. } => url,
            SourceError::Unsupported(url) => url,
        }
    }
}

/// A repository's base location.
pub trait Source {
    /// For messages: the base URL.
    fn url(&self) -> String;
    /// The file at `href` (relative, already checked by the caller), at
    /// most `max` bytes.
    fn get(&self, href: &str, max: u64) -> Result<Vec<u8>, SourceError>;
}

/// The source for `baseurl`, by its scheme: `file://` or a plain path
/// → [`LocalDir`]; `http://`, `https://` → [`Http`] with the default
/// [`HttpOptions`]; anything else → [`SourceError::Unsupported`].
pub fn open(baseurl: &str) -> Result<Box<dyn Source>, SourceError> {
    open_with(baseurl, HttpOptions::default())
}

/// [`open`], with `http` for an `http://` or `https://` base.
pub fn open_with(baseurl: &str, http: HttpOptions) -> Result<Box<dyn Source>, SourceError> {
    let lower = baseurl.get(..8).unwrap_or(baseurl).to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Ok(Box::new(Http::with_options(baseurl, http)?));
    }
    Ok(Box::new(LocalDir::from_url(baseurl)?))
}

/// A repository in a local directory (`baseurl = "file:///srv/repo"`).
#[derive(Debug, Clone)]
pub struct LocalDir {
    pub root: PathBuf,
}

impl LocalDir {
    /// From a `file://` URL (absolute) or a plain path.
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn open_picks_the_source_by_scheme() {
        assert_eq!(open("file:///srv/repo").unwrap().url(), "file:///srv/repo");
        assert_eq!(open("/srv/repo").unwrap().url(), "file:///srv/repo");
        assert_eq!(
            open("http://127.0.0.1:8080/repo/").unwrap().url(),
            "http://127.0.0.1:8080/repo"
        );
        assert_eq!(
            open("HTTPS://example.org/r").unwrap().url(),
            "HTTPS://example.org/r"
        );
        assert_eq!(open("repo").unwrap().url(), "file://repo");
        for bad in ["ftp://x/r", "file://relative", "rsync://x"] {
            let e = open(bad).err().unwrap();
            assert!(
                matches!(&e, SourceError::Unsupported(u) if u == bad),
                "{bad}: {e}"
            );
            assert!(e.to_string().contains(bad), "{e}");
        }
    }
}
