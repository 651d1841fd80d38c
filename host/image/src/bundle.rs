//! Laying out an update bundle (`docs/update.md`, `formats::bundle`) from a
//! built root slot: the slot's own bytes, nothing rebuilt.
//!
//! ```text
//! root slot: squashfs [0, data_size) ‖ verity area [hash_offset, +hash_size) ‖ … ‖ manifest region
//!                 │                          │                                       │
//! bundle:  preamble ‖ SignedManifest (as in the region) ‖ SignedHeader ‖ hash-tree ‖ root-data
//! ```
//!
//! The header ([`Header::for_root`]) names the manifest section's sha256 and
//! the two payloads' sizes and digests; it is signed with the key that
//! signed the manifest ([`azl_sign::sign_header`]). Before anything is
//! returned the bundle is held to the device's own layout rule
//! ([`check_layout`]) against the slot it was built for. Ed25519 is
//! deterministic and the slot is reproducible, so the same inputs give the
//! same bundle bytes.
use crate::output::{self, OutputError};
use azl_formats::bundle::{
    check_layout, encode_head, BundleError, Header, Payload, PayloadKind, SlotGeometry,
    MAX_TREE_LEN,
};
use azl_formats::envelope::Enveloped;
use azl_formats::manifest::{
    region_body, Digest, Hex, Manifest, RegionError, SignedManifest, KEY_ID_LEN, MANIFEST_REGION,
};
use azl_formats::{sha256, FormatError};
use azl_sign::{SignError, SigningKey};
use serde::Serialize;
use std::fmt;
use std::path::Path;

/// The slot a bundle fills when none is named: a factory image runs
/// `root-a`, so its first update goes to `root-b`.
pub const DEFAULT_SLOT: &str = "root-b";

/// Why a bundle could not be laid out or written. Each names the slot.
#[derive(Debug, thiserror::Error)]
pub enum BundleBuildError {
    #[error("slot {slot}: manifest region: {reason}")]
    Region { slot: String, reason: RegionError },
    #[error("slot {slot}: the manifest does not decode: {source}")]
    Decode { slot: String, source: FormatError },
    #[error("slot {slot}: the manifest is unsigned; bundles are always signed")]
    Unsigned { slot: String },
    #[error(
        "slot {slot}: the manifest is signed by key {manifest_key} but the bundle key is {key}"
    )]
    KeyMismatch {
        slot: String,
        manifest_key: String,
        key: String,
    },
    #[error("slot {slot}: the {what} (bytes {start}..{end}) lies outside the {len}-byte slot")]
    Range {
        slot: String,
        what: &'static str,
        start: u64,
        end: u64,
        len: u64,
    },
    #[error(
        "slot {slot}: the hash tree is {size} bytes, more than the {MAX_TREE_LEN} a device accepts"
    )]
    TreeTooLarge { slot: String, size: u64 },
    #[error("slot {slot}: signing the bundle header: {source}")]
    Sign { slot: String, source: SignError },
    #[error("slot {slot}: {reason}")]
    Layout { slot: String, reason: BundleError },
    #[error("writing the bundle: {0}")]
    Write(#[from] OutputError),
}

/// A laid-out bundle, in memory: head (preamble ‖ manifest ‖ signed
/// header), then the payloads in header order.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub manifest: Manifest,
    pub header: Header,
    /// Preamble ‖ manifest section ‖ signed header envelope.
    pub head: Vec<u8>,
    /// The verity area (superblock + tree): the `hash-tree` payload.
    pub tree: Vec<u8>,
    /// The squashfs data blocks: the `root-data` payload.
    pub data: Vec<u8>,
    /// UEFI boards: the `kernel`, `initramfs` and `cmdline` payloads back
    /// to back (empty otherwise).
    pub boot: Vec<u8>,
    /// Bytes of the slot partition it was laid out from.
    pub slot_size: u64,
    /// sha256 of the whole bundle.
    pub sha256: Digest,
    /// Id of the key that signed manifest and header.
    pub key_id: [u8; KEY_ID_LEN],
}

