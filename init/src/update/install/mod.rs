//! Installing a bundle into the slot that is not running. Everything that
//! can be checked before writing is checked first (preamble, manifest
//! signature, board, floor, header signature, layout against the slot,
//! the hash tree against the signed root hash); then the boot state marks
//! the target `Writing` before its first byte changes, every data block
//! is checked against the verified tree before it is written, the slot is
//! read back from the device and verified again, and only then its
//! manifest region is written and the slot gets its trial. A refusal at
//! any point leaves the running slot untouched and the target unbootable.
//!
//! The core takes any `Read` for the bundle and a [`Target`] path, so the
//! tests run with regular files standing in for partitions.
pub mod error;
#[cfg(test)]
mod tests;

use super::bootctl::{self, BootControl};
use crate::verify::manifest::{self as vmanifest, Expect, ManifestError};
use azl_formats::bootstate::Slot;
use azl_formats::bundle::{
    check_layout, BundleError, Header, PayloadKind, Preamble, SignedHeader, SlotGeometry,
    PREAMBLE_LEN,
};
use azl_formats::envelope::Enveloped;
use azl_formats::manifest::{region_of, Digest, Hex, MANIFEST_REGION};
use azl_formats::signature::{self, VerifyError};
use azl_formats::verity::VerifiedTree;
use error::InstallError;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;

/// Largest hash area held in memory (the bundle format's bound).
pub const TREE_LIMIT: u64 = azl_formats::bundle::MAX_TREE_LEN;
/// Data blocks written per write.
const BATCH_BLOCKS: usize = 64;

/// The slot to write: its device (or file) and its GPT position.
#[derive(Debug, Clone)]
pub struct Target {
    pub slot: Slot,
    pub dev: String,
    /// Byte offset of the partition on its disk and its size (GPT entry).
    pub offset: u64,
    pub size: u64,
}

/// What may follow the last payload, by the kind of input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// Stdin or a regular file: the input ends exactly after the last payload.
    Exact,
    /// A block device (a bundle written raw to a USB stick or a second
    /// disk): the device ends at a sector multiple or later, so zero bytes
    /// may follow. They are read and checked up to the device end or `limit`
    /// bytes, whichever comes first; a non-zero byte is refused.
    ZeroPadded { limit: u64 },
}

/// How far past the last payload a block device's padding is checked.
pub const PADDING_LIMIT: u64 = 1 << 20;

/// What a bundle is held to.
pub struct Trust<'a> {
    /// The raw Ed25519 key the manifest and header must be signed with.
    pub key: &'a [u8],
    pub board: &'a str,
}

/// A finished install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub slot: Slot,
    pub image: String,
    pub security_version: u32,
    pub manifest_sha256: Digest,
    pub data_bytes: u64,
    pub tree_bytes: u64,
}

/// Read exactly `buf.len()` bytes; a short read is a truncation of `section`.
fn fill(
    input: &mut dyn Read,
    buf: &mut [u8],
    section: &'static str,
    before: u64,
    total: u64,
) -> Result<(), InstallError> {
    let mut got = 0;
    while got < buf.len() {
        let rest = buf.get_mut(got..).unwrap_or_default();
        match input.read(rest) {
            Ok(0) => {
                return Err(InstallError::Bundle(BundleError::Truncated {
                    section,
                    got: before + got as u64,
                    expected: total,
                }))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(InstallError::Input { section, err }),
        }
    }
    Ok(())
}

fn read_section(
    input: &mut dyn Read,
    len: usize,
    section: &'static str,
) -> Result<Vec<u8>, InstallError> {
    let mut buf = vec![0u8; len];
    fill(input, &mut buf, section, 0, len as u64)?;
    Ok(buf)
}

struct Dev<'a> {
    file: File,
    dev: &'a str,
}

