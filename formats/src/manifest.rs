//! The signed image manifest: what a build produced and what the device
//! must find at boot. imagegen writes it into the last
//! [`MANIFEST_REGION`] bytes of each root partition (so a slot carries its
//! own manifest); init reads it from there, checks the Ed25519 signature
//! against the public key baked into the initramfs, and takes the verity
//! parameters of its root filesystem from it.
//!
//! ```text
//! SignedManifest (envelope "AZSM")
//!   manifest:  bytes   the Manifest envelope ("AZMN"), exactly as signed
//!   signature: Option<[u8; 64]>   Ed25519 over `manifest`; None = --insecure-unsigned
//!   key_id:    [u8; 8]            first 8 bytes of sha256(public key)
//! ```
use crate::envelope::Enveloped;
use crate::Name;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// Size of the region at the end of a root partition that holds the
/// signed manifest: `len: u32 LE` then the `SignedManifest` envelope,
/// zero-padded.
pub const MANIFEST_REGION: u64 = 64 * 1024;

pub type Digest = [u8; 32];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub board: String,
    pub image_name: String,
    pub image_version: String,
    /// Anti-rollback security version: a device never boots or installs an
    /// image whose security version is below its floor, and committing an
    /// update raises the floor to the new image's version. Raise it when a
    /// release fixes a vulnerability the old one must not come back with.
    pub security_version: u32,
    /// SOURCE_DATE_EPOCH of the build (0 if unset).
    pub build_epoch: u64,
    /// GPT disk GUID (mixed-endian as stored on disk).
    pub disk_guid: [u8; 16],
    /// Every partition of the disk, in table order.
    pub partitions: Vec<Partition>,
    /// Kernel image and initramfs as placed on the boot partition.
    pub kernel: FileDigest,
    pub initramfs: FileDigest,
    /// Full kernel command line the build booted with.
    pub cmdline: String,
    /// The root filesystem of this slot.
    pub rootfs: RootFs,
    /// sha256 of the compiled service table (`/etc/azl-edge/services.tbl`).
    pub service_table_sha256: Digest,
    /// sha256 of the `imagegen.lock` text naming exactly the installed
    /// packages; `None` when the image installs no packages.
    pub lock_sha256: Option<Digest>,
    /// sha256 of the SPDX SBOM (`sbom.spdx.json`) written next to the image.
    pub sbom_sha256: Digest,
    /// Reference values for attestation: the events and PCR values a
    /// correct boot of this image produces (predicted by imagegen).
    pub reference: Option<Reference>,
}

/// What a correct boot measures, predicted at build time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    /// The azl-edge events in order, up to "services ready".
    pub events: Vec<RefEvent>,
    /// SHA-256 PCR values after those events (PCRs start at zero).
    pub pcrs: Vec<(u8, Digest)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefEvent {
    pub pcr: u8,
    /// The event's tag (see [`crate::measure::Kind::tag`]).
    pub tag: String,
    /// SHA-256 of the event data.
    pub digest: Digest,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    pub size: u64,
    pub sha256: Digest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PartitionKind {
    /// FAT: kernel, initramfs, firmware files.
    Boot,
    /// A root slot (squashfs + verity tree + manifest region).
    Root,
    /// Small raw area for A/B boot state.
    BootState,
    /// Persistent ext4, mounted read-write at /data.
    Data,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    /// GPT partition name (`boot`, `root-a`, `root-b`, `bootstate`, `data`).
    pub name: Name,
    pub kind: PartitionKind,
    pub type_guid: [u8; 16],
    pub part_guid: [u8; 16],
    /// Byte offset and size on the disk.
    pub offset: u64,
    pub size: u64,
    /// sha256 of the partition's content as built. For a root slot this
    /// covers the verity-protected bytes (squashfs + hash tree), not the
    /// manifest region; `None` for mutable or empty partitions.
    pub sha256: Option<Digest>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    /// Name of the partition it lives in.
    pub partition: Name,
    /// Bytes of squashfs (a multiple of the data block size).
    pub data_size: u64,
    pub verity: Verity,
}

/// dm-verity parameters, as `veritysetup format` would print them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verity {
    pub root_hash: Digest,
    pub salt: Vec<u8>,
    pub uuid: [u8; 16],
    pub data_block_size: u32,
    pub hash_block_size: u32,
    pub data_blocks: u64,
    /// Byte offset of the verity superblock within the partition; the hash
    /// tree starts one hash block later.
    pub hash_offset: u64,
    /// Total bytes of superblock + hash tree.
    pub hash_size: u64,
}