/// `&slot[start..start + len]`, or the error naming `what`.
fn part<'a>(
    slot_name: &str,
    slot: &'a [u8],
    what: &'static str,
    start: u64,
    len: u64,
) -> Result<&'a [u8], BundleBuildError> {
    let end = start.saturating_add(len);
    usize::try_from(start)
        .ok()
        .zip(usize::try_from(end).ok())
        .and_then(|(s, e)| slot.get(s..e))
        .ok_or(BundleBuildError::Range {
            slot: slot_name.to_string(),
            what,
            start,
            end,
            len: slot.len() as u64,
        })
}

/// Lay out the bundle of the root slot `slot` (its whole partition content
/// from offset 0, manifest region at the end, as [`crate::diskimage`]
/// builds it; `name` is the partition, for messages), signing the header
/// with `key` — which must be the key that signed the slot's manifest.
pub fn lay_out(
    name: &str,
    slot: &[u8],
    key: &SigningKey,
    min_from_security_version: Option<u32>,
) -> Result<Bundle, BundleBuildError> {
    lay_out_with(name, slot, key, min_from_security_version, None)
}

/// A slot's kernel files, for boards that boot each slot's own (UEFI).
#[derive(Debug, Clone, Copy)]
pub struct BootPayloads<'a> {
    pub kernel: &'a [u8],
    pub initramfs: &'a [u8],
    /// The slot's command line, as its manifest records it.
    pub cmdline: &'a str,
}

/// [`lay_out`], with the `kernel`, `initramfs` and `cmdline` payloads
/// after the data when `boot` is given (their sizes and digests are the
/// manifest's, held to [`check_layout`] like the rest).
pub fn lay_out_with(
    name: &str,
    slot: &[u8],
    key: &SigningKey,
    min_from_security_version: Option<u32>,
    boot: Option<&BootPayloads>,
) -> Result<Bundle, BundleBuildError> {
    let slot_name = || name.to_string();
    let len = slot.len() as u64;
    let region = part(
        name,
        slot,
        "manifest region",
        len.saturating_sub(MANIFEST_REGION),
        MANIFEST_REGION,
    )?;
    // The manifest section is exactly the region's bytes after the length
    // prefix: what the device will write back into the target's region.
    let section = region_body(region).map_err(|reason| BundleBuildError::Region {
        slot: slot_name(),
        reason,
    })?;
    let sm = SignedManifest::from_bytes(section).map_err(|source| BundleBuildError::Decode {
        slot: slot_name(),
        source,
    })?;
    let sig = sm
        .signature
        .as_ref()
        .ok_or_else(|| BundleBuildError::Unsigned { slot: slot_name() })?;
    if sig.key_id != key.key_id() {
        return Err(BundleBuildError::KeyMismatch {
            slot: slot_name(),
            manifest_key: Hex(&sig.key_id).to_string(),
            key: Hex(&key.key_id()).to_string(),
        });
    }
    let manifest = sm.manifest().map_err(|source| BundleBuildError::Decode {
        slot: slot_name(),
        source,
    })?;
    let v = &manifest.rootfs.verity;
    if v.hash_size > MAX_TREE_LEN {
        return Err(BundleBuildError::TreeTooLarge {
            slot: slot_name(),
            size: v.hash_size,
        });
    }
    let data = part(name, slot, "squashfs data", 0, manifest.rootfs.data_size)?;
    let tree = part(name, slot, "verity area", v.hash_offset, v.hash_size)?;

    let mut header = Header::for_root(
        section,
        min_from_security_version,
        (tree.len() as u64, sha256(tree)),
        (data.len() as u64, sha256(data)),
    );
    let mut boot_bytes = Vec::new();
    if let Some(b) = boot {
        for (kind, bytes) in [
            (PayloadKind::Kernel, b.kernel),
            (PayloadKind::Initramfs, b.initramfs),
            (PayloadKind::Cmdline, b.cmdline.as_bytes()),
        ] {
            header.payloads.push(Payload {
                kind,
                size: bytes.len() as u64,
                sha256: sha256(bytes),
            });
            boot_bytes.extend_from_slice(bytes);
        }
    }
    // The device's rule, before anything leaves this function.
    check_layout(&header, section, &manifest, SlotGeometry { size: len }).map_err(|reason| {
        BundleBuildError::Layout {
            slot: slot_name(),
            reason,
        }
    })?;
    let signed = azl_sign::sign_header(&header, key).map_err(|source| BundleBuildError::Sign {
        slot: slot_name(),
        source,
    })?;
    let head = encode_head(section, &signed).map_err(|reason| BundleBuildError::Layout {
        slot: slot_name(),
        reason,
    })?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in [head.as_slice(), tree, data, &boot_bytes] {
        ctx.update(p);
    }
    let mut digest = [0u8; 32];
    digest.copy_from_slice(ctx.finish().as_ref());
    Ok(Bundle {
        manifest,
        header,
        head,
        tree: tree.to_vec(),
        data: data.to_vec(),
        boot: boot_bytes,
        slot_size: len,
        sha256: digest,
        key_id: signed.signature.key_id,
    })
}

