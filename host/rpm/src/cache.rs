//! A content-addressed store of RPM files, so that a rebuild from the lock
//! needs no network: `<root>/sha256/<first 2 hex>/<hex>.rpm` (and
//! `sha512/…` for repositories that name packages by sha512). imagegen's
//! root is `${AZL_CACHE}/rpms` (the build's cache directory).
//!
//! Guarantees:
//! - [`Cache::get`] returns only bytes whose digest is the name they are
//!   stored under: an entry that does not match is removed and reported
//!   ([`Lookup::Removed`]), never returned;
//! - [`Cache::put`] checks the digest, writes a temporary file created
//!   exclusively (`O_CREAT|O_EXCL|O_NOFOLLOW`) in the entry's directory,
//!   fsyncs it, makes it read-only and renames it over the entry, then
//!   fsyncs the directory: a reader sees a whole entry or none, and builds
//!   running at once each rename a complete file of the same content;
//! - no symlink is followed: entries are opened with `O_NOFOLLOW`, and the
//!   two directory levels under the root are refused if they are symlinks;
//! - nothing needs root: files are `0444`, directories the umask's.
//!
//! [`fetch_package`] is the one way packages are read: a cache hit never
//! contacts the source.
use crate::metadata::digest_hex;
use crate::repomd::{relative_href_ok, Algorithm, Checksum};
use crate::source::{Source, SourceError};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The largest RPM file the cache stores or reads back.
pub const ENTRY_MAX: u64 = 4 << 30;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{path}: {err}")]
    Io {
        path: PathBuf,
        #[source]
        err: std::io::Error,
    },
    #[error("{path}: is a symlink or not a directory; the cache follows no links")]
    NotDir { path: PathBuf },
    #[error("not stored: the bytes are {got}, not {want}")]
    Digest { got: String, want: String },
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("{url}: the location leaves the repository")]
    Location { url: String },
    #[error("{url}: is {got} bytes, the repository metadata says {want}")]
    Size { url: String, got: u64, want: u64 },
    #[error("{url}: is {got}, the repository metadata says {want}")]
    Checksum {
        url: String,
        got: String,
        want: String,
    },
}

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup {
    Hit(Vec<u8>),
    Miss,
    /// There was an entry, but its bytes did not match its name (or it was
    /// not a regular file): it was removed, and counts as a miss.
    Removed {
        path: PathBuf,
        reason: String,
    },
}

impl Lookup {
    pub fn bytes(self) -> Option<Vec<u8>> {
        match self {
            Lookup::Hit(b) => Some(b),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
    move |err| CacheError::Io {
        path: path.to_path_buf(),
        err,
    }
}

impl Cache {
    /// The cache at `root` (created on the first `put`).
    pub fn new(root: impl Into<PathBuf>) -> Cache {
        Cache { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The entry for `sum` (whether or not it exists).
    pub fn path(&self, sum: &Checksum) -> PathBuf {
        let shard = sum.hex.get(..2).unwrap_or("00");
        self.root
            .join(sum.kind.name())
            .join(shard)
            .join(format!("{}.rpm", sum.hex))
    }

    /// The stored bytes for `sum`, checked against it.
    pub fn get(&self, sum: &Checksum) -> Result<Lookup, CacheError> {
        let path = self.path(sum);
        let file = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Lookup::Miss),
            // ELOOP: the entry is a symlink.
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return self.remove(path, "is a symlink".into())
            }
            Err(e) => return Err(io(&path)(e)),
        };
        let meta = file.metadata().map_err(io(&path))?;
        if !meta.is_file() {
            return self.remove(path, "is not a regular file".into());
        }
        if meta.len() > ENTRY_MAX {
            return self.remove(path, format!("is larger than {ENTRY_MAX} bytes"));
        }
        let mut bytes = Vec::new();
        file.take(ENTRY_MAX.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(io(&path))?;
        let got = digest_hex(sum.kind, &bytes);
        if got != sum.hex {
            return self.remove(path, format!("content is {} {got}", sum.kind.name()));
        }
        Ok(Lookup::Hit(bytes))
    }

    fn remove(&self, path: PathBuf, reason: String) -> Result<Lookup, CacheError> {
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&path)(e)),
        }
        Ok(Lookup::Removed { path, reason })
    }

    /// A directory under the root, created if missing, refused if it is a
    /// symlink or not a directory.
    fn dir(&self, path: &Path) -> Result<(), CacheError> {
        match std::fs::create_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(path)(e)),
        }
        let meta = std::fs::symlink_metadata(path).map_err(io(path))?;
        if !meta.is_dir() {
            return Err(CacheError::NotDir {
                path: path.to_path_buf(),
            });
        }
        Ok(())
    }

    /// Store `bytes` as the entry for `sum` (refused if they do not match).
    pub fn put(&self, sum: &Checksum, bytes: &[u8]) -> Result<PathBuf, CacheError> {
        let got = digest_hex(sum.kind, bytes);
        if got != sum.hex {
            return Err(CacheError::Digest {
                got: format!("{} {got}", sum.kind.name()),
                want: format!("{} {}", sum.kind.name(), sum.hex),
            });
        }
        let path = self.path(sum);
        std::fs::create_dir_all(&self.root).map_err(io(&self.root))?;
        let kind_dir = self.root.join(sum.kind.name());
        self.dir(&kind_dir)?;
        let dir = match path.parent() {
            Some(d) => d.to_path_buf(),
            None => kind_dir,
        };
        self.dir(&dir)?;
        let (tmp, mut file) = self.temp(&dir)?;
        let written = (|| {
            file.write_all(bytes)?;
            file.set_permissions(std::fs::Permissions::from_mode(0o444))?;
            file.sync_all()?;
            drop(file);
            std::fs::rename(&tmp, &path)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(io(&path)(e));
        }
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&dir))?;
        Ok(path)
    }

    /// A new file in `dir` that no one else has opened.
    fn temp(&self, dir: &Path) -> Result<(PathBuf, File), CacheError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        loop {
            let seq = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
            let p = dir.join(format!(".tmp-{}-{now}-{seq}", std::process::id()));
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&p)
            {
                Ok(f) => return Ok((p, f)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io(&p)(e)),
            }
        }
    }
}

