//! An RPM's files as the image will hold them: the header's file list
//! (paths, modes, owners, link targets, digests) joined with the payload's
//! cpio members (content), each checked:
//!
//! - paths are absolute and plain: no `.`/`..`/empty component, no NUL,
//!   at most [`PATH_MAX`] bytes;
//! - a symlink's target, resolved lexically from the link's directory
//!   (or from `/` when absolute), never climbs above the root;
//! - device nodes only when [`Options::allow_devices`]; FIFOs and sockets
//!   never;
//! - every non-ghost file of the header is in the payload once and the
//!   payload holds nothing else (a truncated payload is caught here or by
//!   the cpio reader);
//! - a regular file's content has the header's size and, for SHA-2 file
//!   digests, the header's digest (the payload digest checked before
//!   already covers every byte; this names the file that differs);
//! - the payload is decompressed only up to what the header's file list
//!   can occupy, and the header may not declare more than
//!   [`crate::limits::PACKAGE_UNPACKED_MAX`] bytes of files.
//!
//! Hard links (regular members sharing an inode; rpm stores the content
//! with one of them) become [`Kind::HardLink`] to the member holding it.
use super::cpio::{self, CpioError};
use crate::decompress::{self, Codec, DecompressError};
use crate::limits::PACKAGE_UNPACKED_MAX;
use rpm::{DigestAlgorithm, FileEntry, FileFlags};
use std::collections::{BTreeMap, HashMap};

/// Longest path or link target accepted.
pub const PATH_MAX: usize = 4096;

const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;
const S_IFBLK: u32 = 0o060000;

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Character and block devices are accepted (the image config allows
    /// them for this package); refused otherwise.
    pub allow_devices: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File(Vec<u8>),
    Symlink(String),
    /// Same inode as the regular file at this path (of the same package).
    HardLink(String),
    Device {
        block: bool,
        major: u32,
        minor: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub path: String,
    pub kind: Kind,
    /// Permission bits (`0o7777`).
    pub mode: u32,
    pub user: String,
    pub group: String,
    /// `%config`: the SBOM and report may say so.
    pub config: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("unreadable file list: {0}")]
    Header(String),
    #[error("declares {declared} bytes of files, more than the {max} this build unpacks")]
    Declares { declared: u64, max: u64 },
    #[error("payload: {0}")]
    Decompress(String),
    #[error("payload: {0}")]
    Cpio(#[from] CpioError),
    #[error("file `{path}`: {why}")]
    Path { path: String, why: &'static str },
    #[error("symlink `{path}` -> `{target}` points outside the image root")]
    LinkEscapes { path: String, target: String },
    #[error(
        "symlink `{path}`: the payload's target `{payload}` differs from the header's `{header}`"
    )]
    LinkMismatch {
        path: String,
        header: String,
        payload: String,
    },
    #[error("`{path}` is a device node; the image config does not allow devices from packages")]
    Device { path: String },
    #[error(
        "`{path}` has file type {mode:o}, which an image cannot hold (FIFO, socket or unknown)"
    )]
    FileType { path: String, mode: u32 },
    #[error("payload holds `{path}`, which the header does not list")]
    NotInHeader { path: String },
    #[error("payload holds `{path}` twice")]
    Twice { path: String },
    #[error("header lists `{path}`, but the payload does not have it (truncated?)")]
    Missing { path: String },
    #[error("`{path}` is {got} bytes, the header says {want}")]
    Size { path: String, got: u64, want: u64 },
    #[error("`{path}`: content does not match the header's file digest")]
    FileDigest { path: String },
}

impl From<DecompressError> for EntryError {
    fn from(e: DecompressError) -> Self {
        EntryError::Decompress(e.to_string())
    }
}

/// `path` if it is absolute and plain.
pub fn plain_path(path: &str) -> Result<&str, EntryError> {
    let bad = |why| {
        Err(EntryError::Path {
            path: path.to_string(),
            why,
        })
    };
    if path.len() > PATH_MAX {
        return bad("is longer than 4096 bytes");
    }
    if path.contains('\0') {
        return bad("contains a NUL byte");
    }
    let Some(rest) = path.strip_prefix('/') else {
        return bad("is not absolute");
    };
    if rest.is_empty() {
        return Ok(path);
    }
    for c in rest.split('/') {
        match c {
            "" => return bad("has an empty component (`//` or a trailing `/`)"),
            "." | ".." => return bad("has a `.` or `..` component"),
            _ => {}
        }
    }
    Ok(path)
}

/// Whether `target`, read from the directory of `link`, stays inside `/`.
pub fn link_stays_inside(link: &str, target: &str) -> bool {
    if target.is_empty() || target.len() > PATH_MAX || target.contains('\0') {
        return false;
    }
    let mut depth: usize = if target.starts_with('/') {
        0
    } else {
        // Components of the link's directory.
        link.split('/')
            .filter(|c| !c.is_empty())
            .count()
            .saturating_sub(1)
    };
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            _ => depth += 1,
        }
    }
    true
}

