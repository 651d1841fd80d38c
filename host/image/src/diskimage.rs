//! The verified disk image, assembled from what the rest of the build made:
//!
//! ```text
//! rootfs (FileSet) ─► squashfs ─► + dm-verity tree ─┐
//! kernel + initramfs + cmdline ─► boot FAT ─────────┼─► manifest ─► sign ─► root-a region
//! empty ext4 ─► data                                │
//! board [disk] layout + seed ─► GPT placement ──────┘                      ─► disk.img
//! ```
//!
//! Salt, UUIDs and GUIDs are derived from the image seed, timestamps from
//! `SOURCE_DATE_EPOCH`, so the same inputs give the same bytes. Nothing here
//! needs root: every filesystem is written into memory.
use crate::rootfs::{Content, FileSet, Kind};
use azl_disk::{self as disk, DiskError, Layout, PartSpec, Placed};
use azl_formats::envelope::Enveloped;
use azl_formats::manifest::{
    FileDigest, Manifest, PartitionKind, RootFs, SignedManifest, MANIFEST_REGION,
};
use azl_formats::sha256;
use azl_formats::FormatError;
use azl_sign::{self as sign, SigningKey};
use azl_squashfs::{self as squashfs, Entry, FileData, Node, SquashfsError};
use azl_verity::{self as verity, VerityError, VerityParams};
use std::path::Path;

/// The root slot `imagegen build` fills (`root-b` is left empty); a
/// bundle build ([`Inputs::slot`]) fills the slot it names instead.
pub const FIRST_SLOT: &str = "root-a";

/// Files on the boot partition.
pub const BOOT_KERNEL: &str = "/Image";
pub const BOOT_INITRAMFS: &str = "/initramfs.cpio.gz";
pub const BOOT_CMDLINE: &str = "/cmdline.txt";

#[derive(Debug, thiserror::Error)]
pub enum DiskImageError {
    #[error("disk layout: {0}")]
    Disk(#[from] DiskError),
    #[error("root filesystem: {0}")]
    Squashfs(#[from] SquashfsError),
    #[error("verity: {0}")]
    Verity(#[from] VerityError),
    #[error("reading {path} for the root filesystem: {source}")]
    Host {
        path: String,
        source: std::io::Error,
    },
    #[error("board layout has no {0} partition")]
    NoPartition(&'static str),
    #[error(
        "{slot:?} is not a root slot of board {board}'s disk layout (root slots: {valid})",
        valid = if .valid.is_empty() { "none".to_string() } else { .valid.join(", ") }
    )]
    UnknownSlot {
        slot: String,
        board: String,
        valid: Vec<String>,
    },
    #[error(
        "root filesystem needs {need} bytes (squashfs {squashfs} + verity {verity} + manifest {MANIFEST_REGION}) \
         but partition {partition} holds {size}: raise its size in the board file or shrink the image"
    )]
    RootTooLarge {
        partition: String,
        need: u64,
        squashfs: u64,
        verity: u64,
        size: u64,
    },
    #[error("encoding the manifest: {0}")]
    Encode(FormatError),
    #[error("signing the manifest: {0}")]
    Sign(#[from] sign::SignError),
}

/// What goes into the disk besides the layout.
pub struct Inputs<'a> {
    pub layout: &'a Layout,
    pub seed: &'a [u8],
    pub epoch: u32,
    pub rootfs: &'a FileSet,
    pub kernel: &'a [u8],
    pub initramfs: &'a [u8],
    pub cmdline: &'a str,
    pub board: &'a str,
    pub image_name: &'a str,
    pub image_version: &'a str,
    pub security_version: u32,
    pub service_table: &'a [u8],
    /// sha256 of the lock file text (`None`: no packages).
    pub lock_sha256: Option<[u8; 32]>,
    /// sha256 of the SBOM written next to the image.
    pub sbom_sha256: [u8; 32],
    pub key: Option<&'a SigningKey>,
    /// The root slot to fill (a bundle's target); `None`: [`FIRST_SLOT`],
    /// else the layout's first root partition (what `imagegen build` does).
    pub slot: Option<&'a str>,
    /// The board boots by UEFI: the boot partition is the ESP with the
    /// filled slot's files under `EFI/azl/<slot>/` ([`esp_files`]); `cmdline`
    /// is then that slot's entry command line.
    pub uefi: bool,
}

/// The ESP of a UEFI board as built: slot `slot`'s kernel, initramfs,
/// load-option data and command line under `EFI/azl/<slot>/`, and the
/// first-boot `startup.nsh` at the root (formats::efi). The other slot's
/// directory stays absent until an update installs it.
pub fn esp_files(
    slot: azl_formats::bootstate::Slot,
    kernel: &[u8],
    initramfs: &[u8],
    cmdline: &str,
) -> Vec<(String, Vec<u8>)> {
    use azl_formats::efi::{self, EspFile};
    let path = |f| format!("/{}", efi::esp_path(slot, f));
    vec![
        (path(EspFile::Kernel), kernel.to_vec()),
        (path(EspFile::Initrd), initramfs.to_vec()),
        (path(EspFile::Options), efi::options_data(cmdline)),
        (path(EspFile::Cmdline), format!("{cmdline}\n").into_bytes()),
        (
            format!("/{}", efi::STARTUP_NSH),
            efi::startup_nsh(cmdline).into_bytes(),
        ),
    ]
}

