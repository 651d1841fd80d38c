//! The update bundle: one file (or stream) that carries a new root slot,
//! laid out so a device can check everything before it writes anything:
//!
//! ```text
//! preamble  16 bytes   magic "AZBU", format u16 LE, reserved u16 (0),
//!                      manifest_len u32 LE, header_len u32 LE
//! manifest  [manifest_len]  the new slot's SignedManifest envelope ("AZSM"),
//!                           exactly as in the slot's manifest region
//! header    [header_len]    SignedHeader envelope ("AZBH"): the Header
//!                           envelope ("AZBD") + Ed25519 signature, same key
//! payloads  in header order, back to back, no padding:
//!           hash-tree   the slot's verity hash area (superblock + tree)
//!           root-data   the squashfs data blocks
//!           kernel, initramfs, cmdline   (only where the board's boot
//!                                         method updates them)
//! ```
//!
//! The hash tree comes **before** the data: once the manifest signature,
//! the header signature and the tree (against the signed root hash) have
//! been checked, every 4 KiB data block can be checked against the tree as
//! it arrives, so the device never writes an unverified byte
//! ([`crate::verity::VerifiedTree`]). [`check_layout`] holds a header to
//! its manifest and the target slot before any payload byte is read.
use crate::envelope::Enveloped;
use crate::manifest::{Digest, Manifest, Sig, MANIFEST_REGION};
use alloc::vec::Vec;
use core::fmt;
use serde::{Deserialize, Serialize};

/// Magic of the preamble.
pub const MAGIC: [u8; 4] = *b"AZBU";
/// Bundle layout version; readers refuse others.
pub const FORMAT_VERSION: u16 = 1;
/// Bytes of the preamble.
pub const PREAMBLE_LEN: usize = 16;
/// Largest signed manifest a bundle may carry (it must fit the slot's
/// manifest region with its 4-byte length prefix).
pub const MAX_MANIFEST_LEN: u32 = MANIFEST_REGION as u32 - 4;
/// Largest signed header.
pub const MAX_HEADER_LEN: u32 = 16 * 1024;
/// Most payloads a header may list.
pub const MAX_PAYLOADS: usize = 8;
/// Largest hash-tree payload: the installer holds the whole tree in memory
/// to check it before writing (a 4 GiB root has a 32 MiB tree). Host tools
/// (`imagegen bundle`, `imagegen inspect`) hold bundles to the same bound.
pub const MAX_TREE_LEN: u64 = 64 << 20;

/// What a payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PayloadKind {
    HashTree,
    RootData,
    Kernel,
    Initramfs,
    Cmdline,
}

impl PayloadKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::HashTree => "hash-tree",
            Self::RootData => "root-data",
            Self::Kernel => "kernel",
            Self::Initramfs => "initramfs",
            Self::Cmdline => "cmdline",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    pub kind: PayloadKind,
    pub size: u64,
    pub sha256: Digest,
}

/// The bundle header (signed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// sha256 of the manifest section (the SignedManifest envelope bytes).
    pub manifest_sha256: Digest,
    /// The lowest security version the *installed* system may have for
    /// this bundle to apply (`None`: any).
    pub min_from_security_version: Option<u32>,
    pub payloads: Vec<Payload>,
}

impl Enveloped for Header {
    const MAGIC: [u8; 4] = *b"AZBD";
    const VERSION: u16 = 1;
}

/// The header envelope as signed, with its signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedHeader {
    /// The [`Header`] envelope bytes, exactly as signed.
    pub header: Vec<u8>,
    pub signature: Sig,
}

impl Enveloped for SignedHeader {
    const MAGIC: [u8; 4] = *b"AZBH";
    const VERSION: u16 = 1;
}

/// The fixed-size start of a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preamble {
    pub manifest_len: u32,
    pub header_len: u32,
}

impl Preamble {
    pub fn encode(&self) -> [u8; PREAMBLE_LEN] {
        let mut out = [0u8; PREAMBLE_LEN];
        let (v, m, h) = (
            FORMAT_VERSION.to_le_bytes(),
            self.manifest_len.to_le_bytes(),
            self.header_len.to_le_bytes(),
        );
        let bytes = MAGIC.iter().chain(&v).chain(&[0, 0]).chain(&m).chain(&h);
        for (o, b) in out.iter_mut().zip(bytes) {
            *o = *b;
        }
        out
    }