impl Verity {
    /// The `verity` target's table parameters for device-mapper, with the
    /// same device holding data and hashes.
    pub fn table_params(&self, device: &str) -> String {
        let mut p = String::new();
        // Saturating: a hostile manifest (u64::MAX offset, 1-byte blocks) must
        // give a table the kernel refuses, not an overflow panic.
        let hash_start =
            (self.hash_offset / u64::from(self.hash_block_size.max(1))).saturating_add(1);
        let _ = core::fmt::write(
            &mut p,
            format_args!(
                "1 {device} {device} {} {} {} {hash_start} sha256 {} {}",
                self.data_block_size,
                self.hash_block_size,
                self.data_blocks,
                Hex(&self.root_hash),
                Hex(&self.salt)
            ),
        );
        p
    }
}

/// Bytes of a signing key's id.
pub const KEY_ID_LEN: usize = 8;

/// The id of a raw Ed25519 public key, as recorded in [`Sig::key_id`]: the
/// first 8 bytes of its SHA-256. Signer and device must agree on it.
pub fn key_id(public: &[u8]) -> [u8; KEY_ID_LEN] {
    let d = crate::sha256(public);
    let mut id = [0u8; KEY_ID_LEN];
    for (dst, src) in id.iter_mut().zip(d.iter()) {
        *dst = *src;
    }
    id
}

/// Lower-case hex formatting of bytes.
pub struct Hex<'a>(pub &'a [u8]);

impl core::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl Enveloped for Manifest {
    const MAGIC: [u8; 4] = *b"AZMN";
    /// 2: `security_version` added. 3: `lock_sha256` and `sbom_sha256`.
    const VERSION: u16 = 3;
}

impl Manifest {
    /// The bytes PID 1 measures for the manifest: the manifest envelope
    /// without its reference values (which predict this very measurement,
    /// so they cannot be part of it).
    pub fn identity_bytes(&self) -> Result<Vec<u8>, crate::FormatError> {
        let mut m = self.clone();
        m.reference = None;
        m.to_bytes()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedManifest {
    /// The `Manifest` envelope bytes, exactly as signed.
    pub manifest: Vec<u8>,
    pub signature: Option<Sig>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sig {
    /// First 8 bytes of sha256 of the signer's raw Ed25519 public key.
    pub key_id: [u8; 8],
    /// Ed25519 signature over `SignedManifest::manifest`.
    #[serde(with = "sig_bytes")]
    pub ed25519: [u8; 64],
}

mod sig_bytes {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        let v: &[u8] = <&[u8]>::deserialize(d)?;
        v.try_into()
            .map_err(|_| D::Error::invalid_length(v.len(), &"64 bytes"))
    }
}

impl Enveloped for SignedManifest {
    const MAGIC: [u8; 4] = *b"AZSM";
    const VERSION: u16 = 1;
}

/// Why a manifest region does not hold a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionError {
    /// All zero: nothing was ever written here.
    Empty,
    /// The length prefix points past the region.
    BadLength(u32),
    Format(crate::FormatError),
}

impl core::fmt::Display for RegionError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Empty => f.write_str("no manifest (region is empty)"),
            Self::BadLength(n) => write!(
                f,
                "manifest length {n} exceeds the {MANIFEST_REGION}-byte region"
            ),
            Self::Format(e) => write!(f, "manifest: {e}"),
        }
    }
}

impl SignedManifest {
    /// Encode into a region of exactly [`MANIFEST_REGION`] bytes.
    pub fn to_region(&self) -> Result<Vec<u8>, crate::FormatError> {
        let body = self.to_bytes()?;
        region_of(&body).ok_or(crate::FormatError::Encode(
            postcard::Error::SerializeBufferFull,
        ))
    }

    /// Decode from a region read off the disk.
    pub fn from_region(region: &[u8]) -> Result<SignedManifest, RegionError> {
        SignedManifest::from_bytes(region_body(region)?).map_err(RegionError::Format)
    }

    /// Decode the inner manifest (call only after checking the signature).
    pub fn manifest(&self) -> Result<Manifest, crate::FormatError> {
        Manifest::from_bytes(&self.manifest)
    }
}

