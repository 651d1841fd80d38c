//! dm-verity hash tree generator: owns the bytes that `veritysetup format`
//! would write to the hash area (superblock + hash tree) and the root hash,
//! byte for byte, without calling veritysetup.
//!
//! Only what azl-edge uses is supported: format version 1, SHA-256, a salt
//! of at most 256 bytes, power-of-two block sizes. The output layout (see
//! `docs/verity.md`):
//!
//! ```text
//! hash area = superblock (512 bytes, zero-padded to one hash block)
//!           ‖ top level ‖ … ‖ level 0          (each zero-padded to whole hash blocks)
//! level 0   = sha256(salt ‖ data block) for every data block
//! level i+1 = sha256(salt ‖ hash block) for every hash block of level i
//! root hash = sha256(salt ‖ the single block of the top level)
//! ```
//!
//! With a single data block there is no tree at all (cryptsetup and the
//! kernel both compute zero levels): the root hash is the digest of that
//! block and the hash area is the superblock alone.
//!
//! Data blocks are hashed on several threads (`std::thread::scope`); the
//! result does not depend on the thread count.
#![forbid(unsafe_code)]
use azl_formats::manifest;
use ring::digest;
use std::io::{self, Read};
use std::num::NonZeroUsize;
use std::thread;

/// Bytes of a SHA-256 digest (also its slot size in a hash block: 32 is
/// already a power of two, so format 1 adds no padding per digest).
pub const DIGEST_LEN: usize = 32;
/// Bytes of the on-disk verity superblock (before padding to a hash block).
pub const SUPERBLOCK_LEN: usize = 512;
/// Largest salt the superblock can hold.
pub const MAX_SALT_LEN: usize = 256;
/// The data and hash block size azl-edge uses (and veritysetup's default).
pub const DEFAULT_BLOCK_SIZE: u32 = 4096;

/// Smallest and largest block sizes accepted. The kernel also requires the
/// block sizes to be at most its page size (4 KiB on the boards we ship).
const MIN_BLOCK_SIZE: u32 = 512;
const MAX_BLOCK_SIZE: u32 = 64 * 1024;
/// Below this many data blocks a second thread costs more than it saves.
const MIN_BLOCKS_PER_THREAD: usize = 256;
/// Bytes read at a time by [`build_from_reader`].
const READ_CHUNK: usize = 16 * 1024 * 1024;

/// Format parameters, as given to `veritysetup format`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerityParams {
    /// Prepended to every hashed block; 0 to [`MAX_SALT_LEN`] bytes.
    pub salt: Vec<u8>,
    /// Stored in the superblock (`--uuid`), in RFC 4122 byte order.
    pub uuid: [u8; 16],
    pub data_block_size: u32,
    pub hash_block_size: u32,
}

impl VerityParams {
    /// 4096-byte data and hash blocks, the layout azl-edge uses.
    pub fn new(salt: Vec<u8>, uuid: [u8; 16]) -> Self {
        Self {
            salt,
            uuid,
            data_block_size: DEFAULT_BLOCK_SIZE,
            hash_block_size: DEFAULT_BLOCK_SIZE,
        }
    }

    fn validate(&self) -> Result<(), VerityError> {
        for (which, size) in [
            ("data", self.data_block_size),
            ("hash", self.hash_block_size),
        ] {
            if !size.is_power_of_two() || !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&size) {
                return Err(VerityError::BadBlockSize { which, size });
            }
        }
        if self.salt.len() > MAX_SALT_LEN {
            return Err(VerityError::SaltTooLong(self.salt.len()));
        }
        Ok(())
    }
}

/// What [`build`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerityOutput {
    pub root_hash: [u8; DIGEST_LEN],
    /// The superblock padded to one hash block, then the tree levels top
    /// level first: exactly what `veritysetup format` writes at
    /// `--hash-offset`.
    pub superblock_and_tree: Vec<u8>,
    pub data_blocks: u64,
}

