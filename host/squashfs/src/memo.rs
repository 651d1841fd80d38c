//! Parallel compression for backhand's single-threaded writer.
//!
//! backhand compresses every data and fragment block on the thread that
//! calls `FilesystemWriter::write`. Before that call, [`precompress`]
//! predicts the blocks backhand will compress (it walks the files in the
//! same order with the same rules: files shorter than a block are packed
//! into fragment blocks, longer ones are cut into blocks, all-zero blocks
//! become holes), compresses them on several threads with the very same
//! compressor, and leaves the results in a per-thread memo keyed by the
//! SHA-256 of the uncompressed block. backhand's writer is given
//! [`MEMO_COMPRESSOR`], which answers from the memo and compresses anything
//! else itself.
//!
//! The memo only saves time; it cannot change the output: a hit returns
//! exactly what the compressor returns for those bytes (a pure function of
//! bytes and settings), and a wrong prediction or an unreadable file is
//! just a miss, compressed (or reported) during the write as usual.
use super::FileData;
use backhand::compression::{CompressionAction, Compressor, DefaultCompressor};
use backhand::{BackhandError, FilesystemCompressor, SuperBlock};
use ring::digest;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;

/// Blocks of one file handed to a worker at a time.
const BLOCKS_PER_JOB: u64 = 8;

type Key = [u8; 32];

thread_local! {
    /// The compressed blocks of the build running on this thread.
    static MEMO: RefCell<HashMap<Key, Vec<u8>>> = RefCell::new(HashMap::new());
}

/// The compressor backhand calls: the memo first, then the default one.
pub(super) struct MemoCompressor;
pub(super) static MEMO_COMPRESSOR: MemoCompressor = MemoCompressor;

impl CompressionAction for MemoCompressor {
    type Error = BackhandError;
    type Compressor = Compressor;
    type FilesystemCompressor = FilesystemCompressor;
    type SuperBlock = SuperBlock;

    fn decompress(
        &self,
        bytes: &[u8],
        out: &mut Vec<u8>,
        compressor: Compressor,
    ) -> Result<(), BackhandError> {
        DefaultCompressor.decompress(bytes, out, compressor)
    }

    fn compress(
        &self,
        bytes: &[u8],
        fc: FilesystemCompressor,
        block_size: u32,
    ) -> Result<Vec<u8>, BackhandError> {
        let hit = MEMO.with(|m| {
            let mut m = m.borrow_mut();
            if m.is_empty() {
                None
            } else {
                m.remove(&key(bytes))
            }
        });
        match hit {
            Some(compressed) => Ok(compressed),
            None => DefaultCompressor.compress(bytes, fc, block_size),
        }
    }

    fn compression_options(
        &self,
        superblock: &mut SuperBlock,
        kind: &backhand::kind::Kind,
        fs_compressor: FilesystemCompressor,
    ) -> Result<Option<Vec<u8>>, BackhandError> {
        DefaultCompressor.compression_options(superblock, kind, fs_compressor)
    }
}

/// Empties this thread's memo when the build ends, however it ends.
pub(super) struct MemoGuard(());

impl Drop for MemoGuard {
    fn drop(&mut self) {
        MEMO.with(|m| *m.borrow_mut() = HashMap::new());
    }
}

fn key(bytes: &[u8]) -> Key {
    let mut k = [0u8; 32];
    k.copy_from_slice(digest::digest(&digest::SHA256, bytes).as_ref());
    k
}

/// Work for one worker.
enum Job<'e> {
    /// Blocks `first..first + count` of a file of at least one block.
    Blocks {
        data: &'e FileData,
        first: u64,
        count: u64,
    },
    /// One fragment block: these files (each shorter than a block), packed.
    Fragment(Vec<&'e FileData>),
}

fn file_len(data: &FileData) -> Option<u64> {
    match data {
        FileData::Bytes(b) => Some(b.len() as u64),
        FileData::Host(p) => std::fs::metadata(p).ok().map(|m| m.len()),
    }
}

/// The jobs for `files`, in the order backhand writes them.
fn plan<'e>(files: &[&'e FileData], block_size: u64) -> Vec<Job<'e>> {
    let mut jobs = Vec::new();
    let mut fragment: Vec<&FileData> = Vec::new();
    let mut fragment_len = 0;
    for &data in files {
        let Some(len) = file_len(data) else { continue };
        if len == 0 {
            continue;
        }
        if len < block_size {
            if fragment_len + len > block_size {
                jobs.push(Job::Fragment(std::mem::take(&mut fragment)));
                fragment_len = 0;
            }
            fragment.push(data);
            fragment_len += len;
            continue;
        }
        let blocks = len.div_ceil(block_size);
        let mut first = 0;
        while first < blocks {
            let count = BLOCKS_PER_JOB.min(blocks - first);
            jobs.push(Job::Blocks { data, first, count });
            first += count;
        }
    }
    if !fragment.is_empty() {
        jobs.push(Job::Fragment(fragment));
    }
    jobs
}

