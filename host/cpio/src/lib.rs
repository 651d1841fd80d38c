//! Writer for the "newc" cpio format (`070701`) that the kernel unpacks as
//! the initramfs.
//!
//! Written here rather than taken from a crate on purpose: the format is a
//! few dozen lines, and what matters for azl-edge is *determinism*, which the
//! general-purpose writers leave to the caller or take from the host
//! filesystem. This writer makes the same entries always produce the same
//! bytes:
//! - entries are kept sorted by path component-wise, so a directory comes
//!   right before its contents, and a missing parent directory is an error
//!   (the kernel would fail to create the child);
//! - inode numbers are assigned 1, 2, 3… in archive order;
//! - one mtime for every entry (the caller passes `SOURCE_DATE_EPOCH` or 0);
//! - no host metadata at all: mode, owner and content are given explicitly.
//!
//! Layout of each entry: 110-byte ASCII header (`070701` + 13 × 8 hex digits:
//! ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor,
//! rdevminor, namesize incl. NUL, check = 0), the name + NUL padded to 4
//! bytes, the data padded to 4 bytes. The archive ends with `TRAILER!!!`.
#![forbid(unsafe_code)]
use azl_imagepath::ImagePath;
use std::collections::BTreeMap;
use std::io::{self, Write};

const MAGIC: &str = "070701";
const HEADER_LEN: usize = 110;
const TRAILER: &str = "TRAILER!!!";

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Dir,
    File(Vec<u8>),
    Symlink(String),
    CharDevice { major: u32, minor: u32 },
}

/// One archive member. `mode` holds the permission bits only (`0o7777`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub body: Body,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum CpioError {
    #[error("{0}: added to the archive twice")]
    Duplicate(ImagePath),
    #[error("{path}: parent directory {parent} is not in the archive")]
    MissingParent { path: ImagePath, parent: ImagePath },
    #[error("{path}: parent {parent} is not a directory")]
    ParentNotDir { path: ImagePath, parent: ImagePath },
    #[error("{path}: {size} bytes is too large for a cpio newc entry (4 GiB - 1 at most)")]
    TooLarge { path: ImagePath, size: usize },
    #[error("{path}: mode {mode:#o} has bits outside 0o7777")]
    BadMode { path: ImagePath, mode: u32 },
    #[error("writing the cpio archive: {0}")]
    Io(#[from] io::Error),
}

/// A set of entries, written in path order.
#[derive(Debug, Default, Clone)]
pub struct Archive {
    entries: BTreeMap<ImagePath, Entry>,
}

impl Archive {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Add `entry` at `path` (`/` is implicit and cannot be added).
    pub fn add(&mut self, path: ImagePath, entry: Entry) -> Result<(), CpioError> {
        if entry.mode & !0o7777 != 0 {
            return Err(CpioError::BadMode {
                path,
                mode: entry.mode,
            });
        }
        if path.is_root() || self.entries.contains_key(&path) {
            return Err(CpioError::Duplicate(path));
        }
        self.entries.insert(path, entry);
        Ok(())
    }