impl VerityOutput {
    /// The manifest's record of this tree, for a partition that holds the
    /// data at offset 0 and `superblock_and_tree` at `hash_offset`.
    ///
    /// `hash_offset` must be a multiple of the hash block size (the table's
    /// `hash_start_block` is `hash_offset / hash_block_size + 1`) and must
    /// not overlap the data.
    pub fn to_manifest(
        &self,
        params: &VerityParams,
        hash_offset: u64,
    ) -> Result<manifest::Verity, VerityError> {
        let data_end = self.data_blocks * u64::from(params.data_block_size);
        if !hash_offset.is_multiple_of(u64::from(params.hash_block_size)) || hash_offset < data_end
        {
            return Err(VerityError::BadHashOffset {
                hash_offset,
                hash_block_size: params.hash_block_size,
                data_end,
            });
        }
        Ok(manifest::Verity {
            root_hash: self.root_hash,
            salt: params.salt.clone(),
            uuid: params.uuid,
            data_block_size: params.data_block_size,
            hash_block_size: params.hash_block_size,
            data_blocks: self.data_blocks,
            hash_offset,
            hash_size: self.superblock_and_tree.len() as u64,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VerityError {
    #[error(
        "verity data is {len} bytes, not a multiple of the {block_size}-byte data block size \
         (pad the filesystem image with zeros first)"
    )]
    UnalignedData { len: u64, block_size: u32 },
    #[error("verity data is empty: dm-verity needs at least one data block")]
    EmptyData,
    #[error(
        "verity {which} block size {size} is invalid: must be a power of two from 512 to 65536"
    )]
    BadBlockSize { which: &'static str, size: u32 },
    #[error("verity salt is {0} bytes; the superblock holds at most 256")]
    SaltTooLong(usize),
    #[error(
        "verity hash offset {hash_offset} must be a multiple of the {hash_block_size}-byte hash \
         block size and at or after the end of the data ({data_end})"
    )]
    BadHashOffset {
        hash_offset: u64,
        hash_block_size: u32,
        data_end: u64,
    },
    #[error("reading verity data at byte {offset} of {len}: {source}")]
    Read {
        offset: u64,
        len: u64,
        #[source]
        source: io::Error,
    },
    #[error("verity data of {0} bytes does not fit in memory on this host")]
    TooLarge(u64),
}

/// Build the hash area and root hash for `data`, hashing on as many threads
/// as the host has cores.
pub fn build(data: &[u8], params: &VerityParams) -> Result<VerityOutput, VerityError> {
    build_with_threads(data, params, default_threads())
}

/// [`build`] on exactly `threads` threads (the output is the same for any
/// count).
pub fn build_with_threads(
    data: &[u8],
    params: &VerityParams,
    threads: NonZeroUsize,
) -> Result<VerityOutput, VerityError> {
    let data_blocks = check_geometry(data.len() as u64, params)?;
    let prefix = salted(&params.salt);
    let mut level0 = vec![0u8; digests_len(data_blocks)?];
    hash_blocks_parallel(
        &prefix,
        data,
        params.data_block_size as usize,
        &mut level0,
        threads.get(),
    );
    finish(params, &prefix, data_blocks, level0, data)
}

/// [`build`] for `len` bytes read from `reader` (a file or a partition),
/// without holding the data in memory. Reads exactly `len` bytes; whatever
/// follows is not looked at.
pub fn build_from_reader<R: Read>(
    mut reader: R,
    len: u64,
    params: &VerityParams,
) -> Result<VerityOutput, VerityError> {
    let data_blocks = check_geometry(len, params)?;
    let prefix = salted(&params.salt);
    let block = params.data_block_size as usize;
    let threads = default_threads().get();
    let mut level0 = vec![0u8; digests_len(data_blocks)?];
    // READ_CHUNK is a multiple of every accepted block size.
    // Sized by the first chunk (the largest), shrunk for the last.
    let mut buf = Vec::new();
    let mut offset = 0u64;
    // With one data block the root hash is that block's digest; keep it.
    let mut only_block = Vec::new();
    for out in level0.chunks_mut(READ_CHUNK / block * DIGEST_LEN) {
        let n = out.len() / DIGEST_LEN * block;
        buf.resize(n, 0);
        let chunk = buf.as_mut_slice();
        reader
            .read_exact(chunk)
            .map_err(|source| VerityError::Read {
                offset,
                len,
                source,
            })?;
        hash_blocks_parallel(&prefix, chunk, block, out, threads);
        if data_blocks == 1 {
            only_block = chunk.to_vec();
        }
        offset += n as u64;
    }
    finish(params, &prefix, data_blocks, level0, &only_block)
}

