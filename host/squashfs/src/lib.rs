//! Reproducible squashfs writer for the root filesystem: owns turning a list
//! of [`Entry`]s (path, kind, mode, owner) into squashfs 4.0 image bytes,
//! zero-padded to whole 4 KiB verity data blocks.
//!
//! The encoding is done by the `backhand` crate; this module pins down
//! everything that would otherwise make two builds differ:
//! - every inode gets the caller's `mtime` (`SOURCE_DATE_EPOCH` or 0), and so
//!   does the superblock, except the root directory inode, whose mtime is
//!   always 0 (backhand has no setter for it);
//! - entries are written in component-wise path order whatever order they
//!   were given in; owners and modes come only from the entries, never from
//!   the build host (a [`FileData::Host`] file contributes its bytes only);
//! - duplicate-file merging is off: backhand detects duplicates by a 64-bit
//!   non-cryptographic hash without comparing bytes, and a collision would
//!   silently give one file the other's content.
//!
//! Missing parent directories are created implicitly (mode 0755, owner 0:0).
//! An entry for `/` must be a directory; it sets the root's mode, and its
//! owner must be 0:0 (backhand cannot record another root owner).
//!
//! Compression: zstd level 15 by default (what `mksquashfs -comp zstd` uses;
//! the kernels azl-edge boots have `SQUASHFS_ZSTD`), xz or gzip on request.
//! Block size 128 KiB by default. backhand writes on one thread; the
//! blocks it will compress are compressed beforehand on all cores (see
//! `memo.rs`), which changes the speed, never the bytes.
#![forbid(unsafe_code)]
use azl_imagepath::ImagePath;
use backhand::compression::{CompressionOptions, Compressor, Zstd};
use backhand::kind::Kind;
use backhand::{BackhandError, FilesystemCompressor, FilesystemWriter, NodeHeader};
use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{self, Cursor, Read};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::thread;

mod memo;

/// Default data block size (mksquashfs's default too).
pub const DEFAULT_BLOCK_SIZE: u32 = 128 * 1024;
/// Default zstd level (mksquashfs's default for `-comp zstd`).
pub const DEFAULT_ZSTD_LEVEL: u32 = 15;
/// The image is zero-padded to a multiple of this (the verity data block).
pub const PAD_TO: u64 = 4096;

/// Mode and owner of directories created implicitly for deeper entries.
const IMPLICIT_DIR_MODE: u16 = 0o755;
/// Longest symlink target the kernel accepts (`PATH_MAX` - 1).
const MAX_SYMLINK_LEN: usize = 4095;

/// How data and metadata blocks are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// zstd at `level` (1 to 22).
    Zstd { level: u32 },
    /// xz, preset 6, dictionary = block size (mksquashfs's defaults).
    Xz,
    /// zlib level 9, window 15 (mksquashfs's defaults).
    Gzip,
}

impl Default for Compression {
    fn default() -> Self {
        Self::Zstd {
            level: DEFAULT_ZSTD_LEVEL,
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Zstd { level } => write!(f, "zstd (level {level})"),
            Self::Xz => f.write_str("xz"),
            Self::Gzip => f.write_str("gzip"),
        }
    }
}

/// Image-wide settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub compression: Compression,
    /// Power of two from 4 KiB to 1 MiB.
    pub block_size: u32,
    /// Seconds since the epoch for every inode and the superblock.
    pub mtime: u32,
    /// Compression threads; `None` = one per core. Does not change the output.
    pub threads: Option<NonZeroUsize>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            compression: Compression::default(),
            block_size: DEFAULT_BLOCK_SIZE,
            mtime: 0,
            threads: None,
        }
    }
}

/// Where a regular file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileData {
    Bytes(Vec<u8>),
    /// Read from the build host while the image is written (opened one at
    /// a time, so any number of files can be added).
    Host(PathBuf),
}

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir,
    File(FileData),
    /// Target, stored as given (relative or absolute).
    Symlink(String),
    CharDev {
        major: u32,
        minor: u32,
    },
    BlockDev {
        major: u32,
        minor: u32,
    },
}