    /// Decode and bound the two lengths.
    pub fn decode(bytes: &[u8]) -> Result<Preamble, BundleError> {
        let b: &[u8; PREAMBLE_LEN] = bytes
            .get(..PREAMBLE_LEN)
            .and_then(|b| b.try_into().ok())
            .ok_or(BundleError::Truncated {
                section: "preamble",
                got: bytes.len() as u64,
                expected: PREAMBLE_LEN as u64,
            })?;
        let [m0, m1, m2, m3, v0, v1, r0, r1, a0, a1, a2, a3, h0, h1, h2, h3] = *b;
        if [m0, m1, m2, m3] != MAGIC {
            return Err(BundleError::NotABundle([m0, m1, m2, m3]));
        }
        let version = u16::from_le_bytes([v0, v1]);
        if version != FORMAT_VERSION || [r0, r1] != [0, 0] {
            return Err(BundleError::UnsupportedFormat(version));
        }
        let manifest_len = u32::from_le_bytes([a0, a1, a2, a3]);
        let header_len = u32::from_le_bytes([h0, h1, h2, h3]);
        if manifest_len == 0 || manifest_len > MAX_MANIFEST_LEN {
            return Err(BundleError::SectionLength {
                section: "manifest",
                len: manifest_len,
                max: MAX_MANIFEST_LEN,
            });
        }
        if header_len == 0 || header_len > MAX_HEADER_LEN {
            return Err(BundleError::SectionLength {
                section: "header",
                len: header_len,
                max: MAX_HEADER_LEN,
            });
        }
        Ok(Preamble {
            manifest_len,
            header_len,
        })
    }
}

/// The target slot's geometry, as the device knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotGeometry {
    /// Bytes of the target root partition.
    pub size: u64,
}

/// Why a bundle is refused. Every variant names what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleError {
    NotABundle([u8; 4]),
    UnsupportedFormat(u16),
    SectionLength {
        section: &'static str,
        len: u32,
        max: u32,
    },
    Truncated {
        section: &'static str,
        got: u64,
        expected: u64,
    },
    /// The header was signed for another manifest.
    ManifestMismatch,
    TooManyPayloads(usize),
    /// Payloads out of the required order, repeated, or missing.
    PayloadOrder,
    /// A payload's size differs from what the signed manifest implies.
    PayloadSize {
        kind: PayloadKind,
        declared: u64,
        expected: u64,
    },
    /// A kernel/initramfs/cmdline digest differs from the manifest's.
    PayloadDigest(PayloadKind),
    /// The image does not fit the target slot.
    DoesNotFit {
        needed: u64,
        slot: u64,
    },
    /// The manifest's verity layout is inconsistent.
    Layout(&'static str),
    /// The writer could not encode a section.
    Encode(crate::FormatError),
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotABundle(m) => write!(f, "not an azl-edge bundle (magic {m:02x?})"),
            Self::UnsupportedFormat(v) => write!(
                f,
                "bundle format version {v} is not supported (this device reads {FORMAT_VERSION})"
            ),
            Self::SectionLength { section, len, max } => write!(
                f,
                "bundle {section} section is {len} bytes (must be 1 to {max})"
            ),
            Self::Truncated {
                section,
                got,
                expected,
            } => write!(
                f,
                "bundle is truncated in its {section}: {got} of {expected} bytes"
            ),
            Self::ManifestMismatch => {
                f.write_str("bundle header was signed for a different manifest")
            }
            Self::TooManyPayloads(n) => {
                write!(f, "bundle header lists {n} payloads (at most {MAX_PAYLOADS})")
            }
            Self::PayloadOrder => f.write_str(
                "bundle payloads must be hash-tree, root-data, then optionally kernel, initramfs, cmdline, each once",
            ),
            Self::PayloadSize {
                kind,
                declared,
                expected,
            } => write!(
                f,
                "bundle {} payload declares {declared} bytes, the signed manifest implies {expected}",
                kind.name()
            ),
            Self::PayloadDigest(k) => write!(
                f,
                "bundle {} payload digest differs from the signed manifest's",
                k.name()
            ),
            Self::DoesNotFit { needed, slot } => write!(
                f,
                "the image needs {needed} bytes but the target slot has {slot}"
            ),
            Self::Layout(what) => write!(f, "bundle manifest has an impossible layout: {what}"),
            Self::Encode(e) => write!(f, "cannot encode the bundle: {e}"),
        }
    }
}