/// Format a 16-byte UUID the way `veritysetup --uuid` takes it
/// (canonical lower-case hyphenated text).
pub fn uuid_string(uuid: &[u8; 16]) -> String {
    uuid::Uuid::from_bytes(*uuid).hyphenated().to_string()
}

fn default_threads() -> NonZeroUsize {
    thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
}

/// Number of data blocks, after checking the parameters and the length.
fn check_geometry(len: u64, params: &VerityParams) -> Result<u64, VerityError> {
    params.validate()?;
    let block_size = params.data_block_size;
    if !len.is_multiple_of(u64::from(block_size)) {
        return Err(VerityError::UnalignedData { len, block_size });
    }
    match len / u64::from(block_size) {
        0 => Err(VerityError::EmptyData),
        n => Ok(n),
    }
}

fn digests_len(blocks: u64) -> Result<usize, VerityError> {
    blocks
        .checked_mul(DIGEST_LEN as u64)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or(VerityError::TooLarge(blocks))
}

/// A SHA-256 context that has already absorbed the salt.
fn salted(salt: &[u8]) -> digest::Context {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(salt);
    ctx
}

fn hash_one(prefix: &digest::Context, block: &[u8], out: &mut [u8]) {
    let mut ctx = prefix.clone();
    ctx.update(block);
    out.copy_from_slice(ctx.finish().as_ref());
}

fn hash_blocks(prefix: &digest::Context, data: &[u8], block_size: usize, out: &mut [u8]) {
    for (block, slot) in data
        .chunks_exact(block_size)
        .zip(out.chunks_exact_mut(DIGEST_LEN))
    {
        hash_one(prefix, block, slot);
    }
}

/// Hash every `block_size` block of `data` into consecutive digests in
/// `out`, splitting the work into `threads` contiguous runs.
fn hash_blocks_parallel(
    prefix: &digest::Context,
    data: &[u8],
    block_size: usize,
    out: &mut [u8],
    threads: usize,
) {
    let blocks = data.len() / block_size;
    let threads = threads.min(blocks / MIN_BLOCKS_PER_THREAD).max(1);
    if threads == 1 {
        hash_blocks(prefix, data, block_size, out);
        return;
    }
    let per_thread = blocks.div_ceil(threads);
    thread::scope(|s| {
        let mut runs = data
            .chunks(per_thread * block_size)
            .zip(out.chunks_mut(per_thread * DIGEST_LEN));
        // The calling thread takes the first run itself.
        let first = runs.next();
        for (d, o) in runs {
            s.spawn(move || hash_blocks(prefix, d, block_size, o));
        }
        if let Some((d, o)) = first {
            hash_blocks(prefix, d, block_size, o);
        }
    });
}

/// Number of tree levels, as cryptsetup's `hash_levels()` and the kernel's
/// `verity_ctr()` compute it: the smallest `L` with `per_block^L >= blocks`.
fn level_count(data_blocks: u64, hash_per_block_bits: u32) -> u32 {
    let mut levels = 0;
    while hash_per_block_bits * levels < 64
        && (data_blocks - 1) >> (hash_per_block_bits * levels) != 0
    {
        levels += 1;
    }
    levels
}