/// The root slot a build fills, from the board's layout: `slot` by name,
/// which must be a root-kind partition (else [`DiskImageError::UnknownSlot`]
/// naming the valid ones); without it [`FIRST_SLOT`], else the first
/// root-kind partition.
pub fn root_slot<'l>(
    layout: &'l Layout,
    slot: Option<&str>,
    board: &str,
) -> Result<&'l PartSpec, DiskImageError> {
    let mut roots = layout
        .partitions
        .iter()
        .filter(|p| p.kind == PartitionKind::Root);
    match slot {
        Some(name) => roots
            .find(|p| p.name == name)
            .ok_or_else(|| DiskImageError::UnknownSlot {
                slot: name.to_string(),
                board: board.to_string(),
                valid: layout
                    .partitions
                    .iter()
                    .filter(|p| p.kind == PartitionKind::Root)
                    .map(|p| p.name.clone())
                    .collect(),
            }),
        None => {
            let first = roots.clone().next();
            roots
                .find(|p| p.name == FIRST_SLOT)
                .or(first)
                .ok_or(DiskImageError::NoPartition("root"))
        }
    }
}

/// A built disk, in memory, ready to write.
#[derive(Clone)]
pub struct Built {
    pub placed: Placed,
    pub manifest: Manifest,
    pub signed: SignedManifest,
    /// (partition name, full content from offset 0).
    pub contents: Vec<(String, Vec<u8>)>,
    /// Unpadded squashfs size, padded size and verity superblock+tree size.
    pub squashfs_size: u64,
    pub squashfs_padded: u64,
    pub verity_size: u64,
}

fn file_digest(bytes: &[u8]) -> FileDigest {
    FileDigest {
        size: bytes.len() as u64,
        sha256: sha256(bytes),
    }
}

/// The file set as squashfs entries (host files are read when written).
pub fn squashfs_entries(set: &FileSet) -> Vec<Entry> {
    set.iter()
        .map(|(path, node)| Entry {
            path: path.clone(),
            node: match &node.kind {
                Kind::Dir => Node::Dir,
                Kind::File(Content::Bytes(b)) => Node::File(FileData::Bytes(b.clone())),
                Kind::File(Content::Host(p)) => Node::File(FileData::Host(p.clone())),
                Kind::Symlink(t) => Node::Symlink(t.clone()),
                Kind::CharDevice { major, minor } => Node::CharDev {
                    major: *major,
                    minor: *minor,
                },
            },
            mode: node.mode,
            uid: node.uid,
            gid: node.gid,
        })
        .collect()
}