/// One inode of the image. `mode` holds the permission bits only (`0o7777`,
/// setuid/setgid/sticky included); the file type comes from `node`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: ImagePath,
    pub node: Node,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// A built image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The squashfs image, zero-padded to a multiple of [`PAD_TO`].
    pub bytes: Vec<u8>,
    /// Bytes the filesystem itself uses (`bytes_used` in its superblock).
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SquashfsError {
    #[error("{0}: appears twice in the squashfs entries")]
    Duplicate(ImagePath),
    #[error("{path}: parent {parent} is not a directory")]
    ParentNotDir { path: ImagePath, parent: ImagePath },
    #[error("/: the root entry must be a directory")]
    RootNotDir,
    #[error("/: the root directory must be owned by 0:0 (got {uid}:{gid})")]
    RootOwner { uid: u32, gid: u32 },
    #[error("{path}: mode {mode:#o} has bits outside 0o7777")]
    BadMode { path: ImagePath, mode: u32 },
    #[error(
        "{path}: device {major}:{minor} does not fit squashfs (major < 4096, minor < 1048576)"
    )]
    BadDevice {
        path: ImagePath,
        major: u32,
        minor: u32,
    },
    #[error("{path}: symlink target must be 1 to {MAX_SYMLINK_LEN} bytes without NUL")]
    BadSymlink { path: ImagePath },
    #[error("squashfs block size {0} is invalid: must be a power of two from 4096 to 1048576")]
    BadBlockSize(u32),
    #[error("zstd level {0} is invalid: must be 1 to 22")]
    BadZstdLevel(u32),
    #[error("{path}: adding to the squashfs image: {source}")]
    Add {
        path: ImagePath,
        #[source]
        source: BackhandError,
    },
    #[error("writing the squashfs image: {0}")]
    Write(#[source] BackhandError),
}

/// Build the image from `entries` (in any order).
pub fn build(entries: &[Entry], options: &Options) -> Result<Image, SquashfsError> {
    let plan = plan(entries)?;
    let (mut fs, compressor) = writer(options)?;
    for (path, item) in &plan {
        let (header, entry) = match item {
            // check() bounds the mode to 0o7777 and the owner to 0:0.
            Item::Root(e) => {
                fs.set_root_mode(e.mode as u16);
                continue;
            }
            Item::Implicit => (dir_header(options.mtime), None),
            Item::Explicit(e) => (header(e, options.mtime), Some(e)),
        };
        let name = path.as_str();
        let added = match entry.map(|e| &e.node) {
            None | Some(Node::Dir) => fs.push_dir(name, header),
            Some(Node::File(FileData::Bytes(b))) => fs.push_file(Cursor::new(&b[..]), name, header),
            Some(Node::File(FileData::Host(p))) => fs.push_file(HostFile::new(p), name, header),
            Some(Node::Symlink(target)) => fs.push_symlink(target, name, header),
            Some(&Node::CharDev { major, minor }) => {
                fs.push_char_device(encode_dev(major, minor), name, header)
            }
            Some(&Node::BlockDev { major, minor }) => {
                fs.push_block_device(encode_dev(major, minor), name, header)
            }
        };
        added.map_err(|source| SquashfsError::Add {
            path: path.clone(),
            source,
        })?;
    }

    let threads = options
        .threads
        .or_else(|| thread::available_parallelism().ok())
        .map_or(1, NonZeroUsize::get);
    let _memo = (threads > 1).then(|| {
        let files: Vec<&FileData> = plan
            .values()
            .filter_map(|item| match item {
                Item::Explicit(Entry {
                    node: Node::File(data),
                    ..
                }) => Some(data),
                _ => None,
            })
            .collect();
        let zstd_level = match options.compression {
            Compression::Zstd { level } => Some(level),
            Compression::Xz | Compression::Gzip => None,
        };
        memo::precompress(&files, compressor, zstd_level, options.block_size, threads)
    });

    let mut out = Cursor::new(Vec::new());
    let (superblock, _) = fs.write(&mut out).map_err(SquashfsError::Write)?;
    let mut bytes = out.into_inner();
    let size = superblock.bytes_used;
    // bytes_used <= bytes.len(), so the padded length fits in usize.
    let padded = size.next_multiple_of(PAD_TO) as usize;
    bytes.resize(padded, 0);
    Ok(Image { bytes, size })
}

/// A configured, empty writer and its compressor settings.
fn writer<'a>(
    options: &Options,
) -> Result<(FilesystemWriter<'a, 'a, 'a>, FilesystemCompressor), SquashfsError> {
    let bs = options.block_size;
    if !bs.is_power_of_two() || !(4096..=1024 * 1024).contains(&bs) {
        return Err(SquashfsError::BadBlockSize(bs));
    }
    let (id, opts) = match options.compression {
        Compression::Zstd { level } => {
            if !(1..=22).contains(&level) {
                return Err(SquashfsError::BadZstdLevel(level));
            }
            let zstd = Zstd {
                compression_level: level,
            };
            (Compressor::Zstd, Some(CompressionOptions::Zstd(zstd)))
        }
        Compression::Xz => (Compressor::Xz, None),
        Compression::Gzip => (Compressor::Gzip, None),
    };
    let compressor = FilesystemCompressor::new(id, opts).map_err(SquashfsError::Write)?;
    let mut fs = FilesystemWriter::default();
    fs.set_kind(Kind::new_v4(&memo::MEMO_COMPRESSOR));
    fs.set_compressor(compressor);
    // Like mksquashfs: record compressor options only when not the default.
    fs.set_emit_compression_options(
        options.compression
            != Compression::Zstd {
                level: DEFAULT_ZSTD_LEVEL,
            },
    );
    fs.set_block_size(bs);
    fs.set_time(options.mtime);
    fs.set_no_padding();
    fs.set_no_duplicate_files(false);
    fs.set_root_mode(IMPLICIT_DIR_MODE);
    Ok((fs, compressor))
}

