//! The dm-verity layout rules both sides use: the tree geometry (how many
//! levels, where each level sits in the hash area), the 512-byte superblock,
//! and checking a received hash area and data blocks against the signed
//! root hash — so an installer can verify every data block as it arrives
//! and never write an unverified byte.
//!
//! Layout (the one `veritysetup format` writes, format 1, SHA-256):
//!
//! ```text
//! hash area = superblock (512 bytes, zero-padded to one hash block)
//!           ‖ top level ‖ … ‖ level 0     (each whole hash blocks, zero-padded)
//! level 0   = sha256(salt ‖ data block) for every data block
//! level i+1 = sha256(salt ‖ hash block) for every hash block of level i
//! root hash = sha256(salt ‖ the one block of the top level)
//! ```
//! With one data block there are no levels: the root hash is that block's
//! digest and the hash area is the superblock block alone.
use crate::manifest::{Digest, Verity};
use alloc::vec::Vec;
use core::fmt;
use ring::digest::{Context, SHA256};

/// Bytes of a SHA-256 digest.
pub const DIGEST_LEN: usize = 32;
/// Bytes of the on-disk superblock before padding.
pub const SUPERBLOCK_LEN: usize = 512;
/// Largest salt the superblock holds.
pub const MAX_SALT_LEN: usize = 256;
/// Most levels a tree can have (2^64 blocks with 2 digests per block).
const MAX_LEVELS: usize = 64;

const SIGNATURE: &[u8; 8] = b"verity\0\0";
const ALGORITHM: &[u8] = b"sha256";

/// Why a verity layout or hash area is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerityError {
    /// Block sizes must be powers of two from 512 to 65536.
    BadBlockSize(u32),
    SaltTooLong(usize),
    NoDataBlocks,
    /// The manifest's `hash_size` is not what the geometry needs.
    HashSize {
        declared: u64,
        expected: u64,
    },
    /// The hash area is larger than the caller allows in memory.
    TooLarge {
        size: u64,
        limit: u64,
    },
    /// Fewer or more bytes than the hash area's size were given.
    Length {
        got: usize,
        expected: u64,
    },
    /// The superblock block differs from the one the manifest implies.
    Superblock,
    /// A tree block does not hash to its entry one level up (level 0 is the
    /// bottom; the top level is checked against the root hash).
    Tree {
        level: usize,
        block: u64,
    },
}

impl fmt::Display for VerityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadBlockSize(s) => {
                write!(
                    f,
                    "verity block size {s} is not a power of two from 512 to 65536"
                )
            }
            Self::SaltTooLong(n) => write!(f, "verity salt of {n} bytes (at most 256)"),
            Self::NoDataBlocks => f.write_str("verity data has no blocks"),
            Self::HashSize { declared, expected } => write!(
                f,
                "verity hash area declared as {declared} bytes, the geometry needs {expected}"
            ),
            Self::TooLarge { size, limit } => {
                write!(
                    f,
                    "verity hash area of {size} bytes exceeds the limit of {limit}"
                )
            }
            Self::Length { got, expected } => {
                write!(f, "verity hash area is {got} bytes, expected {expected}")
            }
            Self::Superblock => {
                f.write_str("verity superblock does not match the signed parameters")
            }
            Self::Tree { level, block } => write!(
                f,
                "verity hash block {block} of level {level} does not match the signed root hash"
            ),
        }
    }
}

/// Where each level sits, for `data_blocks` blocks and a hash block size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Geometry {
    pub hash_block_size: u64,
    pub data_blocks: u64,
    /// Blocks per level, level 0 (bottom) first.
    pub level_blocks: heapless::Vec<u64, MAX_LEVELS>,
}

impl Geometry {
    pub fn new(data_blocks: u64, hash_block_size: u32) -> Result<Geometry, VerityError> {
        check_block_size(hash_block_size)?;
        if data_blocks == 0 {
            return Err(VerityError::NoDataBlocks);
        }
        let per_block = u64::from(hash_block_size) / DIGEST_LEN as u64;
        let mut level_blocks = heapless::Vec::new();
        let mut below = data_blocks;
        while below > 1 {
            below = below.div_ceil(per_block);
            level_blocks
                .push(below)
                .map_err(|_| VerityError::NoDataBlocks)?;
        }
        Ok(Geometry {
            hash_block_size: u64::from(hash_block_size),
            data_blocks,
            level_blocks,
        })
    }

    /// Bytes of the whole hash area (superblock block + every level).
    pub fn hash_area_size(&self) -> u64 {
        let blocks: u64 = self.level_blocks.iter().sum();
        blocks
            .saturating_add(1)
            .saturating_mul(self.hash_block_size)
    }

