//! Where each partition goes on the disk, and its GUIDs.
//!
//! ```text
//! 0        1 MiB                                                     end
//! │MBR+GPT │ p1 │pad│ p2 │pad│ … │ pN │pad to 1 MiB│ 1 MiB: backup GPT │
//! ```
//!
//! The first partition starts at 1 MiB and every partition at a multiple of
//! 1 MiB (what partitioning tools do: good for flash erase blocks and for
//! every sector size up to 1 MiB). A partition is exactly as large as the
//! board says; the gap up to the next MiB stays unused. The disk ends with
//! one spare MiB that holds the backup GPT (its last 33 sectors), so the
//! disk size is a multiple of 1 MiB too.
//!
//! GUIDs come from [`guid`] with the labels `"gpt-disk"` (the disk) and
//! `"gpt-partition:<name>"` (each partition); type GUIDs are fixed per kind,
//! see [`type_guid`].
use super::{gpt_guid, guid, DiskError, Layout, PartSpec, TableKind, MIB, SECTOR_SIZE};
use azl_formats::manifest::{self, PartitionKind};

/// EFI System Partition (`c12a7328-f81f-11d2-ba4b-00a0c93ec93b`): the boot
/// partition, so UEFI firmware finds it too.
pub const TYPE_EFI_SYSTEM: [u8; 16] = gpt_guid(
    0xC12A7328,
    0xF81F,
    0x11D2,
    [0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B],
);
/// Linux root (arm64) from the Discoverable Partitions Specification
/// (`b921b045-1df0-41c3-af44-4c6f280d3fae`): both root slots.
pub const TYPE_LINUX_ROOT_ARM64: [u8; 16] = gpt_guid(
    0xB921B045,
    0x1DF0,
    0x41C3,
    [0xAF, 0x44, 0x4C, 0x6F, 0x28, 0x0D, 0x3F, 0xAE],
);
/// Linux filesystem data (`0fc63daf-8483-4772-8e79-3d69d8477de4`): the data
/// partition.
pub const TYPE_LINUX_DATA: [u8; 16] = gpt_guid(
    0x0FC63DAF,
    0x8483,
    0x4772,
    [0x8E, 0x79, 0x3D, 0x69, 0xD8, 0x47, 0x7D, 0xE4],
);
/// azl-edge boot state (`92eab9c9-1330-467f-b203-a63682756195`): a small raw
/// partition init uses for A/B state. Defined by azl-edge (a random v4 GUID
/// chosen once); it must never change.
pub const TYPE_AZL_BOOTSTATE: [u8; 16] = gpt_guid(
    0x92EAB9C9,
    0x1330,
    0x467F,
    [0xB2, 0x03, 0xA6, 0x36, 0x82, 0x75, 0x61, 0x95],
);

/// The GPT partition type GUID of a partition kind (on-disk byte order).
pub fn type_guid(kind: PartitionKind) -> [u8; 16] {
    match kind {
        PartitionKind::Boot => TYPE_EFI_SYSTEM,
        PartitionKind::Root => TYPE_LINUX_ROOT_ARM64,
        PartitionKind::BootState => TYPE_AZL_BOOTSTATE,
        PartitionKind::Data => TYPE_LINUX_DATA,
    }
}

/// The [`guid`] label of the disk GUID.
pub const DISK_GUID_LABEL: &str = "gpt-disk";

/// The [`guid`] label of a partition's GUID.
pub fn partition_guid_label(name: &str) -> String {
    format!("gpt-partition:{name}")
}

/// A partition with its place on the disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedPartition {
    pub spec: PartSpec,
    /// Byte offset on the disk (a multiple of 1 MiB).
    pub offset: u64,
    /// Size in bytes (= `spec.size`).
    pub size: u64,
    /// GPT type GUID, on-disk byte order.
    pub type_guid: [u8; 16],
    /// GPT unique partition GUID (`PARTUUID`), on-disk byte order.
    pub part_guid: [u8; 16],
}

impl PlacedPartition {
    /// The manifest's record of this partition, without a content digest.
    pub fn manifest_entry(&self) -> Result<manifest::Partition, DiskError> {
        let name = azl_formats::name(&self.spec.name)
            .ok_or_else(|| super::LayoutProblem::InvalidName(self.spec.name.clone()))?;
        Ok(manifest::Partition {
            name,
            kind: self.spec.kind,
            type_guid: self.type_guid,
            part_guid: self.part_guid,
            offset: self.offset,
            size: self.size,
            sha256: None,
        })
    }
}

/// A layout placed on a disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub table: TableKind,
    /// Total size of the disk image in bytes (a multiple of 1 MiB).
    pub disk_size: u64,
    /// GPT disk GUID, on-disk byte order.
    pub disk_guid: [u8; 16],
    /// In table order (= disk order).
    pub partitions: Vec<PlacedPartition>,
}