/// Build the levels above `level0` (the unpadded data-block digests), the
/// root hash and the superblock. `single_block` is the data itself when
/// there is exactly one data block (its digest is the root hash).
fn finish(
    params: &VerityParams,
    prefix: &digest::Context,
    data_blocks: u64,
    mut level0: Vec<u8>,
    single_block: &[u8],
) -> Result<VerityOutput, VerityError> {
    let hbs = params.hash_block_size as usize;
    let levels = level_count(data_blocks, (hbs / DIGEST_LEN).ilog2());
    let mut root_hash = [0u8; DIGEST_LEN];

    // Bottom-up: level 0 first.
    let mut tree: Vec<Vec<u8>> = Vec::with_capacity(levels as usize);
    if levels == 0 {
        hash_one(prefix, single_block, &mut root_hash);
    } else {
        level0.resize(level0.len().next_multiple_of(hbs), 0);
        tree.push(level0);
        for _ in 1..levels {
            let below = tree.last().map_or(&[][..], Vec::as_slice);
            let mut level = vec![0u8; (below.len() / hbs * DIGEST_LEN).next_multiple_of(hbs)];
            hash_blocks(prefix, below, hbs, &mut level);
            tree.push(level);
        }
        if let Some(top) = tree.last() {
            debug_assert_eq!(top.len(), hbs, "the top level is one hash block");
            hash_one(prefix, top, &mut root_hash);
        }
    }

    let tree_len: usize = tree.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(hbs + tree_len);
    // The superblock layout is the one the device reads (azl-formats).
    let sb = azl_formats::verity::superblock(
        &params.uuid,
        &params.salt,
        params.data_block_size,
        params.hash_block_size,
        data_blocks,
    )
    .map_err(|_| VerityError::SaltTooLong(params.salt.len()))?;
    out.extend_from_slice(&sb);
    out.resize(hbs, 0);
    for level in tree.iter().rev() {
        out.extend_from_slice(level);
    }
    Ok(VerityOutput {
        root_hash,
        superblock_and_tree: out,
        data_blocks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::Path;
    use std::process::{Command, Output};

    const SALT: [u8; 32] = [
        0x5a, 0x1f, 0x00, 0x42, 0x99, 0x10, 0x3c, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04,
        0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13,
        0x14, 0x15,
    ];
    const UUID: [u8; 16] = [
        0x3f, 0x2a, 0x9b, 0x10, 0x44, 0x5e, 0x4c, 0x1d, 0x8e, 0x02, 0x6a, 0x7b, 0x90, 0xc1, 0xd2,
        0xe3,
    ];

    /// Deterministic pseudo-random bytes (splitmix64).
    fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed;
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        out.truncate(len);
        out
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn veritysetup(args: &[&str]) -> Output {
        match Command::new("veritysetup").args(args).output() {
            Ok(out) => out,
            Err(e) => panic!("cannot run veritysetup ({e}): run scripts/setup.sh"),
        }
    }

    fn path_str(p: &Path) -> &str {
        p.to_str().expect("temp paths are UTF-8")
    }

    /// Run the real `veritysetup format` on `data_file` and return its root
    /// hash and hash file bytes.
    fn reference(dir: &Path, data_file: &Path, params: &VerityParams) -> ([u8; 32], Vec<u8>) {
        let hash_file = dir.join("hash.ref");
        fs::write(&hash_file, b"").unwrap();
        let salt = if params.salt.is_empty() {
            "-".to_string()
        } else {
            hex(&params.salt)
        };
        let out = veritysetup(&[
            "format",
            path_str(data_file),
            path_str(&hash_file),
            "--format=1",
            "--hash=sha256",
            &format!("--salt={salt}"),
            &format!("--uuid={}", uuid_string(&params.uuid)),
            &format!("--data-block-size={}", params.data_block_size),
            &format!("--hash-block-size={}", params.hash_block_size),
        ]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "veritysetup format failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let root_hex = stdout
            .lines()
            .find_map(|l| l.strip_prefix("Root hash:"))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no root hash in veritysetup output: {stdout}"));
        let mut root = [0u8; 32];
        assert_eq!(root_hex.len(), 64, "root hash {root_hex}");
        for (i, b) in root.iter_mut().enumerate() {
            *b = u8::from_str_radix(&root_hex[2 * i..2 * i + 2], 16).unwrap();
        }
        (root, fs::read(&hash_file).unwrap())
    }

    fn verify(data: &Path, hash: &Path, root: &[u8], extra: &[&str]) -> bool {
        let root = hex(root);
        let mut args = vec!["verify", path_str(data), path_str(hash), &root];
        args.extend_from_slice(extra);
        veritysetup(&args).status.success()
    }

    /// Our output equals veritysetup's byte for byte, veritysetup accepts it
    /// (separate and combined layouts) and rejects it after a flipped byte.
    fn check_against_veritysetup(blocks: usize, params: &VerityParams, seed: u64) {
        let dir = tempfile::tempdir().unwrap();
        let data = random_bytes(blocks * params.data_block_size as usize, seed);
        let data_file = dir.path().join("data");
        fs::write(&data_file, &data).unwrap();

        let ours = build(&data, params).unwrap();
        let (root, hash_bytes) = reference(dir.path(), &data_file, params);
        assert_eq!(ours.data_blocks, blocks as u64);
        assert_eq!(
            hex(&ours.root_hash),
            hex(&root),
            "root hash, {blocks} blocks"
        );
        assert_eq!(
            ours.superblock_and_tree.len(),
            hash_bytes.len(),
            "hash area length, {blocks} blocks"
        );
        assert!(
            ours.superblock_and_tree == hash_bytes,
            "hash area bytes differ, {blocks} blocks"
        );
        // The device's verifier accepts veritysetup's output, and so ours.
        check_with_verified_tree(&data, params, root, &hash_bytes);

        // veritysetup verifies our hash file, and rejects a corrupted data block.
        let hash_file = dir.path().join("hash.ours");
        fs::write(&hash_file, &ours.superblock_and_tree).unwrap();
        assert!(verify(&data_file, &hash_file, &ours.root_hash, &[]));
        let mut bad = data.clone();
        bad[data.len() / 2] ^= 0x01;
        let bad_file = dir.path().join("data.bad");
        fs::write(&bad_file, &bad).unwrap();
        assert!(!verify(&bad_file, &hash_file, &ours.root_hash, &[]));

        // Combined layout: data ‖ hash area in one file, as in a root slot.
        let combined = dir.path().join("combined");
        let mut bytes = data;
        let hash_offset = bytes.len();
        bytes.extend_from_slice(&ours.superblock_and_tree);
        fs::write(&combined, &bytes).unwrap();
        let offset_arg = format!("--hash-offset={hash_offset}");
        assert!(verify(
            &combined,
            &combined,
            &ours.root_hash,
            &[&offset_arg]
        ));
        // A flipped byte in the tree is caught too (the top level's block;
        // one data block has no tree, its digest is the root hash).
        if blocks > 1 {
            bytes[hash_offset + params.hash_block_size as usize] ^= 0x80;
            fs::write(&combined, &bytes).unwrap();
            assert!(!verify(
                &combined,
                &combined,
                &ours.root_hash,
                &[&offset_arg]
            ));
        } else {
            assert_eq!(
                ours.superblock_and_tree.len(),
                params.hash_block_size as usize
            );
        }
    }

    fn params() -> VerityParams {
        VerityParams::new(SALT.to_vec(), UUID)
    }

    /// The device side's streaming verifier (azl_formats::verity) accepts
    /// `area` (a hash area for `data` with root hash `root`): the area
    /// verifies, every data block passes, a flipped data block or a
    /// flipped tree byte fails.
    fn check_with_verified_tree(data: &[u8], params: &VerityParams, root: [u8; 32], area: &[u8]) {
        use azl_formats::verity::VerifiedTree;
        let dbs = params.data_block_size as usize;
        let blocks = data.len() / dbs;
        let hbs = u64::from(params.hash_block_size);
        let out = VerityOutput {
            root_hash: root,
            superblock_and_tree: area.to_vec(),
            data_blocks: blocks as u64,
        };
        let hash_offset = (data.len() as u64).next_multiple_of(hbs);
        let v = out.to_manifest(params, hash_offset).unwrap();
        let limit = u64::MAX;
        assert_eq!(
            VerifiedTree::expected_size(&v, limit).unwrap(),
            area.len() as u64
        );
        let tree = VerifiedTree::new(&v, area.to_vec(), limit)
            .unwrap_or_else(|e| panic!("{blocks} blocks: device rejects the hash area: {e:?}"));
        assert_eq!(tree.area(), area);
        for (i, block) in data.chunks_exact(dbs).enumerate() {
            assert!(tree.check_block(i as u64, block), "block {i} of {blocks}");
        }
        // Flipped data: first, middle and last block.
        for i in [0, blocks / 2, blocks - 1] {
            let mut block = data[i * dbs..(i + 1) * dbs].to_vec();
            block[dbs / 3] ^= 0x04;
            assert!(
                !tree.check_block(i as u64, &block),
                "flipped block {i} of {blocks}"
            );
        }
        // A block in the wrong place, a short block, an index past the end.
        if blocks > 1 && data[..dbs] != data[dbs..2 * dbs] {
            assert!(!tree.check_block(1, &data[..dbs]));
        }
        assert!(!tree.check_block(0, &data[..dbs - 1]));
        assert!(!tree.check_block(blocks as u64, &data[..dbs]));
        // A flipped byte anywhere in the area (superblock, each level) is refused.
        for at in [0, 80, area.len() / 2, area.len() - 1] {
            let mut bad = area.to_vec();
            bad[at] ^= 0x01;
            // The superblock's padding and the tree's padding are checked
            // too: there is no byte of the area the device ignores.
            assert!(
                VerifiedTree::new(&v, bad, limit).is_err(),
                "{blocks} blocks: flipped area byte {at} accepted"
            );
        }
        // A different root hash is refused: by the tree, or (one data
        // block, no tree: the root hash is that block's digest) by the block.
        let mut other = v.clone();
        other.root_hash[0] ^= 0x01;
        match VerifiedTree::new(&other, area.to_vec(), limit) {
            Err(_) => assert!(blocks > 1),
            Ok(t) => assert!(blocks == 1 && !t.check_block(0, &data[..dbs])),
        }
    }

    #[test]
    fn verity_output_passes_the_device_verifier() {
        let mut p = params();
        for (blocks, seed) in [
            (1, 1),
            (2, 2),
            (127, 3),
            (128, 4),
            (129, 5),
            (128 * 128 + 1, 6),
        ] {
            let data = random_bytes(blocks * p.data_block_size as usize, seed);
            let out = build(&data, &p).unwrap();
            check_with_verified_tree(&data, &p, out.root_hash, &out.superblock_and_tree);
        }
        // Other salts and block sizes: no salt, the longest, small blocks.
        for (salt, dbs, hbs) in [
            (vec![], 4096, 4096),
            (vec![7; 256], 512, 1024),
            (vec![1], 1024, 512),
        ] {
            p.salt = salt;
            p.data_block_size = dbs;
            p.hash_block_size = hbs;
            let data = random_bytes(300 * dbs as usize, u64::from(dbs));
            let out = build(&data, &p).unwrap();
            check_with_verified_tree(&data, &p, out.root_hash, &out.superblock_and_tree);
        }
    }

    #[test]
    fn verity_matches_veritysetup_one_block() {
        check_against_veritysetup(1, &params(), 1);
    }

    #[test]
    fn verity_matches_veritysetup_level_boundaries() {
        for (blocks, seed) in [(2, 2), (127, 3), (128, 4), (129, 5), (256, 6), (257, 7)] {
            check_against_veritysetup(blocks, &params(), seed);
        }
    }

    #[test]
    fn verity_matches_veritysetup_three_levels() {
        // 128 * 128 + 1 data blocks: the first size that needs a third level.
        check_against_veritysetup(128 * 128 + 1, &params(), 8);
    }

    #[test]
    fn verity_matches_veritysetup_few_mib() {
        check_against_veritysetup(3 * 256 + 5, &params(), 9);
    }

    #[test]
    fn verity_matches_veritysetup_salts_and_block_sizes() {
        let mut p = params();
        p.salt = Vec::new();
        check_against_veritysetup(300, &p, 10);
        p.salt = random_bytes(MAX_SALT_LEN, 11);
        check_against_veritysetup(300, &p, 12);
        p.salt = SALT.to_vec();
        p.hash_block_size = 1024;
        check_against_veritysetup(1000, &p, 13);
        p.data_block_size = 1024;
        p.hash_block_size = 4096;
        check_against_veritysetup(1000, &p, 14);
    }

    #[test]
    fn verity_thread_count_and_reader_do_not_change_output() {
        let p = params();
        let data = random_bytes(4096 * 2051, 20);
        let one = build_with_threads(&data, &p, NonZeroUsize::MIN).unwrap();
        for threads in [2, 3, 7] {
            let n = NonZeroUsize::new(threads).unwrap();
            assert_eq!(build_with_threads(&data, &p, n).unwrap(), one);
        }
        assert_eq!(
            build_from_reader(&data[..], data.len() as u64, &p).unwrap(),
            one
        );
        let small = &data[..4096];
        assert_eq!(
            build_from_reader(small, 4096, &p).unwrap(),
            build(small, &p).unwrap()
        );
    }

    #[test]
    fn verity_rejects_bad_input() {
        let p = params();
        let err = build(&[0u8; 4097], &p).unwrap_err();
        assert!(matches!(
            err,
            VerityError::UnalignedData {
                len: 4097,
                block_size: 4096
            }
        ));
        assert!(err.to_string().contains("not a multiple of the 4096-byte"));
        assert!(matches!(build(&[], &p), Err(VerityError::EmptyData)));
        let mut q = p.clone();
        q.hash_block_size = 3000;
        assert!(matches!(
            build(&[0u8; 4096], &q),
            Err(VerityError::BadBlockSize {
                which: "hash",
                size: 3000
            })
        ));
        q = p.clone();
        q.salt = vec![0; 257];
        assert!(matches!(
            build(&[0u8; 4096], &q),
            Err(VerityError::SaltTooLong(257))
        ));
        let err = build_from_reader(&[0u8; 4096][..], 8192, &p).unwrap_err();
        assert!(matches!(
            err,
            VerityError::Read {
                offset: 0,
                len: 8192,
                ..
            }
        ));
    }

    #[test]
    fn verity_manifest_mapping() {
        let p = params();
        let data = random_bytes(4096 * 200, 30);
        let out = build(&data, &p).unwrap();
        let m = out.to_manifest(&p, data.len() as u64).unwrap();
        assert_eq!(m.data_blocks, 200);
        assert_eq!(m.hash_size, out.superblock_and_tree.len() as u64);
        assert_eq!(
            m.table_params("/dev/vda2"),
            format!(
                "1 /dev/vda2 /dev/vda2 4096 4096 200 201 sha256 {} {}",
                hex(&out.root_hash),
                hex(&SALT)
            )
        );
        assert!(out.to_manifest(&p, data.len() as u64 + 512).is_err());
        assert!(out.to_manifest(&p, data.len() as u64 - 4096).is_err());
    }

    #[test]
    fn verity_uuid_string() {
        assert_eq!(uuid_string(&UUID), "3f2a9b10-445e-4c1d-8e02-6a7b90c1d2e3");
    }
}