/// Bytes the cpio archive of `files` can occupy at most (headers, names,
/// padding, content, trailer).
fn archive_bound(files: &[FileEntry]) -> Result<u64, EntryError> {
    let mut declared: u64 = 0;
    let mut bound: u64 = 128;
    for f in files {
        let size = f.size as u64;
        declared = declared.saturating_add(size);
        // Header, "./" + name + NUL, two paddings, content (a symlink's
        // content is its target).
        let link = f.linkto.as_deref().map_or(0, str::len) as u64;
        bound = bound
            .saturating_add(110 + 3 + f.path.as_os_str().len() as u64 + 6)
            .saturating_add(size.max(link));
    }
    if declared > PACKAGE_UNPACKED_MAX {
        return Err(EntryError::Declares {
            declared,
            max: PACKAGE_UNPACKED_MAX,
        });
    }
    Ok(bound)
}

/// Step 4 of [`super`]: the checked items of a package, in header order.
pub fn unpack(
    files: &[FileEntry],
    codec: Codec,
    payload: &[u8],
    opts: &Options,
) -> Result<Vec<Item>, EntryError> {
    let bound = archive_bound(files)?;
    let archive = decompress::decompress(codec, payload, bound)?;
    let members = cpio::members(&archive)?;
    let mut by_path: BTreeMap<String, cpio::Member<'_>> = BTreeMap::new();
    for m in &members {
        let name = String::from_utf8_lossy(m.name);
        let path = match name.strip_prefix('.') {
            Some(p) if p.starts_with('/') => p.to_string(),
            _ => format!("/{}", name.trim_start_matches('/')),
        };
        if by_path.insert(path.clone(), *m).is_some() {
            return Err(EntryError::Twice { path });
        }
    }
    // Hard-link groups: regular members sharing an inode; the content is
    // with the member that has bytes (rpm puts it on the last one).
    let mut holders: HashMap<u32, String> = HashMap::new();
    for (path, m) in &by_path {
        if m.mode & S_IFMT == S_IFREG && m.nlink > 1 {
            let e = holders.entry(m.ino).or_insert_with(|| path.clone());
            if !m.data.is_empty() {
                *e = path.clone();
            }
        }
    }
    let mut items = Vec::with_capacity(files.len().min(members.len() + 1));
    for f in files {
        let raw = f.path.to_string_lossy();
        let path = plain_path(&raw)?.to_string();
        let mode = u32::from(f.mode.raw_mode());
        if f.flags.contains(FileFlags::GHOST) {
            continue;
        }
        let m = by_path
            .remove(&path)
            .ok_or_else(|| EntryError::Missing { path: path.clone() })?;
        let kind = match mode & S_IFMT {
            S_IFDIR => Kind::Dir,
            S_IFLNK => {
                let target = f.linkto.clone().unwrap_or_default();
                let stored = String::from_utf8_lossy(m.data);
                if stored != target {
                    return Err(EntryError::LinkMismatch {
                        path,
                        header: target,
                        payload: stored.into_owned(),
                    });
                }
                if !link_stays_inside(&path, &target) {
                    return Err(EntryError::LinkEscapes { path, target });
                }
                Kind::Symlink(target)
            }
            S_IFREG => match holders.get(&m.ino) {
                Some(holder) if m.nlink > 1 && *holder != path => Kind::HardLink(holder.clone()),
                _ => {
                    check_content(&path, f, m.data)?;
                    Kind::File(m.data.to_vec())
                }
            },
            S_IFCHR | S_IFBLK if opts.allow_devices => Kind::Device {
                block: mode & S_IFMT == S_IFBLK,
                major: m.rdev_major,
                minor: m.rdev_minor,
            },
            S_IFCHR | S_IFBLK => return Err(EntryError::Device { path }),
            _ => return Err(EntryError::FileType { path, mode }),
        };
        items.push(Item {
            path,
            kind,
            mode: mode & 0o7777,
            user: f.ownership.user.clone(),
            group: f.ownership.group.clone(),
            config: f.flags.contains(FileFlags::CONFIG),
        });
    }
    if let Some(path) = by_path.into_keys().next() {
        return Err(EntryError::NotInHeader { path });
    }
    Ok(items)
}

