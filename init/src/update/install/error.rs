//! Why an install was refused or failed. Every message names the problem
//! and, where it applies, the slot, the offset or the block.
use crate::update::bootctl::BootCtlError;
use crate::verify::manifest::ManifestError;
use azl_formats::bootstate::Slot;
use azl_formats::bundle::{BundleError, PayloadKind};
use azl_formats::verity::VerityError;
use std::fmt;

#[derive(Debug)]
pub enum InstallError {
    /// Reading the bundle failed (not a short read).
    Input {
        section: &'static str,
        err: std::io::Error,
    },
    Bundle(BundleError),
    Manifest(ManifestError),
    /// The bundle carries the running slot's image.
    ForRunningSlot {
        slot: Slot,
    },
    BelowFloor {
        security_version: u32,
        floor: u32,
    },
    /// The header demands a newer installed system.
    TooOldToUpdateFrom {
        running: u32,
        min: u32,
    },
    Header(azl_formats::FormatError),
    HeaderKey {
        expected: [u8; 8],
        found: [u8; 8],
    },
    HeaderSignature,
    /// Kernel, initramfs or cmdline payloads on a board that cannot take them.
    BootPayload(PayloadKind),
    /// A boot method with a kernel per slot needs every kernel file.
    MissingBootPayload {
        kind: PayloadKind,
        backend: &'static str,
    },
    /// The cmdline payload is not UTF-8.
    BootPayloadText,
    PayloadDigest(PayloadKind),
    Tree(VerityError),
    /// A data block does not match the verified tree (never written).
    DataBlock {
        block: u64,
        offset: u64,
    },
    /// Bytes after the last payload (on a block device: non-zero ones).
    Trailing {
        block_device: bool,
    },
    /// Device I/O on the target slot.
    Device {
        dev: String,
        offset: u64,
        err: std::io::Error,
    },
    /// The slot read back differs from what was written and verified.
    ReadBack {
        dev: String,
        what: String,
    },
    State(BootCtlError),
}

impl fmt::Display for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Input { section, err } => write!(f, "cannot read the bundle's {section}: {err}"),
            Self::Bundle(e) => write!(f, "{e}"),
            Self::Manifest(e) => write!(f, "bundle {e}"),
            Self::ForRunningSlot { slot } => write!(
                f,
                "bundle is built for {slot}, the running slot; an update must target {}",
                slot.other()
            ),
            Self::BelowFloor {
                security_version,
                floor,
            } => write!(
                f,
                "bundle has security version {security_version}, below this device's floor {floor} (a rollback)"
            ),
            Self::TooOldToUpdateFrom { running, min } => write!(
                f,
                "bundle applies only to systems at security version {min} or later; this one runs {running}"
            ),
            Self::Header(e) => write!(f, "bundle header: {e}"),
            Self::HeaderKey { expected, found } => write!(
                f,
                "bundle header signed by key {} but this device trusts key {}",
                azl_formats::manifest::Hex(found),
                azl_formats::manifest::Hex(expected)
            ),
            Self::HeaderSignature => {
                f.write_str("bundle header signature does not verify (header altered or forged)")
            }
            Self::BootPayload(k) => write!(
                f,
                "bundle carries a {} payload, but this board's boot method (initramfs-select) does not update the kernel",
                k.name()
            ),
            Self::MissingBootPayload { kind, backend } => write!(
                f,
                "bundle has no {} payload, but this board's boot method ({backend}) boots each slot's own kernel files: kernel, initramfs and cmdline are required",
                kind.name()
            ),
            Self::BootPayloadText => f.write_str("bundle cmdline payload is not UTF-8"),
            Self::PayloadDigest(k) => write!(
                f,
                "bundle {} payload does not match its sha256 in the signed header",
                k.name()
            ),
            Self::Tree(e) => write!(f, "bundle hash tree: {e}"),
            Self::DataBlock { block, offset } => write!(
                f,
                "bundle data block {block} (slot offset {offset}) does not match the signed verity tree; nothing unverified was written"
            ),
            Self::Trailing { block_device: false } => {
                f.write_str("bundle has bytes after its last payload")
            }
            Self::Trailing { block_device: true } => f.write_str(
                "bundle has bytes after its last payload (a block device may only be zero-padded)",
            ),
            Self::Device { dev, offset, err } => write!(f, "{dev} at offset {offset}: {err}"),
            Self::ReadBack { dev, what } => {
                write!(f, "{dev} read back wrong after writing: {what}")
            }
            Self::State(e) => write!(f, "{e}"),
        }
    }
}