impl Bundle {
    /// Total bytes of the bundle file.
    pub fn size(&self) -> u64 {
        (self.head.len() + self.tree.len() + self.data.len() + self.boot.len()) as u64
    }

    /// Write the bundle to `path` atomically ([`output::put_file`]).
    pub fn write(&self, path: &Path) -> Result<(), BundleBuildError> {
        output::put_file(path, &[&self.head, &self.tree, &self.data, &self.boot])?;
        Ok(())
    }

    /// What `imagegen bundle` reports about it.
    pub fn summary(&self, path: &Path) -> BundleSummary {
        let m = &self.manifest;
        BundleSummary {
            path: path.display().to_string(),
            slot: m.rootfs.partition.to_string(),
            image: m.image_name.clone(),
            version: m.image_version.clone(),
            security_version: m.security_version,
            min_from_security_version: self.header.min_from_security_version,
            key_id: Hex(&self.key_id).to_string(),
            manifest_sha256: Hex(&self.header.manifest_sha256).to_string(),
            root_hash: Hex(&m.rootfs.verity.root_hash).to_string(),
            head_size: self.head.len() as u64,
            payloads: self
                .header
                .payloads
                .iter()
                .map(|p| PayloadSummary {
                    kind: p.kind.name(),
                    size: p.size,
                    sha256: Hex(&p.sha256).to_string(),
                })
                .collect(),
            size: self.size(),
            slot_size: self.slot_size,
            sha256: Hex(&self.sha256).to_string(),
        }
    }
}

/// The summary `imagegen bundle` prints (`--json`: this object).
#[derive(Debug, Clone, Serialize)]
pub struct BundleSummary {
    pub path: String,
    /// The root slot the bundle installs into.
    pub slot: String,
    pub image: String,
    pub version: String,
    pub security_version: u32,
    pub min_from_security_version: Option<u32>,
    /// The signing key's id (manifest and header).
    pub key_id: String,
    pub manifest_sha256: String,
    pub root_hash: String,
    /// Preamble + manifest + signed header.
    pub head_size: u64,
    pub payloads: Vec<PayloadSummary>,
    /// Bytes of the bundle file.
    pub size: u64,
    /// Bytes of the slot partition it fills.
    pub slot_size: u64,
    /// sha256 of the bundle file.
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PayloadSummary {
    pub kind: &'static str,
    pub size: u64,
    pub sha256: String,
}

impl fmt::Display for BundleSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::size::human;
        writeln!(
            f,
            "bundle {} {} for slot {} in {}",
            self.image, self.version, self.slot, self.path
        )?;
        let min = self
            .min_from_security_version
            .map_or_else(String::new, |m| format!(", installs over {m} or later"));
        writeln!(f, "  security   version {}{min}", self.security_version)?;
        for p in &self.payloads {
            writeln!(
                f,
                "  {:<10} {} ({} bytes), sha256 {}",
                p.kind,
                human(p.size),
                p.size,
                p.sha256
            )?;
        }
        writeln!(
            f,
            "  size       {} ({} bytes; head {} bytes; slot {} is {})",
            human(self.size),
            self.size,
            self.head_size,
            self.slot,
            human(self.slot_size)
        )?;
        writeln!(f, "  signed by  key {}", self.key_id)?;
        writeln!(f, "  root hash  {}", self.root_hash)?;
        write!(f, "  sha256     {}", self.sha256)
    }
}

#[cfg(test)]
mod tests;
