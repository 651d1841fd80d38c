//! Reading a file the host tools do not trust — an attestation report, a
//! key, an AK, a manifest — without letting it hang or exhaust the tool:
//! the path must name a regular file (a FIFO would block forever,
//! `/dev/zero` would never end), no larger than a cap the caller names.
//!
//! The file is opened non-blocking (so opening a FIFO returns at once),
//! checked with `fstat` on the open descriptor (no race with a rename), and
//! read with at most `max + 1` bytes requested, so a file that grows after
//! the check is still refused.
#![forbid(unsafe_code)]
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Why a file was not read.
#[derive(Debug)]
pub enum ReadError {
    /// Not a regular file (directory, FIFO, socket, device).
    NotRegular {
        path: PathBuf,
        kind: &'static str,
    },
    /// Larger than the caller allows.
    TooLarge {
        path: PathBuf,
        size: u64,
        max: u64,
    },
    Io {
        path: PathBuf,
        err: std::io::Error,
    },
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotRegular { path, kind } => {
                write!(f, "{}: is a {kind}, not a regular file", path.display())
            }
            Self::TooLarge { path, size, max } => write!(
                f,
                "{}: {size} bytes is larger than the {max} bytes allowed for this file",
                path.display()
            ),
            Self::Io { path, err } => write!(f, "{}: {err}", path.display()),
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { err, .. } => Some(err),
            _ => None,
        }
    }
}

fn kind(ft: std::fs::FileType) -> &'static str {
    if ft.is_dir() {
        "directory"
    } else if ft.is_fifo() {
        "FIFO"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_block_device() {
        "block device"
    } else if ft.is_char_device() {
        "character device"
    } else {
        "special file"
    }
}

/// Open `path` for reading if it is a regular file: non-blocking (a FIFO
/// does not hang the open), then `fstat` on the descriptor. Returns the
/// file and its size.
pub fn open(path: &Path) -> Result<(File, u64), ReadError> {
    let io = |err| ReadError::Io {
        path: path.to_path_buf(),
        err,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.file_type().is_file() {
        return Err(ReadError::NotRegular {
            path: path.to_path_buf(),
            kind: kind(meta.file_type()),
        });
    }
    Ok((file, meta.len()))
}

/// Read all of `path`, a regular file of at most `max` bytes.
pub fn read(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    let io = |err| ReadError::Io {
        path: path.to_path_buf(),
        err,
    };
    let (file, len) = open(path)?;
    if len > max {
        return Err(ReadError::TooLarge {
            path: path.to_path_buf(),
            size: len,
            max,
        });
    }
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    File::take(file, max.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(io)?;
    if out.len() as u64 > max {
        return Err(ReadError::TooLarge {
            path: path.to_path_buf(),
            size: out.len() as u64,
            max,
        });
    }
    Ok(out)
}

/// [`read`], as UTF-8 text.
pub fn read_to_string(path: &Path, max: u64) -> Result<String, ReadError> {
    let bytes = read(path, max)?;
    String::from_utf8(bytes).map_err(|e| ReadError::Io {
        path: path.to_path_buf(),
        err: std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn regular_file_within_the_cap() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"hello").unwrap();
        assert_eq!(read(&p, 5).unwrap(), b"hello");
        assert!(matches!(
            read(&p, 4),
            Err(ReadError::TooLarge {
                size: 5,
                max: 4,
                ..
            })
        ));
        assert_eq!(read_to_string(&p, 10).unwrap(), "hello");
    }

    #[test]
    fn fifo_is_refused_at_once() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("fifo");
        rustix::fs::mkfifoat(rustix::fs::CWD, &p, rustix::fs::Mode::from_raw_mode(0o600)).unwrap();
        let t = Instant::now();
        let e = read(&p, 1 << 20).unwrap_err();
        assert!(
            matches!(e, ReadError::NotRegular { kind: "FIFO", .. }),
            "{e}"
        );
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn devices_and_directories_are_refused() {
        let e = read(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
        let e = read(Path::new("/"), 1 << 20).unwrap_err();
        assert!(e.to_string().contains("directory"), "{e}");
        let e = read(Path::new("/nonexistent/x"), 1).unwrap_err();
        assert!(e.to_string().starts_with("/nonexistent/x: "), "{e}");
    }
}