/// Hold a (signature-checked) header to its (signature-checked) manifest
/// and the target slot, before reading any payload: order, sizes and
/// digests must be exactly what the manifest implies, and everything must
/// fit the slot with the manifest region at its end.
pub fn check_layout(
    header: &Header,
    manifest_section: &[u8],
    manifest: &Manifest,
    slot: SlotGeometry,
) -> Result<(), BundleError> {
    if header.manifest_sha256 != crate::sha256(manifest_section) {
        return Err(BundleError::ManifestMismatch);
    }
    if header.payloads.len() > MAX_PAYLOADS {
        return Err(BundleError::TooManyPayloads(header.payloads.len()));
    }
    let kinds: Vec<PayloadKind> = header.payloads.iter().map(|p| p.kind).collect();
    let ordered = kinds.windows(2).all(|w| matches!(w, [a, b] if a < b));
    if !ordered
        || kinds.first() != Some(&PayloadKind::HashTree)
        || kinds.get(1) != Some(&PayloadKind::RootData)
    {
        return Err(BundleError::PayloadOrder);
    }
    let v = &manifest.rootfs.verity;
    let data_size = v
        .data_blocks
        .checked_mul(u64::from(v.data_block_size))
        .ok_or(BundleError::Layout("data size overflows"))?;
    if data_size != manifest.rootfs.data_size {
        return Err(BundleError::Layout(
            "data size differs from the verity block count",
        ));
    }
    if v.hash_offset < data_size {
        return Err(BundleError::Layout("hash tree overlaps the data"));
    }
    let needed = v
        .hash_offset
        .checked_add(v.hash_size)
        .and_then(|n| n.checked_add(MANIFEST_REGION))
        .ok_or(BundleError::Layout("slot size overflows"))?;
    if needed > slot.size {
        return Err(BundleError::DoesNotFit {
            needed,
            slot: slot.size,
        });
    }
    for p in &header.payloads {
        let (expected, digest) = match p.kind {
            PayloadKind::HashTree => (v.hash_size, None),
            PayloadKind::RootData => (data_size, None),
            PayloadKind::Kernel => (manifest.kernel.size, Some(manifest.kernel.sha256)),
            PayloadKind::Initramfs => (manifest.initramfs.size, Some(manifest.initramfs.sha256)),
            PayloadKind::Cmdline => (
                manifest.cmdline.len() as u64,
                Some(crate::sha256(manifest.cmdline.as_bytes())),
            ),
        };
        if p.size != expected {
            return Err(BundleError::PayloadSize {
                kind: p.kind,
                declared: p.size,
                expected,
            });
        }
        if digest.is_some_and(|d| d != p.sha256) {
            return Err(BundleError::PayloadDigest(p.kind));
        }
    }
    Ok(())
}

// ---- Writer side (host `imagegen bundle`, tests). Signing stays with the
// caller (its key handling differs); these only lay the bytes out.

impl Header {
    /// The header of a root-slot bundle: the hash tree, then the data,
    /// with their sizes and digests.
    pub fn for_root(
        manifest_section: &[u8],
        min_from_security_version: Option<u32>,
        hash_area: (u64, Digest),
        root_data: (u64, Digest),
    ) -> Header {
        Header {
            manifest_sha256: crate::sha256(manifest_section),
            min_from_security_version,
            payloads: alloc::vec![
                Payload {
                    kind: PayloadKind::HashTree,
                    size: hash_area.0,
                    sha256: hash_area.1,
                },
                Payload {
                    kind: PayloadKind::RootData,
                    size: root_data.0,
                    sha256: root_data.1,
                },
            ],
        }
    }
}