/// Build every partition and the signed manifest.
pub fn build(i: &Inputs) -> Result<Built, DiskImageError> {
    let placed = disk::place(i.layout, i.seed)?;
    let part = |kind: PartitionKind, what: &'static str| {
        placed
            .partitions
            .iter()
            .find(|p| p.spec.kind == kind)
            .ok_or(DiskImageError::NoPartition(what))
    };
    let slot = root_slot(i.layout, i.slot, i.board)?;
    let root = placed
        .partitions
        .iter()
        .find(|p| p.spec.name == slot.name && p.spec.kind == PartitionKind::Root)
        .ok_or(DiskImageError::NoPartition("root"))?;
    let boot = part(PartitionKind::Boot, "boot")?;
    let data = part(PartitionKind::Data, "data")?;

    // Root slot: squashfs, verity tree right after it, manifest at the end.
    let sq = squashfs::build(
        &squashfs_entries(i.rootfs),
        &squashfs::Options {
            mtime: i.epoch,
            ..squashfs::Options::default()
        },
    )?;
    let params = VerityParams::new(
        sha256(&[i.seed, b"verity-salt:", root.spec.name.as_bytes()].concat()).to_vec(),
        disk::fs_uuid(i.seed, &format!("verity:{}", root.spec.name)),
    );
    let tree = verity::build(&sq.bytes, &params)?;
    let hash_offset = sq.bytes.len() as u64;
    let verity_size = tree.superblock_and_tree.len() as u64;
    let need = hash_offset + verity_size + MANIFEST_REGION;
    if need > root.size {
        return Err(DiskImageError::RootTooLarge {
            partition: root.spec.name.clone(),
            need,
            squashfs: hash_offset,
            verity: verity_size,
            size: root.size,
        });
    }
    let mut root_bytes = Vec::with_capacity(root.size as usize);
    root_bytes.extend_from_slice(&sq.bytes);
    root_bytes.extend_from_slice(&tree.superblock_and_tree);
    let protected = sha256(&root_bytes);

    // Boot partition: what a bootloader needs to start this slot.
    let efi_slot = azl_formats::bootstate::Slot::from_partition(&root.spec.name);
    let boot_files = match (i.uefi, efi_slot) {
        (true, Some(s)) => esp_files(s, i.kernel, i.initramfs, i.cmdline),
        (true, None) => return Err(DiskImageError::NoPartition("root-a or root-b")),
        (false, _) => vec![
            (BOOT_KERNEL.to_string(), i.kernel.to_vec()),
            (BOOT_INITRAMFS.to_string(), i.initramfs.to_vec()),
            (
                BOOT_CMDLINE.to_string(),
                format!("{}\n", i.cmdline).into_bytes(),
            ),
        ],
    };
    let volume_id = u32::from_le_bytes(
        sha256(&[i.seed, b"fat-volume-id"].concat())[..4]
            .try_into()
            .unwrap_or([0; 4]),
    );
    let boot_bytes = disk::fat_image(boot.size, "AZL-BOOT", volume_id, &boot_files)?;
    let data_bytes =
        disk::ext4_image(data.size, disk::fs_uuid(i.seed, "fs:data"), i.epoch, "data")?;

    let mut partitions = Vec::with_capacity(placed.partitions.len());
    for p in &placed.partitions {
        let mut e = p.manifest_entry()?;
        e.sha256 = if p.spec.name == root.spec.name {
            Some(protected)
        } else if p.spec.name == boot.spec.name {
            Some(sha256(&boot_bytes))
        } else {
            None
        };
        partitions.push(e);
    }
    let manifest = Manifest {
        board: i.board.to_string(),
        image_name: i.image_name.to_string(),
        image_version: i.image_version.to_string(),
        security_version: i.security_version,
        build_epoch: u64::from(i.epoch),
        disk_guid: placed.disk_guid,
        partitions,
        kernel: file_digest(i.kernel),
        initramfs: file_digest(i.initramfs),
        cmdline: i.cmdline.to_string(),
        rootfs: RootFs {
            partition: azl_formats::name(&root.spec.name)
                .ok_or(DiskImageError::NoPartition("root"))?,
            data_size: hash_offset,
            verity: tree.to_manifest(&params, hash_offset)?,
        },
        service_table_sha256: sha256(i.service_table),
        lock_sha256: i.lock_sha256,
        sbom_sha256: i.sbom_sha256,
        reference: None,
    };
    // Reference values: what a correct boot of this image measures.
    let identity = manifest.identity_bytes().map_err(DiskImageError::Encode)?;
    // A UEFI slot is started from its boot entry: the EFI stub measures
    // the entry's load options into PCR 9 before PID 1 runs.
    let predict = if i.uefi {
        azl_attest::predict_uefi
    } else {
        azl_attest::predict
    };
    let reference = predict(
        &identity,
        i.cmdline,
        &manifest.rootfs.verity.root_hash,
        i.service_table,
    );
    let manifest = Manifest {
        reference: Some(reference),
        ..manifest
    };
    let signed = sign::sign(&manifest, i.key)?;
    let region = signed.to_region().map_err(DiskImageError::Encode)?;
    root_bytes.resize((root.size - MANIFEST_REGION) as usize, 0);
    root_bytes.extend_from_slice(&region);

    let contents = vec![
        (boot.spec.name.clone(), boot_bytes),
        (root.spec.name.clone(), root_bytes),
        (data.spec.name.clone(), data_bytes),
    ];
    Ok(Built {
        placed,
        manifest,
        signed,
        contents,
        squashfs_size: sq.size,
        squashfs_padded: hash_offset,
        verity_size,
    })
}

impl std::fmt::Debug for Built {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Built")
            .field("placed", &self.placed)
            .field("manifest", &self.manifest)
            .field("squashfs_size", &self.squashfs_size)
            .field("verity_size", &self.verity_size)
            .finish_non_exhaustive()
    }
}

impl Built {
    /// Write `disk.img` (atomically, sparse).
    pub fn write(&self, path: &Path) -> Result<(), DiskImageError> {
        let contents: Vec<(&str, &[u8])> = self
            .contents
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        disk::write_disk(path, &self.placed, &contents)?;
        Ok(())
    }

    /// The filled root slot's content from its offset 0 (squashfs, verity
    /// area, zeros, manifest region): what a bundle is laid out from.
    pub fn root_slot(&self) -> Option<&[u8]> {
        self.contents
            .iter()
            .find(|(n, _)| n.as_str() == self.manifest.rootfs.partition.as_str())
            .map(|(_, b)| b.as_slice())
    }

    /// The signed manifest envelope (also written next to the disk).
    pub fn manifest_bytes(&self) -> Result<Vec<u8>, DiskImageError> {
        self.signed.to_bytes().map_err(DiskImageError::Encode)
    }
}
