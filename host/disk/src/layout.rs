//! What a board's `[disk]` section asks for: the partition table kind and
//! the partitions in disk order, and the rules every layout must follow
//! ([`Layout::problems`]). Parsing the TOML (with file:line errors) is
//! `board.rs`'s job; this module owns the meaning.
use super::{kind_name, MIB};
use azl_formats::manifest::PartitionKind;

/// Smallest partition: 1 MiB.
pub const MIN_PARTITION_SIZE: u64 = MIB;
/// Every partition size is a multiple of this (the filesystem and verity
/// block size).
pub const SIZE_GRANULE: u64 = 4096;
/// Smallest data partition: below 8 MiB `mke2fs` leaves out the journal,
/// and a data partition without one does not survive power loss well.
pub const MIN_DATA_SIZE: u64 = 8 * MIB;

/// The partition table to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    /// GUID partition table (qemu-virt, UEFI machines).
    Gpt,
    /// MBR (Raspberry Pi firmware reads MBR only). Parsed, not yet written.
    Mbr,
}

impl TableKind {
    /// The board-file spelling.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gpt => "gpt",
            Self::Mbr => "mbr",
        }
    }

    /// Parse the board-file spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "gpt" => Some(Self::Gpt),
            "mbr" => Some(Self::Mbr),
            _ => None,
        }
    }
}

/// One partition as the board asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartSpec {
    /// GPT partition name (`PARTNAME=` in the kernel's uevents); init finds
    /// partitions by it.
    pub name: String,
    pub kind: PartitionKind,
    /// Size in bytes.
    pub size: u64,
}

/// A board's disk: table kind and partitions in disk order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub table: TableKind,
    pub partitions: Vec<PartSpec>,
}

/// A rule a layout breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutProblem {
    #[error("partition name {0:?} is invalid: use 1-32 letters, digits, `_`, `.`, `-`, not starting with `.` or `-`")]
    InvalidName(String),
    #[error("partition name {0:?} is used twice")]
    DuplicateName(String),
    #[error("partition {name:?}: size {size} bytes is less than 1 MiB")]
    TooSmall { name: String, size: u64 },
    #[error("partition {name:?}: size {size} bytes is not a multiple of 4096")]
    Unaligned { name: String, size: u64 },
    #[error("partition {name:?}: a data partition needs at least 8 MiB (ext4 with a journal), not {size} bytes")]
    DataTooSmall { name: String, size: u64 },
    #[error("the disk needs exactly one {kind:?} partition, found {found}")]
    KindCount { kind: &'static str, found: usize },
    #[error("the disk needs 1 or 2 \"root\" partitions (A/B slots), found {0}")]
    RootCount(usize),
    #[error("root partitions must have the same size: {a:?} is {a_size} bytes, {b:?} is {b_size}")]
    RootSizes {
        a: String,
        a_size: u64,
        b: String,
        b_size: u64,
    },
}

impl Layout {
    /// Every rule this layout breaks, each with the index of the partition
    /// it concerns (`None`: the layout as a whole). Empty when valid.
    pub fn problems(&self) -> Vec<(Option<usize>, LayoutProblem)> {
        let mut out = Vec::new();
        for (i, p) in self.partitions.iter().enumerate() {
            if !azl_formats::valid_name(&p.name) {
                out.push((Some(i), LayoutProblem::InvalidName(p.name.clone())));
            } else if self.partitions.iter().take(i).any(|q| q.name == p.name) {
                out.push((Some(i), LayoutProblem::DuplicateName(p.name.clone())));
            }
            let name = p.name.clone();
            if p.size < MIN_PARTITION_SIZE {
                out.push((Some(i), LayoutProblem::TooSmall { name, size: p.size }));
            } else if p.size % SIZE_GRANULE != 0 {
                out.push((Some(i), LayoutProblem::Unaligned { name, size: p.size }));
            } else if p.kind == PartitionKind::Data && p.size < MIN_DATA_SIZE {
                out.push((Some(i), LayoutProblem::DataTooSmall { name, size: p.size }));
            }
        }
        for kind in [
            PartitionKind::Boot,
            PartitionKind::BootState,
            PartitionKind::Data,
        ] {
            let found = self.of_kind(kind).count();
            if found != 1 {
                out.push((
                    None,
                    LayoutProblem::KindCount {
                        kind: kind_name(kind),
                        found,
                    },
                ));
            }
        }
        let roots: Vec<(usize, &PartSpec)> = self.of_kind(PartitionKind::Root).collect();
        match roots.as_slice() {
            [_] => {}
            [(_, a), (j, b)] => {
                if a.size != b.size {
                    out.push((
                        Some(*j),
                        LayoutProblem::RootSizes {
                            a: a.name.clone(),
                            a_size: a.size,
                            b: b.name.clone(),
                            b_size: b.size,
                        },
                    ));
                }
            }
            r => out.push((None, LayoutProblem::RootCount(r.len()))),
        }
        out
    }