/// Everything before the payloads: preamble ‖ manifest section ‖ signed
/// header envelope. The payloads follow in header order.
pub fn encode_head(
    manifest_section: &[u8],
    signed_header: &SignedHeader,
) -> Result<Vec<u8>, BundleError> {
    let header = signed_header.to_bytes().map_err(BundleError::Encode)?;
    let bound = |section, len: usize, max: u32| {
        u32::try_from(len)
            .ok()
            .filter(|&n| n >= 1 && n <= max)
            .ok_or(BundleError::SectionLength {
                section,
                len: u32::try_from(len).unwrap_or(u32::MAX),
                max,
            })
    };
    let preamble = Preamble {
        manifest_len: bound("manifest", manifest_section.len(), MAX_MANIFEST_LEN)?,
        header_len: bound("header", header.len(), MAX_HEADER_LEN)?,
    };
    let mut out = Vec::with_capacity(PREAMBLE_LEN + manifest_section.len() + header.len());
    out.extend_from_slice(&preamble.encode());
    out.extend_from_slice(manifest_section);
    out.extend_from_slice(&header);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        crate::manifest::example()
    }

    fn header(m: &Manifest, section: &[u8]) -> Header {
        let v = &m.rootfs.verity;
        Header {
            manifest_sha256: crate::sha256(section),
            min_from_security_version: None,
            payloads: alloc::vec![
                Payload {
                    kind: PayloadKind::HashTree,
                    size: v.hash_size,
                    sha256: [0; 32]
                },
                Payload {
                    kind: PayloadKind::RootData,
                    size: v.data_blocks * u64::from(v.data_block_size),
                    sha256: [0; 32],
                },
            ],
        }
    }

    #[test]
    fn preamble_round_trip_and_bounds() {
        let p = Preamble {
            manifest_len: 100,
            header_len: 200,
        };
        assert_eq!(Preamble::decode(&p.encode()), Ok(p));
        assert!(matches!(
            Preamble::decode(&[0; 3]),
            Err(BundleError::Truncated { .. })
        ));
        let mut b = p.encode();
        b[0] = b'X';
        assert!(matches!(
            Preamble::decode(&b),
            Err(BundleError::NotABundle(_))
        ));
        for (m, h) in [
            (0, 1),
            (1, 0),
            (MAX_MANIFEST_LEN + 1, 1),
            (1, MAX_HEADER_LEN + 1),
            (u32::MAX, u32::MAX),
        ] {
            let b = Preamble {
                manifest_len: m,
                header_len: h,
            }
            .encode();
            assert!(
                matches!(Preamble::decode(&b), Err(BundleError::SectionLength { .. })),
                "{m} {h}"
            );
        }
        let mut b = p.encode();
        b[4] = 2;
        assert_eq!(Preamble::decode(&b), Err(BundleError::UnsupportedFormat(2)));
    }

    #[test]
    fn layout_checks() {
        let m = manifest();
        let section = b"the signed manifest bytes";
        let v = &m.rootfs.verity;
        let big = SlotGeometry {
            size: v.hash_offset + v.hash_size + MANIFEST_REGION,
        };
        let h = header(&m, section);
        assert_eq!(check_layout(&h, section, &m, big), Ok(()));
        assert_eq!(
            check_layout(&h, b"other", &m, big),
            Err(BundleError::ManifestMismatch)
        );
        let small = SlotGeometry { size: big.size - 1 };
        assert!(matches!(
            check_layout(&h, section, &m, small),
            Err(BundleError::DoesNotFit { .. })
        ));

        let mut swapped = h.clone();
        swapped.payloads.swap(0, 1);
        assert_eq!(
            check_layout(&swapped, section, &m, big),
            Err(BundleError::PayloadOrder)
        );
        let mut dup = h.clone();
        dup.payloads.push(dup.payloads[1].clone());
        assert_eq!(
            check_layout(&dup, section, &m, big),
            Err(BundleError::PayloadOrder)
        );
        let mut no_tree = h.clone();
        no_tree.payloads.remove(0);
        assert_eq!(
            check_layout(&no_tree, section, &m, big),
            Err(BundleError::PayloadOrder)
        );

        let mut huge = h.clone();
        huge.payloads[1].size = 10 << 40;
        assert!(matches!(
            check_layout(&huge, section, &m, big),
            Err(BundleError::PayloadSize {
                kind: PayloadKind::RootData,
                ..
            })
        ));
        let mut k = h.clone();
        k.payloads.push(Payload {
            kind: PayloadKind::Kernel,
            size: m.kernel.size,
            sha256: [0xee; 32],
        });
        assert_eq!(
            check_layout(&k, section, &m, big),
            Err(BundleError::PayloadDigest(PayloadKind::Kernel))
        );
        k.payloads[2].sha256 = m.kernel.sha256;
        assert_eq!(check_layout(&k, section, &m, big), Ok(()));
    }

    #[test]
    fn writer_head_reads_back() {
        let section = b"signed manifest envelope";
        let h = Header::for_root(section, Some(2), (8192, [1; 32]), (4096, [2; 32]));
        assert_eq!(h.payloads[0].kind, PayloadKind::HashTree);
        assert_eq!(h.payloads[1].size, 4096);
        let sh = SignedHeader {
            header: h.to_bytes().unwrap(),
            signature: Sig {
                key_id: [1; 8],
                ed25519: [2; 64],
            },
        };
        let head = encode_head(section, &sh).unwrap();
        let p = Preamble::decode(&head).unwrap();
        let m_end = PREAMBLE_LEN + p.manifest_len as usize;
        assert_eq!(&head[PREAMBLE_LEN..m_end], section);
        let back = SignedHeader::from_bytes(&head[m_end..]).unwrap();
        assert_eq!(back, sh);
        assert_eq!(Header::from_bytes(&back.header).unwrap(), h);
        assert!(matches!(
            encode_head(b"", &sh),
            Err(BundleError::SectionLength {
                section: "manifest",
                ..
            })
        ));
    }

    #[test]
    fn impossible_manifest_layouts() {
        let section = b"s";
        let mut m = manifest();
        m.rootfs.verity.hash_offset = 0;
        let h = header(&m, section);
        let slot = SlotGeometry { size: u64::MAX };
        assert_eq!(
            check_layout(&h, section, &m, slot),
            Err(BundleError::Layout("hash tree overlaps the data"))
        );
        let mut m = manifest();
        m.rootfs.verity.hash_size = u64::MAX;
        let h = header(&m, section);
        assert_eq!(
            check_layout(&h, section, &m, slot),
            Err(BundleError::Layout("slot size overflows"))
        );
    }
}