    /// Byte offset of level `level` inside the hash area (levels are
    /// stored top first, after the superblock block).
    pub fn level_offset(&self, level: usize) -> u64 {
        let above: u64 = self.level_blocks.iter().skip(level + 1).sum();
        above.saturating_add(1).saturating_mul(self.hash_block_size)
    }
}

fn check_block_size(size: u32) -> Result<(), VerityError> {
    if size.is_power_of_two() && (512..=65536).contains(&size) {
        Ok(())
    } else {
        Err(VerityError::BadBlockSize(size))
    }
}

/// The 512-byte superblock (`struct verity_sb`, little-endian).
pub fn superblock(
    uuid: &[u8; 16],
    salt: &[u8],
    data_block_size: u32,
    hash_block_size: u32,
    data_blocks: u64,
) -> Result<[u8; SUPERBLOCK_LEN], VerityError> {
    if salt.len() > MAX_SALT_LEN {
        return Err(VerityError::SaltTooLong(salt.len()));
    }
    let mut sb = [0u8; SUPERBLOCK_LEN];
    let fields: [(usize, &[u8]); 10] = [
        (0, SIGNATURE),
        (8, &1u32.to_le_bytes()),  // format version
        (12, &1u32.to_le_bytes()), // hash type (normal)
        (16, uuid),
        (32, ALGORITHM),
        (64, &data_block_size.to_le_bytes()),
        (68, &hash_block_size.to_le_bytes()),
        (72, &data_blocks.to_le_bytes()),
        (80, &(salt.len() as u16).to_le_bytes()),
        (88, salt),
    ];
    for (at, bytes) in fields {
        for (o, b) in sb.iter_mut().skip(at).zip(bytes) {
            *o = *b;
        }
    }
    Ok(sb)
}

/// sha256(salt ‖ block).
pub fn salted_digest(salt: &[u8], block: &[u8]) -> Digest {
    let mut ctx = Context::new(&SHA256);
    ctx.update(salt);
    ctx.update(block);
    let mut out = [0u8; DIGEST_LEN];
    for (o, b) in out.iter_mut().zip(ctx.finish().as_ref()) {
        *o = *b;
    }
    out
}

/// A hash area that has been checked against a signed [`Verity`]: from
/// here on, [`VerifiedTree::check_block`] tells whether a data block is
/// the one the signer built.
#[derive(Debug)]
pub struct VerifiedTree<'v> {
    verity: &'v Verity,
    geometry: Geometry,
    area: Vec<u8>,
}

impl<'v> VerifiedTree<'v> {
    /// The hash area's size for `verity`, checked against its geometry and
    /// against `limit` (the most bytes the caller will hold in memory).
    pub fn expected_size(verity: &Verity, limit: u64) -> Result<u64, VerityError> {
        check_block_size(verity.data_block_size)?;
        let geometry = Geometry::new(verity.data_blocks, verity.hash_block_size)?;
        let expected = geometry.hash_area_size();
        if verity.hash_size != expected {
            return Err(VerityError::HashSize {
                declared: verity.hash_size,
                expected,
            });
        }
        if expected > limit {
            return Err(VerityError::TooLarge {
                size: expected,
                limit,
            });
        }
        Ok(expected)
    }

    /// Check a whole hash area (superblock block + tree) against `verity`.
    pub fn new(verity: &'v Verity, area: Vec<u8>, limit: u64) -> Result<Self, VerityError> {
        let expected = Self::expected_size(verity, limit)?;
        if area.len() as u64 != expected {
            return Err(VerityError::Length {
                got: area.len(),
                expected,
            });
        }
        let geometry = Geometry::new(verity.data_blocks, verity.hash_block_size)?;
        let hbs = geometry.hash_block_size as usize;
        let sb = superblock(
            &verity.uuid,
            &verity.salt,
            verity.data_block_size,
            verity.hash_block_size,
            verity.data_blocks,
        )?;
        let first = area.get(..hbs).ok_or(VerityError::Superblock)?;
        let (sb_part, pad) = first.split_at(SUPERBLOCK_LEN.min(hbs));
        if sb_part != sb.as_slice() || pad.iter().any(|&b| b != 0) {
            return Err(VerityError::Superblock);
        }
        let levels = geometry.level_blocks.len();
        for level in (0..levels).rev() {
            let count = geometry.level_blocks.get(level).copied().unwrap_or(0);
            let at = geometry.level_offset(level) as usize;
            for k in 0..count {
                let start = at + k as usize * hbs;
                let block = area
                    .get(start..start + hbs)
                    .ok_or(VerityError::Tree { level, block: k })?;
                let digest = salted_digest(&verity.salt, block);
                let want: &[u8] = if level + 1 == levels {
                    &verity.root_hash
                } else {
                    let up = geometry.level_offset(level + 1) as usize + k as usize * DIGEST_LEN;
                    area.get(up..up + DIGEST_LEN)
                        .ok_or(VerityError::Tree { level, block: k })?
                };
                if digest != want {
                    return Err(VerityError::Tree { level, block: k });
                }
            }
        }
        Ok(VerifiedTree {
            verity,
            geometry,
            area,
        })
    }