/// Replace `buf` with the next `want` bytes of `f` (fewer at end of file).
fn read_full(f: &mut File, buf: &mut Vec<u8>, want: usize) -> Option<()> {
    buf.clear();
    f.by_ref()
        .take(want as u64)
        .read_to_end(buf)
        .ok()
        .map(|_| ())
}

/// Uncompressed blocks of one job, or `None` if a file cannot be read.
fn job_blocks(job: &Job<'_>, block_size: usize) -> Option<Vec<Vec<u8>>> {
    match job {
        Job::Blocks { data, first, count } => {
            let start = first * block_size as u64;
            let mut blocks = Vec::new();
            match data {
                FileData::Bytes(b) => {
                    let start = usize::try_from(start).ok()?;
                    let end = b.len().min(start + *count as usize * block_size);
                    blocks.extend(b.get(start..end)?.chunks(block_size).map(<[u8]>::to_vec));
                }
                FileData::Host(p) => {
                    let mut f = File::open(p).ok()?;
                    f.seek(SeekFrom::Start(start)).ok()?;
                    for _ in 0..*count {
                        let mut buf = Vec::with_capacity(block_size);
                        read_full(&mut f, &mut buf, block_size)?;
                        if buf.is_empty() {
                            break;
                        }
                        blocks.push(buf);
                    }
                }
            }
            // backhand stores an all-zero block as a hole, uncompressed.
            blocks.retain(|b| b.iter().any(|&x| x != 0));
            Some(blocks)
        }
        Job::Fragment(files) => {
            let mut packed = Vec::with_capacity(block_size);
            for data in files {
                match data {
                    FileData::Bytes(b) => packed.extend_from_slice(b),
                    FileData::Host(p) => {
                        let mut f = File::open(p).ok()?;
                        f.read_to_end(&mut packed).ok()?;
                    }
                }
            }
            Some(vec![packed])
        }
    }
}

/// One worker's compressor: exactly `DefaultCompressor::compress`, except
/// that for zstd the context is reused across blocks (about 15% less CPU at
/// level 15; a zstd context gives the same bytes fresh or reused, and the
/// thread-count test in `tests.rs` checks hits against misses).
struct BlockCompressor {
    zstd: Option<zstd::bulk::Compressor<'static>>,
    fc: FilesystemCompressor,
    block_size: u32,
}

impl BlockCompressor {
    fn new(zstd_level: Option<u32>, fc: FilesystemCompressor, block_size: u32) -> Self {
        let zstd = zstd_level.and_then(|l| zstd::bulk::Compressor::new(l as i32).ok());
        Self {
            zstd,
            fc,
            block_size,
        }
    }

    /// `None` on failure: the write will compress (and report) it itself.
    fn compress(&mut self, block: &[u8]) -> Option<Vec<u8>> {
        match &mut self.zstd {
            Some(z) => {
                let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(block.len()));
                z.compress_to_buffer(block, &mut out).ok().map(|_| out)
            }
            None => DefaultCompressor
                .compress(block, self.fc, self.block_size)
                .ok(),
        }
    }
}

/// Compress the blocks backhand will ask for (in `files`, in write order)
/// on `threads` threads and memoize them for this thread's next write.
/// `zstd_level` is `Some` when `fc` is zstd at that level. Dropping the
/// guard frees the memo.
pub(super) fn precompress(
    files: &[&FileData],
    fc: FilesystemCompressor,
    zstd_level: Option<u32>,
    block_size: u32,
    threads: usize,
) -> MemoGuard {
    let guard = MemoGuard(());
    let jobs = plan(files, u64::from(block_size));
    let next = AtomicUsize::new(0);
    let results = Mutex::new(HashMap::new());
    thread::scope(|s| {
        for _ in 0..threads.min(jobs.len()) {
            s.spawn(|| {
                let mut mine = Vec::new();
                let mut compressor = BlockCompressor::new(zstd_level, fc, block_size);
                while let Some(job) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                    for block in job_blocks(job, block_size as usize).unwrap_or_default() {
                        if let Some(c) = compressor.compress(&block) {
                            mine.push((key(&block), c));
                        }
                    }
                }
                if let Ok(mut r) = results.lock() {
                    r.extend(mine);
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    MEMO.with(|m| *m.borrow_mut() = results);
    guard
}
