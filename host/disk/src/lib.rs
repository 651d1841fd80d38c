//! The disk image: partition layout, partition table and the images of the
//! partitions that are not the root filesystem.
//!
//! ```text
//! board [disk] ─► Layout ─► place(layout, seed) ─► Placed ─┐
//!                                                            ├─► write_disk(path) ─► disk.img
//! fat_image (boot)  ext4_image (data)  root slots (others) ──┘
//!                  read_table / read_gpt(path) ◄── imagegen inspect, attest, tests
//!                  (through azl_formats::gpt, the device's reader)
//! ```
//!
//! Submodules, one concern each:
//!
//! - [`layout`]: what a board asks for (`[disk]`): partitions, kinds, sizes, and
//!   the rules a layout must follow.
//! - [`place`]: where each partition goes (1 MiB aligned), its type GUID and a
//!   deterministic partition GUID.
//! - [`gpt`]: the protective MBR and the primary and backup GPT, encoded and
//!   read back with every CRC checked.
//! - [`write`]: the disk image file, written sparse and atomically.
//! - [`fat`]: the FAT boot partition image, built in memory.
//! - [`ext4`]: the empty ext4 data partition image, made by `mke2fs`.
//!
//! Everything is rootless (no mount, no loop device, no privileged ioctl) and
//! reproducible: the same inputs give byte-identical output. GUIDs come from
//! [`guid`] (a hash of a build seed and a label), never from a random number
//! generator, and no wall-clock time is read.
//!
//! # GUID byte order
//!
//! Every `[u8; 16]` GUID in this module is in the **GPT on-disk byte order**
//! ("mixed-endian", as UEFI stores `EFI_GUID`): the first three fields
//! (`u32`, `u16`, `u16`) little-endian, the last 8 bytes as written. The
//! canonical text `c12a7328-f81f-11d2-ba4b-00a0c93ec93b` is stored as
//! `28 73 2a c1 1f f8 d2 11 ba 4b 00 a0 c9 3e c9 3b`. [`guid_string`] prints
//! the canonical text (as `sgdisk`, `sfdisk` and `blkid` show it);
//! [`swap_guid_order`] converts to and from RFC 4122 (big-endian) order, which
//! is what filesystem superblocks store (see [`ext4_image`]).
#![forbid(unsafe_code)]
use azl_formats::manifest::PartitionKind;
use std::path::PathBuf;
use uuid::Uuid;

pub mod ext4;
pub mod fat;
pub mod gpt;
pub mod layout;
pub mod place;
pub mod write;

pub use ext4::ext4_image;
pub use fat::fat_image;
pub use gpt::{open_image, read_gpt, read_table, GptInfo, GptPartition, GptProblem, GptRead};
pub use layout::{Layout, LayoutProblem, PartSpec, TableKind};
pub use place::{place, Placed, PlacedPartition};
pub use write::write_disk;

/// One MiB: partition alignment and the gap before the first partition.
pub const MIB: u64 = 1 << 20;
/// Logical sector size of the images this module writes.
pub const SECTOR_SIZE: u64 = 512;

/// Deterministic GUID for `label` (e.g. `"gpt-disk"`, `"gpt-partition:root-a"`)
/// in a build identified by `seed`: the first 16 bytes of
/// `sha256(seed ‖ label)`, with the RFC 4122 version (4, "random") and
/// variant (`10xx`) bits set, **in GPT on-disk (mixed-endian) byte order**:
/// the version nibble is the high nibble of byte 7 (the `u16` at bytes 6–7
/// is little-endian) and the variant bits are the top of byte 8. Printed with
/// [`guid_string`] it reads `xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx`.
///
/// The seed is fixed-size in practice (a digest of the build inputs), so
/// `seed ‖ label` is unambiguous; labels within one build must differ.
pub fn guid(seed: &[u8], label: &str) -> [u8; 16] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(seed);
    ctx.update(label.as_bytes());
    let digest = ctx.finish();
    let mut g = [0u8; 16];
    for (to, from) in g.iter_mut().zip(digest.as_ref()) {
        *to = *from;
    }
    g[7] = (g[7] & 0x0f) | 0x40;
    g[8] = (g[8] & 0x3f) | 0x80;
    g
}

/// Deterministic filesystem UUID for `label` in a build identified by
/// `seed`, in RFC 4122 byte order (what ext4 and other superblocks store):
/// [`guid`] with the byte order swapped, so it, too, prints as a v4 UUID.
pub fn fs_uuid(seed: &[u8], label: &str) -> [u8; 16] {
    swap_guid_order(guid(seed, label))
}

