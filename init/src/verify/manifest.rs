//! Reading and verifying the signed manifest of the root slot: the region
//! at the end of the root partition, the Ed25519 signature against the
//! public key baked into the initramfs, and the board it was built for.
use crate::verify::disk::{self, DiskError};
use crate::verify::partition::Partition;
use azl_formats::envelope::Enveloped;
use azl_formats::manifest::{region_body, Manifest, RegionError, SignedManifest, MANIFEST_REGION};
use azl_formats::signature::{self, Accepted, VerifyError};
use std::fmt;

/// Where the build's public key lives in the initramfs (32 raw bytes).
pub const PUBLIC_KEY: &str = azl_formats::paths::MANIFEST_PUBLIC_KEY;

#[derive(Debug)]
pub enum ManifestError {
    Disk(DiskError),
    TooSmall {
        dev: String,
        size: u64,
    },
    Region {
        dev: String,
        err: RegionError,
    },
    /// The image requires a signature, the manifest has none.
    Unsigned {
        dev: String,
    },
    /// No key in the initramfs, but the image is not marked insecure.
    NoKey {
        path: String,
        err: std::io::Error,
    },
    KeyMismatch {
        expected: [u8; 8],
        found: [u8; 8],
    },
    BadSignature {
        dev: String,
        why: VerifyError,
    },
    Decode {
        dev: String,
        err: azl_formats::FormatError,
    },
    WrongBoard {
        manifest: String,
        device: String,
    },
    WrongPartition {
        manifest: String,
        booted: String,
    },
    /// The GPT entry read from is not where the signed partition table puts
    /// the slot (a copied or moved slot: a rollback attempt).
    SlotMoved {
        partname: String,
        dev: String,
        /// (offset, size) in the manifest's partition table, if listed.
        manifest: Option<(u64, u64)>,
        gpt: (u64, u64),
    },
}

fn hex(b: &[u8]) -> String {
    azl_formats::manifest::Hex(b).to_string()
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Disk(e) => write!(f, "manifest: {e}"),
            Self::TooSmall { dev, size } => write!(
                f,
                "manifest: {dev} is too small ({size} bytes) to hold a manifest"
            ),
            Self::Region { dev, err } => write!(f, "manifest on {dev}: {err}"),
            Self::Unsigned { dev } => write!(
                f,
                "manifest on {dev} is unsigned, but this image requires a signed manifest"
            ),
            Self::NoKey { path, err } => write!(f, "manifest: no public key at {path}: {err}"),
            Self::KeyMismatch { expected, found } => write!(
                f,
                "manifest signed by key {} but this device trusts key {}",
                hex(found),
                hex(expected)
            ),
            Self::BadSignature { dev, why } => match why {
                VerifyError::BadSignature => write!(
                    f,
                    "manifest on {dev}: signature does not verify (manifest altered or forged)"
                ),
                other => write!(f, "manifest on {dev}: {other}"),
            },
            Self::Decode { dev, err } => write!(f, "manifest on {dev}: {err}"),
            Self::WrongBoard { manifest, device } => {
                write!(
                    f,
                    "manifest is for board {manifest:?}, this device is {device:?}"
                )
            }
            Self::SlotMoved {
                partname,
                dev,
                manifest,
                gpt,
            } => match manifest {
                Some(m) => write!(
                    f,
                    "manifest on {dev}: the signed partition table puts {partname:?} at byte {} size {}, but the GPT entry read is at byte {} size {} (a moved or copied slot)",
                    m.0, m.1, gpt.0, gpt.1
                ),
                None => write!(
                    f,
                    "manifest on {dev}: the signed partition table has no partition {partname:?}"
                ),
            },
            Self::WrongPartition { manifest, booted } => {
                write!(
                    f,
                    "manifest describes root partition {manifest:?} but was read from {booted:?}"
                )
            }
        }
    }
}

/// A manifest that passed verification, and whether it was signed.
pub struct Verified {
    pub manifest: Manifest,
    pub signed: bool,
    /// The SignedManifest envelope exactly as stored in the region (kept
    /// for attestation reports; its sha256 is the manifest digest).
    pub envelope: Vec<u8>,
}

