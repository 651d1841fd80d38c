//! Serializing the [`FileSet`] into the initramfs: a newc cpio archive
//! ([`azl_cpio`]) compressed with gzip. Host files are read here, once.
//!
//! The gzip header carries no name and mtime 0, so the same file set and
//! mtime always give the same bytes.
use crate::rootfs::{Content, FileSet, Kind};
use azl_cpio::{Archive, Body, CpioError, Entry};
use flate2::{Compression, GzBuilder};
use std::io::Write;
use std::path::PathBuf;

/// gzip header OS byte: Unix.
const GZIP_OS_UNIX: u8 = 3;

#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Cpio(#[from] CpioError),
    #[error("compressing the initramfs: {0}")]
    Gzip(std::io::Error),
}

/// A built initramfs.
#[derive(Debug, Clone)]
pub struct Initramfs {
    /// The gzip-compressed archive.
    pub gz: Vec<u8>,
    /// Size of the uncompressed archive.
    pub cpio_size: u64,
    /// Number of entries (without the trailer).
    pub entries: usize,
}

/// The cpio archive of `set` (every entry stamped with `mtime`).
pub fn archive(set: &FileSet) -> Result<Archive, InitramfsError> {
    let mut a = Archive::new();
    for (path, node) in set.iter() {
        let body = match &node.kind {
            Kind::Dir => Body::Dir,
            Kind::File(Content::Bytes(b)) => Body::File(b.clone()),
            Kind::File(Content::Host(p)) => {
                Body::File(std::fs::read(p).map_err(|source| InitramfsError::Read {
                    path: p.clone(),
                    source,
                })?)
            }
            Kind::Symlink(t) => Body::Symlink(t.clone()),
            Kind::CharDevice { major, minor } => Body::CharDevice {
                major: *major,
                minor: *minor,
            },
        };
        a.add(
            path.clone(),
            Entry {
                body,
                mode: node.mode,
                uid: node.uid,
                gid: node.gid,
            },
        )?;
    }
    Ok(a)
}

/// Build the compressed initramfs.
pub fn build(set: &FileSet, mtime: u32) -> Result<Initramfs, InitramfsError> {
    let a = archive(set)?;
    let mut gz = GzBuilder::new()
        .mtime(0)
        .operating_system(GZIP_OS_UNIX)
        .write(Vec::new(), Compression::best());
    let cpio_size = a.write(&mut gz, mtime)?;
    gz.flush().map_err(InitramfsError::Gzip)?;
    let gz = gz.finish().map_err(InitramfsError::Gzip)?;
    Ok(Initramfs {
        gz,
        cpio_size,
        entries: a.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::{Node, Origin};
    use azl_imagepath::ImagePath;
    use std::process::{Command, Stdio};

    fn set(host: &std::path::Path) -> FileSet {
        let mut s = FileSet::new();
        let p = |x: &str| ImagePath::parse(x).unwrap();
        s.insert(
            p("/etc/motd"),
            Node::file(Content::Bytes(b"hi\n".to_vec()), 0o644, Origin::Implicit),
        )
        .unwrap();
        s.insert(
            p("/bin/tool"),
            Node::file(Content::Host(host.into()), 0o755, Origin::Implicit),
        )
        .unwrap();
        s.insert(p("/bin/alias"), Node::symlink("tool", Origin::Implicit))
            .unwrap();
        s
    }

    #[test]
    fn gzip_readable_by_gzip_and_deterministic() {
        let t = tempfile::tempdir().unwrap();
        let host = t.path().join("tool");
        std::fs::write(&host, b"#!/bin/sh\necho tool\n").unwrap();
        let a = build(&set(&host), 0).unwrap();
        assert_eq!(a.entries, 5, "/bin, /etc and three files");
        assert_eq!(&a.gz[4..8], &[0, 0, 0, 0], "gzip mtime 0");
        assert_eq!(a.gz[9], GZIP_OS_UNIX);
        let b = build(&set(&host), 0).unwrap();
        assert_eq!(a.gz, b.gz, "same input, same bytes");

        let file = t.path().join("i.cpio.gz");
        std::fs::write(&file, &a.gz).unwrap();
        let out = Command::new("gzip")
            .arg("-dc")
            .arg(&file)
            .stderr(Stdio::inherit())
            .output()
            .expect("gzip is needed for this test (scripts/setup.sh installs it)");
        assert!(out.status.success());
        assert_eq!(out.stdout.len() as u64, a.cpio_size);
        let mut plain = Vec::new();
        archive(&set(&host)).unwrap().write(&mut plain, 0).unwrap();
        assert_eq!(out.stdout, plain);
    }

    #[test]
    fn missing_host_file_is_named() {
        let e = build(&set(std::path::Path::new("/nonexistent/tool")), 0).unwrap_err();
        assert!(
            e.to_string().starts_with("reading /nonexistent/tool: "),
            "{e}"
        );
    }
}