impl Placed {
    /// The partition called `name`.
    pub fn partition(&self, name: &str) -> Option<&PlacedPartition> {
        self.partitions.iter().find(|p| p.spec.name == name)
    }
}

fn align_up(v: u64, to: u64) -> Option<u64> {
    v.checked_next_multiple_of(to)
}

/// Place `layout` on a disk: offsets, disk size and GUIDs derived from
/// `seed`. Fails if the layout breaks a rule of [`Layout::problems`] or the
/// table kind cannot be written yet (MBR).
pub fn place(layout: &Layout, seed: &[u8]) -> Result<Placed, DiskError> {
    if layout.table == TableKind::Mbr {
        return Err(DiskError::Unsupported("MBR"));
    }
    layout.check()?;
    debug_assert_eq!(MIB % SECTOR_SIZE, 0);
    let mut next = MIB;
    let mut partitions = Vec::with_capacity(layout.partitions.len());
    for spec in &layout.partitions {
        let offset = next;
        let end = offset
            .checked_add(spec.size)
            .ok_or(DiskError::Overflow("partition end beyond 2^64 bytes"))?;
        next = align_up(end, MIB).ok_or(DiskError::Overflow("partition end beyond 2^64 bytes"))?;
        partitions.push(PlacedPartition {
            spec: spec.clone(),
            offset,
            size: spec.size,
            type_guid: type_guid(spec.kind),
            part_guid: guid(seed, &partition_guid_label(&spec.name)),
        });
    }
    let disk_size = next
        .checked_add(MIB)
        .ok_or(DiskError::Overflow("disk size beyond 2^64 bytes"))?;
    Ok(Placed {
        table: layout.table,
        disk_size,
        disk_guid: guid(seed, DISK_GUID_LABEL),
        partitions,
    })
}

#[cfg(test)]
mod tests {
    use super::super::layout::tests::{qemu_virt, spec};
    use super::super::{guid_string, LayoutProblem};
    use super::*;

    #[test]
    fn disk_place_qemu_virt() {
        let p = place(&qemu_virt(), b"seed").unwrap();
        let offs: Vec<(u64, u64)> = p
            .partitions
            .iter()
            .map(|p| (p.offset / MIB, p.size / MIB))
            .collect();
        assert_eq!(
            offs,
            vec![(1, 64), (65, 192), (257, 192), (449, 1), (450, 64)]
        );
        assert_eq!(p.disk_size, 515 * MIB);
        assert_eq!(
            guid_string(&p.partitions[1].type_guid),
            "b921b045-1df0-41c3-af44-4c6f280d3fae"
        );
        assert_eq!(p.partitions[0].type_guid, TYPE_EFI_SYSTEM);
        assert_eq!(p.partitions[3].type_guid, TYPE_AZL_BOOTSTATE);
        assert_eq!(p.partitions[4].type_guid, TYPE_LINUX_DATA);
        assert_eq!(p.disk_guid, guid(b"seed", "gpt-disk"));
        assert_eq!(
            p.partitions[1].part_guid,
            guid(b"seed", "gpt-partition:root-a")
        );
        assert_eq!(p.partition("data").unwrap().offset, 450 * MIB);
        let q = place(&qemu_virt(), b"other").unwrap();
        assert_ne!(p.disk_guid, q.disk_guid);
        assert_ne!(p.partitions[0].part_guid, q.partitions[0].part_guid);
        let m = p.partitions[1].manifest_entry().unwrap();
        assert_eq!((m.name.as_str(), m.offset), ("root-a", 65 * MIB));
    }

    #[test]
    fn disk_place_unaligned_sizes_round_up() {
        let mut l = qemu_virt();
        l.partitions[0].size = MIB + 4096;
        let p = place(&l, b"s").unwrap();
        assert_eq!(p.partitions[0].size, MIB + 4096);
        assert_eq!(p.partitions[1].offset, 3 * MIB);
    }

    #[test]
    fn disk_place_errors() {
        let mut l = qemu_virt();
        l.table = TableKind::Mbr;
        assert_eq!(
            place(&l, b"s").unwrap_err().to_string(),
            "MBR partition tables are not supported yet (only \"gpt\")"
        );
        let mut l = qemu_virt();
        l.partitions.push(spec("boot2", PartitionKind::Boot, MIB));
        let e = place(&l, b"s").unwrap_err();
        assert!(matches!(
            e,
            DiskError::Layout(LayoutProblem::KindCount { kind: "boot", .. })
        ));
        let mut l = qemu_virt();
        l.partitions[4].size = u64::MAX - 4095;
        assert!(matches!(
            place(&l, b"s").unwrap_err(),
            DiskError::Overflow(_)
        ));
    }
}