impl Verified {
    /// The manifest digest the boot state records: sha256 of the envelope.
    pub fn digest(&self) -> azl_formats::manifest::Digest {
        azl_formats::sha256(&self.envelope)
    }
}

/// What the manifest must match besides its signature.
pub struct Expect<'a> {
    /// The device's board.
    pub board: &'a str,
    /// The GPT name of the slot it is (to be) read from.
    pub partname: &'a str,
    /// That slot's (offset, size) in the GPT.
    pub gpt: (u64, u64),
    /// Device node, for messages.
    pub dev: &'a str,
    pub allow_unsigned: bool,
}

/// Read the manifest from the end of `part` and verify it.
pub fn load(
    part: &Partition,
    partname: &str,
    board: &str,
    allow_unsigned: bool,
) -> Result<Verified, ManifestError> {
    if part.size_bytes < MANIFEST_REGION {
        return Err(ManifestError::TooSmall {
            dev: part.dev.clone(),
            size: part.size_bytes,
        });
    }
    let raw = disk::read_at(
        &part.dev,
        part.size_bytes - MANIFEST_REGION,
        MANIFEST_REGION as usize,
    )
    .map_err(ManifestError::Disk)?;
    let body = region_body(&raw).map_err(|err| ManifestError::Region {
        dev: part.dev.clone(),
        err,
    })?;
    let expect = Expect {
        board,
        partname,
        gpt: (part.offset, part.size_bytes),
        dev: &part.dev,
        allow_unsigned,
    };
    check(body, &|| read_key(PUBLIC_KEY), &expect)
}

/// Read a raw public key file.
pub fn read_key(path: &str) -> Result<Vec<u8>, ManifestError> {
    std::fs::read(path).map_err(|err| ManifestError::NoKey {
        path: path.to_string(),
        err,
    })
}

/// Verify a SignedManifest envelope: signature by the key `key` returns
/// (asked only for a signed manifest), board, slot name and slot position.
pub fn check(
    envelope: &[u8],
    key: &dyn Fn() -> Result<Vec<u8>, ManifestError>,
    expect: &Expect,
) -> Result<Verified, ManifestError> {
    let dev = expect.dev.to_string();
    let sm = SignedManifest::from_bytes(envelope).map_err(|err| ManifestError::Region {
        dev: dev.clone(),
        err: RegionError::Format(err),
    })?;
    // The key is asked for only for a signed manifest (an unsigned image
    // may have none); the check itself is the one both sides run.
    let key = match &sm.signature {
        Some(_) => Some(key()?),
        None => None,
    };
    let Accepted { manifest, signed } =
        signature::accept(&sm, key.as_deref(), expect.allow_unsigned).map_err(|e| match e {
            VerifyError::Unsigned => ManifestError::Unsigned { dev: dev.clone() },
            VerifyError::KeyMismatch { expected, found } => {
                ManifestError::KeyMismatch { expected, found }
            }
            VerifyError::Decode(err) => ManifestError::Decode {
                dev: dev.clone(),
                err,
            },
            VerifyError::BadSignature | VerifyError::NoKey | VerifyError::BadPublicKey { .. } => {
                ManifestError::BadSignature {
                    dev: dev.clone(),
                    why: e,
                }
            }
        })?;
    if manifest.board != expect.board {
        return Err(ManifestError::WrongBoard {
            manifest: manifest.board,
            device: expect.board.to_string(),
        });
    }
    let partname = expect.partname;
    if manifest.rootfs.partition.as_str() != partname {
        return Err(ManifestError::WrongPartition {
            manifest: manifest.rootfs.partition.to_string(),
            booted: partname.to_string(),
        });
    }
    let listed = manifest
        .partitions
        .iter()
        .find(|p| p.name.as_str() == partname)
        .map(|p| (p.offset, p.size));
    if listed != Some(expect.gpt) {
        return Err(ManifestError::SlotMoved {
            partname: partname.to_string(),
            dev,
            manifest: listed,
            gpt: expect.gpt,
        });
    }
    Ok(Verified {
        manifest,
        signed,
        envelope: envelope.to_vec(),
    })
}