impl Dev<'_> {
    fn io(&self, offset: u64) -> impl Fn(std::io::Error) -> InstallError + '_ {
        move |err| InstallError::Device {
            dev: self.dev.to_string(),
            offset,
            err,
        }
    }
    fn write(&self, offset: u64, bytes: &[u8]) -> Result<(), InstallError> {
        self.file
            .write_all_at(bytes, offset)
            .map_err(self.io(offset))
    }
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), InstallError> {
        self.file
            .read_exact_at(buf, offset)
            .map_err(self.io(offset))
    }
    fn sync(&self) -> Result<(), InstallError> {
        self.file.sync_data().map_err(self.io(0))
    }
    /// Drop the page cache so read-back comes from the device.
    fn drop_cache(&self) -> Result<(), InstallError> {
        nix::fcntl::posix_fadvise(
            &self.file,
            0,
            0,
            nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
        )
        .map_err(|e| self.io(0)(std::io::Error::from(e)))
    }
}

/// Check the header envelope's signature and decode it.
fn verify_header(bytes: &[u8], key: &[u8]) -> Result<Header, InstallError> {
    let sh = SignedHeader::from_bytes(bytes).map_err(InstallError::Header)?;
    signature::check(&sh.header, &sh.signature, key).map_err(|e| match e {
        VerifyError::KeyMismatch { expected, found } => InstallError::HeaderKey { expected, found },
        _ => InstallError::HeaderSignature,
    })?;
    Header::from_bytes(&sh.header).map_err(InstallError::Header)
}

/// Read what follows the last payload: nothing (`Exact`), or only zero
/// bytes up to the end or the limit (`ZeroPadded`).
fn check_tail(input: &mut dyn Read, tail: Tail) -> Result<(), InstallError> {
    let limit = match tail {
        Tail::Exact => 1,
        Tail::ZeroPadded { limit } => limit,
    };
    let mut buf = vec![0u8; limit.min(64 << 10) as usize];
    let mut seen = 0u64;
    while seen < limit {
        let want = (limit - seen).min(buf.len() as u64) as usize;
        let chunk = buf.get_mut(..want).unwrap_or_default();
        match input.read(chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                let got = chunk.get(..n).unwrap_or_default();
                if tail == Tail::Exact || got.iter().any(|&b| b != 0) {
                    return Err(InstallError::Trailing {
                        block_device: tail != Tail::Exact,
                    });
                }
                seen += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => {
                return Err(InstallError::Input {
                    section: "end",
                    err,
                })
            }
        }
    }
    Ok(())
}