    /// Is `block` exactly data block `index` of the signed image?
    pub fn check_block(&self, index: u64, block: &[u8]) -> bool {
        if index >= self.geometry.data_blocks || block.len() != self.verity.data_block_size as usize
        {
            return false;
        }
        let digest = salted_digest(&self.verity.salt, block);
        if self.geometry.level_blocks.is_empty() {
            return digest == self.verity.root_hash;
        }
        let at = self.geometry.level_offset(0) as usize + index as usize * DIGEST_LEN;
        self.area.get(at..at + DIGEST_LEN) == Some(digest.as_slice())
    }

    /// The verified hash area bytes (to write at `hash_offset`).
    pub fn area(&self) -> &[u8] {
        &self.area
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reference tree builder written straight from the layout rules
    /// (not shared with VerifiedTree), for the tests.
    fn build(data: &[u8], salt: &[u8], bs: u32) -> (Verity, Vec<u8>) {
        let n = (data.len() / bs as usize) as u64;
        let hbs = bs as usize;
        let mut levels: Vec<Vec<u8>> = Vec::new();
        let mut below: Vec<u8> = data.to_vec();
        let root;
        if n == 1 {
            root = salted_digest(salt, data);
        } else {
            loop {
                let mut lvl = Vec::new();
                for b in below.chunks(hbs) {
                    lvl.extend_from_slice(&salted_digest(salt, b));
                }
                lvl.resize(lvl.len().next_multiple_of(hbs), 0);
                let done = lvl.len() == hbs;
                levels.push(lvl.clone());
                below = lvl;
                if done {
                    root = salted_digest(salt, &below);
                    break;
                }
            }
        }
        let mut area = superblock(&[9; 16], salt, bs, bs, n).unwrap().to_vec();
        area.resize(hbs, 0);
        for l in levels.iter().rev() {
            area.extend_from_slice(l);
        }
        let v = Verity {
            root_hash: root,
            salt: salt.to_vec(),
            uuid: [9; 16],
            data_block_size: bs,
            hash_block_size: bs,
            data_blocks: n,
            hash_offset: data.len() as u64,
            hash_size: area.len() as u64,
        };
        (v, area)
    }

    fn data(blocks: usize, bs: usize) -> Vec<u8> {
        (0..blocks * bs).map(|i| (i * 7 + i / 4096) as u8).collect()
    }

    #[test]
    fn geometry_matches_reference_builder() {
        for blocks in [1usize, 2, 3, 16, 17, 300] {
            let d = data(blocks, 512);
            let (v, area) = build(&d, b"salt", 512);
            let g = Geometry::new(v.data_blocks, 512).unwrap();
            assert_eq!(g.hash_area_size(), area.len() as u64, "{blocks} blocks");
            let t = VerifiedTree::new(&v, area, 1 << 30).unwrap();
            for (i, b) in d.chunks(512).enumerate() {
                assert!(t.check_block(i as u64, b), "block {i} of {blocks}");
            }
            let mut bad = d[..512].to_vec();
            bad[3] ^= 1;
            assert!(!t.check_block(0, &bad));
            assert!(
                !t.check_block(blocks as u64, &d[..512]),
                "index past the end"
            );
        }
    }

    #[test]
    fn every_tampered_tree_byte_is_refused() {
        let d = data(40, 512);
        let (v, area) = build(&d, b"s", 512);
        for i in (0..area.len()).step_by(5) {
            let mut a = area.clone();
            a[i] ^= 0x10;
            assert!(
                VerifiedTree::new(&v, a, 1 << 30).is_err(),
                "byte {i} accepted"
            );
        }
        let mut short = area.clone();
        short.pop();
        assert!(matches!(
            VerifiedTree::new(&v, short, 1 << 30),
            Err(VerityError::Length { .. })
        ));
    }

    #[test]
    fn declared_sizes_are_checked_before_use() {
        let d = data(40, 512);
        let (mut v, area) = build(&d, b"s", 512);
        assert!(matches!(
            VerifiedTree::expected_size(&v, 1024),
            Err(VerityError::TooLarge { .. })
        ));
        v.hash_size += 512;
        assert!(matches!(
            VerifiedTree::new(&v, area, 1 << 30),
            Err(VerityError::HashSize { .. })
        ));
        v.data_blocks = u64::MAX;
        assert!(VerifiedTree::expected_size(&v, 1 << 30).is_err());
        v.hash_block_size = 1000;
        assert_eq!(
            VerifiedTree::expected_size(&v, 1 << 30),
            Err(VerityError::BadBlockSize(1000))
        );
        assert_eq!(Geometry::new(0, 4096), Err(VerityError::NoDataBlocks));
    }
}