    /// The first rule this layout breaks, if any.
    pub fn check(&self) -> Result<(), LayoutProblem> {
        match self.problems().into_iter().next() {
            Some((_, p)) => Err(p),
            None => Ok(()),
        }
    }

    /// Partitions of `kind`, with their index, in disk order.
    pub fn of_kind(&self, kind: PartitionKind) -> impl Iterator<Item = (usize, &PartSpec)> {
        self.partitions
            .iter()
            .enumerate()
            .filter(move |(_, p)| p.kind == kind)
    }

    /// The partition called `name`.
    pub fn partition(&self, name: &str) -> Option<&PartSpec> {
        self.partitions.iter().find(|p| p.name == name)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn spec(name: &str, kind: PartitionKind, size: u64) -> PartSpec {
        PartSpec {
            name: name.into(),
            kind,
            size,
        }
    }

    /// The layout of boards/qemu-virt.toml.
    pub(crate) fn qemu_virt() -> Layout {
        Layout {
            table: TableKind::Gpt,
            partitions: vec![
                spec("boot", PartitionKind::Boot, 64 * MIB),
                spec("root-a", PartitionKind::Root, 192 * MIB),
                spec("root-b", PartitionKind::Root, 192 * MIB),
                spec("bootstate", PartitionKind::BootState, MIB),
                spec("data", PartitionKind::Data, 64 * MIB),
            ],
        }
    }

    #[test]
    fn disk_layout_valid() {
        assert_eq!(qemu_virt().problems(), vec![]);
        let mut single = qemu_virt();
        single.partitions.remove(2);
        assert_eq!(single.check(), Ok(()));
    }

    #[test]
    fn disk_layout_problems() {
        let mut l = qemu_virt();
        l.partitions[0].name = "-x".into();
        l.partitions[2].name = "root-a".into();
        l.partitions[2].size = 100 * MIB;
        l.partitions[3].size = 4096;
        l.partitions[4].size = 4 * MIB;
        l.partitions
            .push(spec("extra", PartitionKind::Boot, MIB + 512));
        let p = l.problems();
        let msgs: Vec<String> = p.iter().map(|(i, p)| format!("{i:?} {p}")).collect();
        assert_eq!(
            msgs,
            vec![
                "Some(0) partition name \"-x\" is invalid: use 1-32 letters, digits, `_`, `.`, `-`, not starting with `.` or `-`",
                "Some(2) partition name \"root-a\" is used twice",
                "Some(3) partition \"bootstate\": size 4096 bytes is less than 1 MiB",
                "Some(4) partition \"data\": a data partition needs at least 8 MiB (ext4 with a journal), not 4194304 bytes",
                "Some(5) partition \"extra\": size 1049088 bytes is not a multiple of 4096",
                "None the disk needs exactly one \"boot\" partition, found 2",
                "Some(2) root partitions must have the same size: \"root-a\" is 201326592 bytes, \"root-a\" is 104857600",
            ],
            "{msgs:#?}"
        );
        let l = Layout {
            table: TableKind::Gpt,
            partitions: vec![],
        };
        let msgs: Vec<String> = l.problems().iter().map(|(_, p)| p.to_string()).collect();
        assert_eq!(
            msgs,
            vec![
                "the disk needs exactly one \"boot\" partition, found 0",
                "the disk needs exactly one \"bootstate\" partition, found 0",
                "the disk needs exactly one \"data\" partition, found 0",
                "the disk needs 1 or 2 \"root\" partitions (A/B slots), found 0",
            ]
        );
    }
}