/// Convert a GUID between GPT on-disk (mixed-endian) and RFC 4122
/// (big-endian) byte order: reverses the first three fields (the `uuid`
/// crate's `from_bytes_le`). The operation is its own inverse.
pub fn swap_guid_order(g: [u8; 16]) -> [u8; 16] {
    Uuid::from_bytes_le(g).into_bytes()
}

/// Canonical lower-case text of a GUID given in GPT on-disk byte order.
pub fn guid_string(g: &[u8; 16]) -> String {
    Uuid::from_bytes_le(*g).hyphenated().to_string()
}

/// Canonical lower-case text of a UUID given in RFC 4122 byte order.
pub fn uuid_string(u: &[u8; 16]) -> String {
    Uuid::from_bytes(*u).hyphenated().to_string()
}

/// A GUID in GPT on-disk byte order from its canonical fields
/// (`d1-d2-d3-d4[0..2]-d4[2..8]`).
pub const fn gpt_guid(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> [u8; 16] {
    Uuid::from_fields(d1, d2, d3, &d4).to_bytes_le()
}

/// Find a host tool (`mke2fs`, `sgdisk`, …) in `$PATH`, then in the
/// `sbin` directories a non-root user's `$PATH` often lacks (through the
/// `which` crate, which also checks that the file is executable).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from));
    let search = std::env::join_paths(dirs).ok()?;
    which::which_in(name, Some(search), "/").ok()
}

/// The board-file spelling of a partition kind.
pub fn kind_name(kind: PartitionKind) -> &'static str {
    match kind {
        PartitionKind::Boot => "boot",
        PartitionKind::Root => "root",
        PartitionKind::BootState => "bootstate",
        PartitionKind::Data => "data",
    }
}

/// Parse the board-file spelling of a partition kind.
pub fn parse_kind(s: &str) -> Option<PartitionKind> {
    Some(match s {
        "boot" => PartitionKind::Boot,
        "root" => PartitionKind::Root,
        "bootstate" => PartitionKind::BootState,
        "data" => PartitionKind::Data,
        _ => return None,
    })
}

/// Everything that can go wrong building or reading a disk image. Each
/// variant names the partition, file or offset concerned.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("invalid disk layout: {0}")]
    Layout(#[from] LayoutProblem),
    #[error("{0} partition tables are not supported yet (only \"gpt\")")]
    Unsupported(&'static str),
    #[error("disk layout does not fit: {0}")]
    Overflow(&'static str),
    #[error("partition {partition:?} at offset {offset} ({size} bytes) is not sector-aligned or lies outside the disk's usable area")]
    Outside {
        partition: String,
        offset: u64,
        size: u64,
    },
    #[error("partition {partition:?}: content is {len} bytes but the partition holds {size}")]
    ContentTooLarge {
        partition: String,
        len: u64,
        size: u64,
    },
    #[error("content given for partition {0:?}, which is not in the partition table")]
    UnknownPartition(String),
    #[error("content given twice for partition {0:?}")]
    DuplicateContent(String),
    #[error("writing disk image {path}: {what}: {source}")]
    Write {
        path: PathBuf,
        what: String,
        source: std::io::Error,
    },
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {problem}")]
    Gpt { path: PathBuf, problem: GptProblem },
    #[error("{path}: is a {kind}, not a regular file (disk images are read as files)")]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("FAT image {label:?}: {problem}")]
    Fat {
        label: String,
        problem: fat::FatProblem,
    },
    #[error("ext4 image {label:?}: {problem}")]
    Ext4 {
        label: String,
        problem: ext4::Ext4Problem,
    },
}

#[cfg(test)]
mod guid_tests {
    use super::*;

    #[test]
    fn disk_guid_is_deterministic_v4_mixed_endian() {
        let a = guid(b"seed", "gpt-disk");
        assert_eq!(a, guid(b"seed", "gpt-disk"));
        assert_ne!(a, guid(b"seed2", "gpt-disk"));
        assert_ne!(a, guid(b"seed", "gpt-partition:boot"));
        let s = guid_string(&a);
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "4", "{s}");
        assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"), "{s}");
    }

    #[test]
    fn disk_guid_text_and_order() {
        let esp = gpt_guid(
            0xC12A7328,
            0xF81F,
            0x11D2,
            [0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B],
        );
        assert_eq!(
            esp,
            [
                0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e,
                0xc9, 0x3b
            ]
        );
        assert_eq!(guid_string(&esp), "c12a7328-f81f-11d2-ba4b-00a0c93ec93b");
        assert_eq!(swap_guid_order(swap_guid_order(esp)), esp);
        assert_eq!(
            uuid_string(&swap_guid_order(esp)),
            "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
        );
    }
}