    /// Check that every entry's parent is a directory in the archive.
    fn check_parents(&self) -> Result<(), CpioError> {
        for path in self.entries.keys() {
            let Some(parent) = path.parent().filter(|p| !p.is_root()) else {
                continue;
            };
            match self.entries.get(&parent) {
                None => {
                    return Err(CpioError::MissingParent {
                        path: path.clone(),
                        parent,
                    })
                }
                Some(e) if e.body != Body::Dir => {
                    return Err(CpioError::ParentNotDir {
                        path: path.clone(),
                        parent,
                    })
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Write the archive (with trailer) to `w`; every entry gets `mtime`.
    /// Returns the number of bytes written.
    pub fn write<W: Write>(&self, w: W, mtime: u32) -> Result<u64, CpioError> {
        self.check_parents()?;
        let mut w = CountingWriter { inner: w, count: 0 };
        for (i, (path, e)) in self.entries.iter().enumerate() {
            let ino = u32::try_from(i + 1).map_err(|_| CpioError::TooLarge {
                path: path.clone(),
                size: i,
            })?;
            let (kind, nlink, data, rdev): (u32, u32, &[u8], (u32, u32)) = match &e.body {
                Body::Dir => (S_IFDIR, 2, &[], (0, 0)),
                Body::File(d) => (S_IFREG, 1, d, (0, 0)),
                Body::Symlink(t) => (S_IFLNK, 1, t.as_bytes(), (0, 0)),
                Body::CharDevice { major, minor } => (S_IFCHR, 1, &[], (*major, *minor)),
            };
            let size = u32::try_from(data.len()).map_err(|_| CpioError::TooLarge {
                path: path.clone(),
                size: data.len(),
            })?;
            let header = Header {
                ino,
                mode: kind | e.mode,
                uid: e.uid,
                gid: e.gid,
                nlink,
                mtime,
                size,
                rdev,
            };
            write_member(&mut w, &header, path.archive_name(), data)?;
        }
        let trailer = Header {
            ino: 0,
            mode: 0,
            uid: 0,
            gid: 0,
            nlink: 1,
            mtime: 0,
            size: 0,
            rdev: (0, 0),
        };
        write_member(&mut w, &trailer, TRAILER, &[])?;
        w.inner.flush()?;
        Ok(w.count)
    }
}

struct Header {
    ino: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u32,
    mtime: u32,
    size: u32,
    rdev: (u32, u32),
}

fn pad4(w: &mut impl Write, len: u64) -> io::Result<()> {
    let pad = (4 - (len % 4) as usize) % 4;
    w.write_all([0u8; 3].get(..pad).unwrap_or_default())
}

fn write_member<W: Write>(
    w: &mut CountingWriter<W>,
    h: &Header,
    name: &str,
    data: &[u8],
) -> io::Result<()> {
    let namesize = name.len() as u64 + 1;
    let header = format!(
        "{MAGIC}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}",
        h.ino,
        h.mode,
        h.uid,
        h.gid,
        h.nlink,
        h.mtime,
        h.size,
        0,
        0,
        h.rdev.0,
        h.rdev.1,
        namesize,
        0
    );
    debug_assert_eq!(header.len(), HEADER_LEN);
    w.write_all(header.as_bytes())?;
    w.write_all(name.as_bytes())?;
    w.write_all(&[0])?;
    pad4(w, HEADER_LEN as u64 + namesize)?;
    w.write_all(data)?;
    pad4(w, data.len() as u64)
}

/// Counts bytes so the caller learns the archive size without seeking.
struct CountingWriter<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn p(s: &str) -> ImagePath {
        ImagePath::parse(s).unwrap()
    }

    fn entry(body: Body, mode: u32) -> Entry {
        Entry {
            body,
            mode,
            uid: 0,
            gid: 0,
        }
    }

    fn sample() -> Archive {
        let mut a = Archive::new();
        // Added out of order on purpose: the writer sorts.
        a.add(
            p("/etc/hostname"),
            entry(Body::File(b"edge\n".to_vec()), 0o644),
        )
        .unwrap();
        a.add(p("/etc"), entry(Body::Dir, 0o755)).unwrap();
        a.add(p("/bin"), entry(Body::Dir, 0o755)).unwrap();
        a.add(p("/bin/sh"), entry(Body::Symlink("busybox".into()), 0o777))
            .unwrap();
        a.add(
            p("/bin/busybox"),
            Entry {
                body: Body::File(vec![0x7f, b'E', b'L', b'F', 1, 2, 3]),
                mode: 0o755,
                uid: 1000,
                gid: 100,
            },
        )
        .unwrap();
        a.add(p("/data"), entry(Body::Dir, 0o700)).unwrap();
        a
    }

    fn bytes(a: &Archive, mtime: u32) -> Vec<u8> {
        let mut v = Vec::new();
        let n = a.write(&mut v, mtime).unwrap();
        assert_eq!(n as usize, v.len());
        v
    }

    /// Minimal reader, to check the fields the real cpio tool does not show.
    fn parse(mut b: &[u8]) -> Vec<(String, [u32; 13])> {
        let mut out = Vec::new();
        let start = b.len();
        loop {
            assert_eq!((start - b.len()) % 4, 0, "entries are 4-byte aligned");
            assert_eq!(&b[..6], b"070701");
            let mut f = [0u32; 13];
            for (i, v) in f.iter_mut().enumerate() {
                let s = std::str::from_utf8(&b[6 + 8 * i..14 + 8 * i]).unwrap();
                *v = u32::from_str_radix(s, 16).unwrap();
            }
            let namesize = f[11] as usize;
            let name = std::str::from_utf8(&b[110..110 + namesize - 1])
                .unwrap()
                .to_string();
            let data_start = (110 + namesize).div_ceil(4) * 4;
            let next = (data_start + f[6] as usize).div_ceil(4) * 4;
            b = &b[next..];
            let done = name == TRAILER;
            out.push((name, f));
            if done {
                assert!(b.is_empty());
                return out;
            }
        }
    }

    #[test]
    fn order_inodes_mtime() {
        let v = bytes(&sample(), 1234);
        let entries = parse(&v);
        let names: Vec<_> = entries.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "bin",
                "bin/busybox",
                "bin/sh",
                "data",
                "etc",
                "etc/hostname",
                TRAILER
            ]
        );
        for (i, (_, f)) in entries[..6].iter().enumerate() {
            assert_eq!(f[0], i as u32 + 1, "inode numbers are sequential");
            assert_eq!(f[5], 1234, "mtime");
        }
        assert_eq!(entries[1].1[1], 0o100755);
        assert_eq!((entries[1].1[2], entries[1].1[3]), (1000, 100));
        assert_eq!(entries[2].1[1], 0o120777);
        assert_eq!(entries[3].1[1], 0o040700);
        assert_eq!(v, bytes(&sample(), 1234), "deterministic");
        assert_ne!(v, bytes(&sample(), 0));
    }

    #[test]
    fn errors() {
        let mut a = Archive::new();
        a.add(p("/x/y"), entry(Body::Dir, 0o755)).unwrap();
        assert!(matches!(
            a.write(Vec::new(), 0),
            Err(CpioError::MissingParent { .. })
        ));
        a.add(p("/x"), entry(Body::File(vec![]), 0o644)).unwrap();
        assert!(matches!(
            a.write(Vec::new(), 0),
            Err(CpioError::ParentNotDir { .. })
        ));
        assert!(matches!(
            a.add(p("/x"), entry(Body::Dir, 0o755)),
            Err(CpioError::Duplicate(_))
        ));
        assert!(matches!(
            a.add(p("/z"), entry(Body::Dir, 0o40755)),
            Err(CpioError::BadMode { .. })
        ));
        assert!(matches!(
            a.add(p("/"), entry(Body::Dir, 0o755)),
            Err(CpioError::Duplicate(_))
        ));
    }

    fn cpio_tool() -> Command {
        let probe = Command::new("cpio").arg("--version").output();
        assert!(
            probe.is_ok_and(|o| o.status.success()),
            "the cpio tool is needed for this test (scripts/setup.sh installs it)"
        );
        Command::new("cpio")
    }

    /// Cross-check with GNU cpio: its listing and an extraction.
    #[test]
    fn real_cpio_reads_it() {
        let mut a = sample();
        a.add(p("/dev"), entry(Body::Dir, 0o755)).unwrap();
        a.add(
            p("/dev/console"),
            entry(Body::CharDevice { major: 5, minor: 1 }, 0o600),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.cpio");
        std::fs::write(&file, bytes(&a, 0)).unwrap();

        let out = cpio_tool()
            .args(["-itvn", "--quiet", "-F"])
            .arg(&file)
            .env("TZ", "UTC")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listing = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<Vec<&str>> = listing
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        let by_name = |n: &str| {
            lines
                .iter()
                .find(|l| l.contains(&n))
                .unwrap_or_else(|| panic!("{n} not listed in:\n{listing}"))
        };
        assert_eq!(lines.len(), 8, "{listing}");
        assert_eq!(by_name("bin/busybox")[0], "-rwxr-xr-x");
        assert_eq!(by_name("bin/busybox")[2..5], ["1000", "100", "7"]);
        assert_eq!(by_name("bin/sh")[0], "lrwxrwxrwx");
        assert_eq!(by_name("bin/sh").last(), Some(&"busybox"));
        assert_eq!(by_name("data")[0], "drwx------");
        assert_eq!(by_name("dev/console")[0], "crw-------");
        assert_eq!(by_name("dev/console")[4], "5,");
        assert_eq!(by_name("dev/console")[5], "1");
        assert_eq!(by_name("etc/hostname")[4], "5");

        // Extract (without the device node) and compare contents.
        a = sample();
        std::fs::write(&file, bytes(&a, 0)).unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let st = cpio_tool()
            .args(["-idm", "--quiet", "--no-absolute-filenames", "-F"])
            .arg(&file)
            .current_dir(&root)
            .status()
            .unwrap();
        assert!(st.success());
        assert_eq!(std::fs::read(root.join("etc/hostname")).unwrap(), b"edge\n");
        assert_eq!(
            std::fs::read_link(root.join("bin/sh")).unwrap(),
            std::path::Path::new("busybox")
        );
        assert_eq!(std::fs::read(root.join("bin/busybox")).unwrap().len(), 7);
    }
}