/// Where a fetched package came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Cache,
    Source,
}

/// A package's bytes, checked against `size` and `checksum`.
#[derive(Debug)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub origin: Origin,
    /// A corrupt entry removed before fetching again, with its reason.
    pub removed: Option<(PathBuf, String)>,
}

/// The RPM at `location` of `source`, `size` bytes with `checksum`: from
/// `cache` when it has it (the source is not contacted), else read with
/// `size` as the cap, checked for the exact size and the checksum, and
/// stored in the cache.
pub fn fetch_package(
    source: &dyn Source,
    location: &str,
    size: u64,
    checksum: &Checksum,
    cache: &Cache,
) -> Result<Fetched, FetchError> {
    let url = format!("{}/{location}", source.url());
    let removed = match cache.get(checksum)? {
        Lookup::Hit(bytes) => {
            return Ok(Fetched {
                bytes,
                origin: Origin::Cache,
                removed: None,
            })
        }
        Lookup::Miss => None,
        Lookup::Removed { path, reason } => Some((path, reason)),
    };
    if !relative_href_ok(location) {
        return Err(FetchError::Location { url });
    }
    let bytes = source.get(location, size.min(ENTRY_MAX))?;
    if bytes.len() as u64 != size {
        return Err(FetchError::Size {
            url,
            got: bytes.len() as u64,
            want: size,
        });
    }
    let got = digest_hex(checksum.kind, &bytes);
    if got != checksum.hex {
        return Err(FetchError::Checksum {
            url,
            got: format!("{} {got}", checksum.kind.name()),
            want: format!("{} {}", checksum.kind.name(), checksum.hex),
        });
    }
    cache.put(checksum, &bytes)?;
    Ok(Fetched {
        bytes,
        origin: Origin::Source,
        removed,
    })
}

/// A sha256 checksum from hex, for callers that keep only the digest (a
/// lock file).
pub fn sha256(hex: &str) -> Option<Checksum> {
    Checksum::parse(Some(Algorithm::Sha256.name()), hex).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn sum(bytes: &[u8]) -> Checksum {
        sha256(&digest_hex(Algorithm::Sha256, bytes)).unwrap()
    }

    #[test]
    fn put_get_layout_and_read_only() {
        let d = tempfile::tempdir().unwrap();
        let c = Cache::new(d.path().join("rpms"));
        let s = sum(b"rpm bytes");
        assert!(matches!(c.get(&s).unwrap(), Lookup::Miss));
        let p = c.put(&s, b"rpm bytes").unwrap();
        assert_eq!(
            p,
            d.path()
                .join("rpms/sha256")
                .join(&s.hex[..2])
                .join(format!("{}.rpm", s.hex))
        );
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o444);
        assert_eq!(c.get(&s).unwrap().bytes().unwrap(), b"rpm bytes");
        // Again (a concurrent build storing the same package): replaced whole.
        c.put(&s, b"rpm bytes").unwrap();
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
        let e = c.put(&s, b"other bytes").unwrap_err();
        assert!(matches!(e, CacheError::Digest { .. }), "{e}");
    }

    #[test]
    fn corrupt_entries_and_symlinks_are_removed_never_returned() {
        let d = tempfile::tempdir().unwrap();
        let c = Cache::new(d.path());
        let s = sum(b"good");
        let p = c.put(&s, b"good").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(&p, b"evil").unwrap();
        match c.get(&s).unwrap() {
            Lookup::Removed { path, reason } => {
                assert_eq!(path, p);
                assert!(reason.starts_with("content is sha256 "), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert!(!p.exists());
        let outside = d.path().join("outside");
        std::fs::write(&outside, b"good").unwrap();
        std::os::unix::fs::symlink(&outside, &p).unwrap();
        assert!(matches!(c.get(&s).unwrap(), Lookup::Removed { .. }));
        assert!(outside.exists() && std::fs::symlink_metadata(&p).is_err());
        // A symlinked shard directory is refused on put.
        let s2 = sum(b"second");
        let shard = d.path().join("sha256").join(&s2.hex[..2]);
        std::os::unix::fs::symlink(d.path().join("elsewhere"), &shard).unwrap();
        let e = c.put(&s2, b"second").unwrap_err();
        assert!(matches!(e, CacheError::NotDir { .. }), "{e}");
    }
}