enum Item<'e> {
    Root(&'e Entry),
    Explicit(&'e Entry),
    Implicit,
}

/// Check the entries and order them, adding implicit parent directories.
/// The root entry (if any) comes back as [`Item::Root`], first.
fn plan(entries: &[Entry]) -> Result<BTreeMap<ImagePath, Item<'_>>, SquashfsError> {
    let mut items = BTreeMap::new();
    for e in entries {
        check(e)?;
        let item = if e.path.is_root() {
            Item::Root(e)
        } else {
            Item::Explicit(e)
        };
        if items.insert(e.path.clone(), item).is_some() {
            return Err(SquashfsError::Duplicate(e.path.clone()));
        }
    }
    let paths: Vec<ImagePath> = items.keys().cloned().collect();
    for path in paths {
        for parent in path.ancestors().into_iter().filter(|p| !p.is_root()) {
            match items.get(&parent) {
                None => {
                    items.insert(parent, Item::Implicit);
                }
                Some(Item::Explicit(e)) if e.node != Node::Dir => {
                    return Err(SquashfsError::ParentNotDir { path, parent });
                }
                Some(_) => {}
            }
        }
    }
    Ok(items)
}

/// Per-entry checks that do not depend on other entries.
fn check(e: &Entry) -> Result<(), SquashfsError> {
    let path = || e.path.clone();
    if e.mode & !0o7777 != 0 {
        return Err(SquashfsError::BadMode {
            path: path(),
            mode: e.mode,
        });
    }
    if e.path.is_root() {
        if e.node != Node::Dir {
            return Err(SquashfsError::RootNotDir);
        }
        if (e.uid, e.gid) != (0, 0) {
            return Err(SquashfsError::RootOwner {
                uid: e.uid,
                gid: e.gid,
            });
        }
    }
    match &e.node {
        &Node::CharDev { major, minor } | &Node::BlockDev { major, minor }
            if major >= 1 << 12 || minor >= 1 << 20 =>
        {
            Err(SquashfsError::BadDevice {
                path: path(),
                major,
                minor,
            })
        }
        Node::Symlink(t) if t.is_empty() || t.len() > MAX_SYMLINK_LEN || t.contains('\0') => {
            Err(SquashfsError::BadSymlink { path: path() })
        }
        _ => Ok(()),
    }
}

fn header(e: &Entry, mtime: u32) -> NodeHeader {
    // check() bounds the mode to 0o7777.
    NodeHeader::new(e.mode as u16, e.uid, e.gid, mtime)
}

fn dir_header(mtime: u32) -> NodeHeader {
    NodeHeader::new(IMPLICIT_DIR_MODE, 0, 0, mtime)
}

/// The kernel's `new_encode_dev`, which squashfs stores.
fn encode_dev(major: u32, minor: u32) -> u32 {
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}

/// A host file opened on first read and closed at end of file, with its
/// path in every error.
struct HostFile<'p> {
    path: &'p Path,
    state: HostState,
}

enum HostState {
    Unopened,
    Open(File),
    Done,
}

impl<'p> HostFile<'p> {
    fn new(path: &'p Path) -> Self {
        Self {
            path,
            state: HostState::Unopened,
        }
    }

    fn context(&self, e: io::Error) -> io::Error {
        io::Error::new(e.kind(), format!("{}: {e}", self.path.display()))
    }
}

impl Read for HostFile<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let HostState::Unopened = self.state {
            let f = File::open(self.path).map_err(|e| self.context(e))?;
            self.state = HostState::Open(f);
        }
        let HostState::Open(f) = &mut self.state else {
            return Ok(0);
        };
        match f.read(buf) {
            Ok(0) if !buf.is_empty() => {
                // Close the descriptor now, not at the end of the build.
                self.state = HostState::Done;
                Ok(0)
            }
            Ok(n) => Ok(n),
            Err(e) => Err(self.context(e)),
        }
    }
}

#[cfg(test)]
mod tests;