/// The SignedManifest envelope bytes inside a region (after the length
/// prefix), exactly as stored. Its sha256 is the slot's *manifest digest*
/// (boot state, bundle header, `update status`).
pub fn region_body(region: &[u8]) -> Result<&[u8], RegionError> {
    let (len, rest) = region.split_first_chunk::<4>().ok_or(RegionError::Empty)?;
    let len = u32::from_le_bytes(*len);
    if len == 0 {
        return Err(RegionError::Empty);
    }
    rest.get(..len as usize).ok_or(RegionError::BadLength(len))
}

/// The region (exactly [`MANIFEST_REGION`] bytes) holding `envelope`:
/// length prefix, the bytes as given, zero padding.
pub fn region_of(envelope: &[u8]) -> Option<Vec<u8>> {
    let len = u32::try_from(envelope.len()).ok()?;
    if u64::from(len) + 4 > MANIFEST_REGION {
        return None;
    }
    let mut region = Vec::with_capacity(MANIFEST_REGION as usize);
    region.extend_from_slice(&len.to_le_bytes());
    region.extend_from_slice(envelope);
    region.resize(MANIFEST_REGION as usize, 0);
    Some(region)
}

/// A complete, plausible manifest for tests, benchmarks and examples
/// (every field set; not a real image).
#[doc(hidden)]
pub fn example() -> Manifest {
    Manifest {
        board: "qemu-virt".into(),
        image_name: "demo".into(),
        image_version: "1.0.0".into(),
        security_version: 1,
        build_epoch: 0,
        disk_guid: [1; 16],
        partitions: alloc::vec![Partition {
            name: crate::name("root-a").unwrap_or_default(),
            kind: PartitionKind::Root,
            type_guid: [2; 16],
            part_guid: [3; 16],
            offset: 1 << 20,
            size: 64 << 20,
            sha256: Some([4; 32]),
        }],
        kernel: FileDigest {
            size: 10,
            sha256: [5; 32],
        },
        initramfs: FileDigest {
            size: 11,
            sha256: [6; 32],
        },
        cmdline: "console=ttyAMA0".into(),
        rootfs: RootFs {
            partition: crate::name("root-a").unwrap_or_default(),
            data_size: 8192,
            verity: Verity {
                root_hash: [0xab; 32],
                salt: alloc::vec![0x01, 0x02],
                uuid: [7; 16],
                data_block_size: 4096,
                hash_block_size: 4096,
                data_blocks: 2,
                hash_offset: 8192,
                hash_size: 8192,
            },
        },
        service_table_sha256: [8; 32],
        lock_sha256: Some([9; 32]),
        sbom_sha256: [10; 32],
        reference: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Manifest {
        example()
    }

    #[test]
    fn region_roundtrip() {
        let m = sample();
        let sm = SignedManifest {
            manifest: m.to_bytes().unwrap(),
            signature: Some(Sig {
                key_id: [9; 8],
                ed25519: [10; 64],
            }),
        };
        let region = sm.to_region().unwrap();
        assert_eq!(region.len() as u64, MANIFEST_REGION);
        let body = region_body(&region).unwrap();
        assert_eq!(body, sm.to_bytes().unwrap().as_slice());
        assert_eq!(region_of(body).unwrap(), region);
        assert_eq!(region_of(&[1; MANIFEST_REGION as usize - 3]), None);
        let back = SignedManifest::from_region(&region).unwrap();
        assert_eq!(back, sm);
        assert_eq!(back.manifest().unwrap(), m);
        assert_eq!(
            SignedManifest::from_region(&[0; 64]),
            Err(RegionError::Empty)
        );
        let mut bad = region.clone();
        bad[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            SignedManifest::from_region(&bad),
            Err(RegionError::BadLength(_))
        ));
    }

    #[test]
    fn verity_params_of_hostile_values_do_not_overflow() {
        let mut v = sample().rootfs.verity;
        v.hash_offset = u64::MAX;
        v.hash_block_size = 1;
        let p = v.table_params("d");
        assert!(p.contains(&alloc::format!(" {} sha256 ", u64::MAX)), "{p}");
        v.hash_block_size = 0;
        assert!(v
            .table_params("d")
            .contains(&alloc::format!(" {} sha256 ", u64::MAX)));
    }

    #[test]
    fn verity_params() {
        let p = sample().rootfs.verity.table_params("/dev/vda2");
        assert_eq!(
            p,
            alloc::format!(
                "1 /dev/vda2 /dev/vda2 4096 4096 2 3 sha256 {} 0102",
                "ab".repeat(32)
            )
        );
    }
}