/// Install the bundle read from `input` into `target` (the slot not
/// running: `running.other()`), recording each step in the boot state.
/// `tail` says what may follow the last payload (by the kind of input).
pub fn install(
    input: &mut dyn Read,
    tail: Tail,
    target: &Target,
    running: Slot,
    ctl: &mut dyn BootControl,
    trust: &Trust,
    progress: &mut dyn FnMut(&str),
) -> Result<Summary, InstallError> {
    let state = bootctl::state(ctl).map_err(InstallError::State)?;
    // 1. Preamble and manifest: signature, board, slot, floor.
    let mut pre = [0u8; PREAMBLE_LEN];
    fill(input, &mut pre, "preamble", 0, PREAMBLE_LEN as u64)?;
    let preamble = Preamble::decode(&pre).map_err(InstallError::Bundle)?;
    let section = read_section(input, preamble.manifest_len as usize, "manifest")?;
    let key = trust.key.to_vec();
    let expect = Expect {
        board: trust.board,
        partname: target.slot.partition(),
        gpt: (target.offset, target.size),
        dev: "the bundle",
        allow_unsigned: false,
    };
    let verified = match vmanifest::check(&section, &|| Ok(key.clone()), &expect) {
        Err(ManifestError::WrongPartition { manifest, .. }) if manifest == running.partition() => {
            return Err(InstallError::ForRunningSlot { slot: running })
        }
        r => r.map_err(InstallError::Manifest)?,
    };
    let m = &verified.manifest;
    if m.security_version < state.floor {
        return Err(InstallError::BelowFloor {
            security_version: m.security_version,
            floor: state.floor,
        });
    }
    progress(&format!(
        "bundle: {} {} (security version {}) for {}, manifest signature OK",
        m.image_name, m.image_version, m.security_version, target.slot
    ));
    // 2. Header: signature, what it may update from, layout vs the slot.
    let hbytes = read_section(input, preamble.header_len as usize, "header")?;
    let header = verify_header(&hbytes, trust.key)?;
    let running_sv = state.slot(running).security_version;
    if let Some(min) = header.min_from_security_version {
        if running_sv < min {
            return Err(InstallError::TooOldToUpdateFrom {
                running: running_sv,
                min,
            });
        }
    }
    check_layout(&header, &section, m, SlotGeometry { size: target.size })
        .map_err(InstallError::Bundle)?;
    let boot_kinds = [
        PayloadKind::Kernel,
        PayloadKind::Initramfs,
        PayloadKind::Cmdline,
    ];
    if ctl.takes_boot_files() {
        // A kernel per slot: the trial must boot the bundle's own kernel
        // files, never whatever the slot's ESP directory held before.
        if let Some(k) = boot_kinds
            .iter()
            .find(|k| !header.payloads.iter().any(|p| p.kind == **k))
        {
            return Err(InstallError::MissingBootPayload {
                kind: *k,
                backend: ctl.name(),
            });
        }
    } else if let Some(p) = header
        .payloads
        .iter()
        .find(|p| !matches!(p.kind, PayloadKind::HashTree | PayloadKind::RootData))
    {
        return Err(InstallError::BootPayload(p.kind));
    }
    let digest_of = |kind| {
        header
            .payloads
            .iter()
            .find(|p| p.kind == kind)
            .map_or([0; 32], |p| p.sha256)
    };
    // 3. The hash tree, against the signed root hash (nothing written yet).
    let v = &m.rootfs.verity;
    let tree_len = VerifiedTree::expected_size(v, TREE_LIMIT).map_err(InstallError::Tree)?;
    let area = read_section(input, tree_len as usize, "hash-tree")?;
    if azl_formats::sha256(&area) != digest_of(PayloadKind::HashTree) {
        return Err(InstallError::PayloadDigest(PayloadKind::HashTree));
    }
    let tree = VerifiedTree::new(v, area, TREE_LIMIT).map_err(InstallError::Tree)?;
    progress("bundle: header signature, layout and hash tree OK");

    // 4. From here the target changes: mark it Writing first.
    bootctl::begin_install(ctl, target.slot).map_err(InstallError::State)?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&target.dev)
        .map_err(|err| InstallError::Device {
            dev: target.dev.clone(),
            offset: 0,
            err,
        })?;
    let dev = Dev {
        file,
        dev: &target.dev,
    };
    let region_at = target.size - MANIFEST_REGION;
    dev.write(region_at, &vec![0u8; MANIFEST_REGION as usize])?;
    dev.sync()?;
    dev.write(v.hash_offset, tree.area())?;

    // 5. Data blocks, each checked before it is written.
    let bs = v.data_block_size as usize;
    let total = m.rootfs.data_size;
    let mut sha = ring::digest::Context::new(&ring::digest::SHA256);
    let mut batch = vec![0u8; bs * BATCH_BLOCKS];
    let mut block = 0u64;
    let mut next_report = 0u64;
    while block < v.data_blocks {
        let n = (v.data_blocks - block).min(BATCH_BLOCKS as u64) as usize;
        let buf = batch.get_mut(..n * bs).unwrap_or_default();
        for (k, chunk) in buf.chunks_mut(bs).enumerate() {
            let index = block + k as u64;
            fill(input, chunk, "root-data", index * bs as u64, total)?;
            if !tree.check_block(index, chunk) {
                return Err(InstallError::DataBlock {
                    block: index,
                    offset: index * bs as u64,
                });
            }
            sha.update(chunk);
        }
        dev.write(block * bs as u64, buf)?;
        block += n as u64;
        let pct = block * 100 / v.data_blocks;
        if pct >= next_report {
            progress(&format!("writing {}: {pct}%", target.slot));
            next_report = pct - pct % 10 + 10;
        }
    }
    if sha.finish().as_ref() != digest_of(PayloadKind::RootData).as_slice() {
        return Err(InstallError::PayloadDigest(PayloadKind::RootData));
    }
    // The kernel files (UEFI), each held to its signed digest before any
    // of them is written; check_layout bounded their sizes by the manifest.
    let mut boot = Vec::new();
    for p in header
        .payloads
        .iter()
        .filter(|p| boot_kinds.contains(&p.kind))
    {
        let bytes = read_section(input, p.size as usize, p.kind.name())?;
        if azl_formats::sha256(&bytes) != p.sha256 {
            return Err(InstallError::PayloadDigest(p.kind));
        }
        boot.push((p.kind, bytes));
    }
    check_tail(input, tail)?;
    dev.sync()?;

    // 6. Read everything back from the device and verify it again.
    dev.drop_cache()?;
    progress(&format!("verifying {} as written", target.slot));
    let mut back = vec![0u8; tree.area().len()];
    dev.read(v.hash_offset, &mut back)?;
    if back != tree.area() {
        return Err(InstallError::ReadBack {
            dev: target.dev.clone(),
            what: format!("hash tree at offset {}", v.hash_offset),
        });
    }
    let mut one = vec![0u8; bs];
    for index in 0..v.data_blocks {
        dev.read(index * bs as u64, &mut one)?;
        if !tree.check_block(index, &one) {
            return Err(InstallError::ReadBack {
                dev: target.dev.clone(),
                what: format!("data block {index} (offset {})", index * bs as u64),
            });
        }
    }

    // 7. The manifest region makes the slot a slot; then its trial.
    let region = region_of(&section).ok_or(InstallError::Bundle(BundleError::SectionLength {
        section: "manifest",
        len: preamble.manifest_len,
        max: azl_formats::bundle::MAX_MANIFEST_LEN,
    }))?;
    dev.write(region_at, &region)?;
    dev.sync()?;
    dev.drop_cache()?;
    let mut rb = vec![0u8; region.len()];
    dev.read(region_at, &mut rb)?;
    if rb != region {
        return Err(InstallError::ReadBack {
            dev: target.dev.clone(),
            what: format!("manifest region at offset {region_at}"),
        });
    }
    if ctl.takes_boot_files() {
        let take = |k| {
            boot.iter()
                .find(|(kind, _)| *kind == k)
                .map(|(_, b)| b.clone())
                .unwrap_or_default()
        };
        let files = bootctl::BootFiles {
            kernel: take(PayloadKind::Kernel),
            initramfs: take(PayloadKind::Initramfs),
            cmdline: String::from_utf8(take(PayloadKind::Cmdline))
                .map_err(|_| InstallError::BootPayloadText)?,
        };
        ctl.install_boot_files(target.slot, &files)
            .map_err(InstallError::State)?;
        progress(&format!(
            "{}'s kernel, initramfs and command line written ({} backend)",
            target.slot,
            ctl.name()
        ));
    }
    let digest = verified.digest();
    bootctl::mark_trial(
        ctl,
        target.slot,
        m.security_version,
        &m.image_version,
        digest,
    )
    .map_err(InstallError::State)?;
    progress(&format!(
        "installed {} into {}; manifest sha256 {}; it boots once on the next reboot (commit it with `update commit`)",
        m.image_version,
        target.slot,
        Hex(&digest)
    ));
    Ok(Summary {
        slot: target.slot,
        image: format!("{} {}", m.image_name, m.image_version),
        security_version: m.security_version,
        manifest_sha256: digest,
        data_bytes: total,
        tree_bytes: tree.area().len() as u64,
    })
}