fn check_content(path: &str, f: &FileEntry, data: &[u8]) -> Result<(), EntryError> {
    if data.len() != f.size {
        return Err(EntryError::Size {
            path: path.to_string(),
            got: data.len() as u64,
            want: f.size as u64,
        });
    }
    let alg = match f.digest.as_ref().map(|d| d.algo) {
        Some(DigestAlgorithm::Sha2_256) => &ring::digest::SHA256,
        Some(DigestAlgorithm::Sha2_384) => &ring::digest::SHA384,
        Some(DigestAlgorithm::Sha2_512) => &ring::digest::SHA512,
        _ => return Ok(()),
    };
    let want = f.digest.as_ref().map(|d| d.digest.to_ascii_lowercase());
    let got: String = ring::digest::digest(alg, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if want.as_deref() != Some(got.as_str()) {
        return Err(EntryError::FileDigest {
            path: path.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::cpio::write_member;
    use super::*;

    fn entry(path: &str, mode: u16, size: usize) -> FileEntry {
        FileEntry {
            path: path.into(),
            mode: rpm::FileMode::from(mode),
            ownership: rpm::FileOwnership {
                user: "root".into(),
                group: "root".into(),
            },
            modified_at: rpm::Timestamp(0),
            size,
            flags: FileFlags::empty(),
            digest: None,
            caps: None,
            linkto: None,
            ima_signature: None,
        }
    }

    type Member<'a> = (&'a str, u32, (u32, u32), &'a [u8]);

    fn archive(members: &[Member<'_>]) -> Vec<u8> {
        let mut a = Vec::new();
        for (name, mode, rdev, data) in members {
            write_member(&mut a, name, *mode, *rdev, data);
        }
        write_member(&mut a, "TRAILER!!!", 0, (0, 0), b"");
        a
    }

    #[test]
    fn a_package_declaring_10_gb_is_refused_before_anything_is_decompressed() {
        let files = [entry("/big", 0o100644, 10 << 30)];
        let e = unpack(&files, Codec::Zstd, b"not even zstd", &Options::default()).unwrap_err();
        assert!(
            matches!(e, EntryError::Declares { declared, .. } if declared == 10 << 30),
            "{e}"
        );
    }

    #[test]
    fn devices_only_when_allowed_and_the_payload_must_match_the_header() {
        let files = [entry("/dev/null", 0o020666, 0)];
        let a = archive(&[("./dev/null", 0o020666, (1, 3), b"")]);
        let e = unpack(&files, Codec::None, &a, &Options::default()).unwrap_err();
        assert!(matches!(e, EntryError::Device { .. }), "{e}");
        let items = unpack(
            &files,
            Codec::None,
            &a,
            &Options {
                allow_devices: true,
            },
        )
        .unwrap();
        assert_eq!(
            items[0].kind,
            Kind::Device {
                block: false,
                major: 1,
                minor: 3
            }
        );
        // A FIFO never.
        let fifo = [entry("/run/p", 0o010644, 0)];
        let e = unpack(
            &fifo,
            Codec::None,
            &archive(&[("./run/p", 0o010644, (0, 0), b"")]),
            &Options::default(),
        )
        .unwrap_err();
        assert!(matches!(e, EntryError::FileType { .. }), "{e}");
        // Payload and header disagree: an extra member, a missing one, a size.
        let one = [entry("/a", 0o100644, 1)];
        // A ghost (not in the payload) leaves room for the extra member within the bound.
        let mut ghost = entry("/ghost", 0o100644, 400);
        ghost.flags = FileFlags::GHOST;
        let with_ghost = [entry("/a", 0o100644, 1), ghost];
        let extra = archive(&[
            ("./a", 0o100644, (0, 0), b"x"),
            ("./b", 0o100644, (0, 0), b"y"),
        ]);
        assert!(matches!(
            unpack(&with_ghost, Codec::None, &extra, &Options::default()),
            Err(EntryError::NotInHeader { .. })
        ));
        // Beyond the bound the header allows: refused as it expands.
        assert!(matches!(
            unpack(&one, Codec::None, &extra, &Options::default()),
            Err(EntryError::Decompress(_))
        ));
        let none = archive(&[]);
        assert!(matches!(
            unpack(&one, Codec::None, &none, &Options::default()),
            Err(EntryError::Missing { .. })
        ));
        let long = archive(&[("./a", 0o100644, (0, 0), b"xy")]);
        assert!(matches!(
            unpack(&one, Codec::None, &long, &Options::default()),
            Err(EntryError::Size { .. })
        ));
    }

    #[test]
    fn plain_paths_only() {
        for ok in ["/", "/usr/bin/sh", "/a b/c"] {
            assert!(plain_path(ok).is_ok(), "{ok}");
        }
        for bad in ["usr/bin", "/usr/../etc", "/./x", "//x", "/x/", "/a\0b", ""] {
            assert!(plain_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn link_targets_stay_inside_the_root() {
        let inside = [
            ("/usr/bin/sh", "busybox"),
            ("/usr/bin/sh", "/bin/busybox"),
            ("/usr/lib/x", "../../etc/x"),
            ("/bin", "usr/bin"),
            ("/a/b", "./c/../d"),
        ];
        for (l, t) in inside {
            assert!(link_stays_inside(l, t), "{l} -> {t}");
        }
        let outside = [
            ("/usr/lib/x", "../../../etc/passwd"),
            ("/x", "../x"),
            ("/a", "/../etc"),
            ("/a/b", "c/../../../d"),
            ("/a", ""),
        ];
        for (l, t) in outside {
            assert!(!link_stays_inside(l, t), "{l} -> {t}");
        }
    }
}
