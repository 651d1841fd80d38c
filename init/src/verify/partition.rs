//! Finding a partition by GPT name from the partition table stage 1 reads
//! itself (`azl_formats::gpt`), not from the kernel's view: the kernel
//! ignores an intact backup GPT when the primary is damaged, and scanning
//! sysfs by name would pick whichever of two same-named entries sorts first
//! (`vda10` before `vda2`). So: every whole disk's GPT is read (primary, or
//! the backup with a log line saying why), a name used twice is refused,
//! and partitions the kernel does not know are added with BLKPG so their
//! `/dev` nodes appear.
use super::disk::{self, DiskError};
use azl_formats::gpt::{self, Entry, Gpt, GptError, Which};
use nix::errno::Errno;
use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub enum PartitionError {
    /// No disk's GPT has an entry of that name within the wait.
    NotFound {
        partname: String,
        waited: Duration,
        /// Each whole disk seen and what its GPT held or why it was unreadable.
        disks: Vec<String>,
    },
    /// One table names two entries alike.
    Duplicate {
        disk: String,
        err: GptError,
    },
    /// Two disks hold a partition of that name.
    TwoDisks {
        partname: String,
        first: String,
        second: String,
    },
    /// The kernel knows the partition with other bounds than the GPT read.
    KernelDisagrees {
        dev: String,
        kernel: (u64, u64),
        gpt: (u64, u64),
    },
    AddPartition {
        disk: String,
        number: u32,
        errno: Errno,
    },
    NoNode {
        dev: String,
        waited: Duration,
    },
    Disk(DiskError),
}

impl fmt::Display for PartitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound {
                partname,
                waited,
                disks,
            } => write!(
                f,
                "no GPT partition named {partname:?} after {} ms (disks: {})",
                waited.as_millis(),
                if disks.is_empty() {
                    "none".to_string()
                } else {
                    disks.join("; ")
                }
            ),
            Self::Duplicate { disk, err } => {
                write!(
                    f,
                    "refusing {disk}: {err} (which one is the real slot is ambiguous)"
                )
            }
            Self::TwoDisks {
                partname,
                first,
                second,
            } => write!(
                f,
                "refusing to choose: both {first} and {second} hold a partition named {partname:?}"
            ),
            Self::KernelDisagrees { dev, kernel, gpt } => write!(
                f,
                "{dev}: the kernel has it at byte {} size {}, the GPT says byte {} size {}",
                kernel.0, kernel.1, gpt.0, gpt.1
            ),
            Self::AddPartition {
                disk,
                number,
                errno,
            } => write!(
                f,
                "cannot add partition {number} of {disk} to the kernel (BLKPG): {}",
                errno.desc()
            ),
            Self::NoNode { dev, waited } => {
                write!(f, "{dev} did not appear within {} ms", waited.as_millis())
            }
            Self::Disk(e) => write!(f, "{e}"),
        }
    }
}

/// A partition found in a GPT, with its device node.
#[derive(Debug, Clone)]
pub struct Partition {
    /// `/dev/vda2`
    pub dev: String,
    /// Byte offset on the disk and size, as the GPT entry says.
    pub offset: u64,
    pub size_bytes: u64,
    /// `/dev/vda`, and the entry number.
    pub disk: String,
    pub number: u32,
    /// The entry's unique partition GUID (on-disk byte order).
    pub part_guid: [u8; 16],
}

/// `vda` + 2 → `vda2`; `mmcblk0` + 2 → `mmcblk0p2`.
fn part_name(disk: &str, number: u32) -> String {
    if disk.ends_with(|c: char| c.is_ascii_digit()) {
        format!("{disk}p{number}")
    } else {
        format!("{disk}{number}")
    }
}

fn read_gpt(disk: &str, bytes: u64) -> Result<Gpt, String> {
    let dev = format!("/dev/{disk}");
    gpt::read(bytes, |off, len| disk::read_at(&dev, off, len)).map_err(|e| match e {
        gpt::ReadError::Io(e) => e.to_string(),
        gpt::ReadError::Invalid { primary, backup } => {
            format!("no valid GPT (primary: {primary}; backup: {backup})")
        }
    })
}

/// Make the kernel know every entry of `gpt` on `disk` with the GPT's
/// bounds: add missing ones with BLKPG, refuse ones that differ.
fn sync_kernel(disk: &str, gpt: &Gpt) -> Result<(), PartitionError> {
    let dev = format!("/dev/{disk}");
    let mut file = None;
    for e in &gpt.entries {
        let name = part_name(disk, e.number);
        let sys = Path::new("/sys/class/block").join(disk).join(&name);
        let want = (e.offset(), e.size());
        if sys.exists() {
            let kernel = (
                disk::sysfs_u64(&sys.join("start")) * 512,
                disk::sysfs_u64(&sys.join("size")) * 512,
            );
            if kernel != want {
                return Err(PartitionError::KernelDisagrees {
                    dev: format!("/dev/{name}"),
                    kernel,
                    gpt: want,
                });
            }
            continue;
        }
        if file.is_none() {
            file = Some(std::fs::File::open(&dev).map_err(|err| {
                PartitionError::Disk(DiskError::Io {
                    path: dev.clone(),
                    offset: 0,
                    err,
                })
            })?);
        }
        if let Some(f) = &file {
            crate::sys::blkpg::add_partition(f, e.number, want.0, want.1).map_err(|errno| {
                PartitionError::AddPartition {
                    disk: dev.clone(),
                    number: e.number,
                    errno,
                }
            })?;
            log::info!("partition {name} ({}) added from the GPT", e.name);
        }
    }
    Ok(())
}

fn describe(disk: &str, gpt: &Gpt) -> String {
    let names: Vec<String> = gpt
        .entries
        .iter()
        .map(|e| format!("{}={}", part_name(disk, e.number), e.name))
        .collect();
    format!("{disk}: {}", names.join(", "))
}

/// Wait up to `wait` for a disk whose GPT has exactly one entry named
/// `partname`, make sure the kernel has its partitions, and return it.
pub fn find(partname: &str, wait: Duration) -> Result<Partition, PartitionError> {
    let start = Instant::now();
    loop {
        let mut disks = Vec::new();
        let mut hit: Option<(String, Gpt, Entry)> = None;
        for (disk, bytes) in disk::whole_disks() {
            let gpt = match read_gpt(&disk, bytes) {
                Ok(g) => g,
                Err(why) => {
                    disks.push(format!("{disk}: {why}"));
                    continue;
                }
            };
            disks.push(describe(&disk, &gpt));
            let entry = gpt
                .unique(partname)
                .map_err(|err| PartitionError::Duplicate {
                    disk: format!("/dev/{disk}"),
                    err,
                })?
                .cloned();
            if let Some(entry) = entry {
                if let Some((first, _, e)) = &hit {
                    return Err(PartitionError::TwoDisks {
                        partname: partname.into(),
                        first: format!("/dev/{}", part_name(first, e.number)),
                        second: format!("/dev/{}", part_name(&disk, entry.number)),
                    });
                }
                hit = Some((disk, gpt, entry));
            }
        }
        if let Some((disk, gpt, entry)) = hit {
            if let (Which::Backup, Some(why)) = (gpt.copy, &gpt.primary_error) {
                log::warn!(
                    "/dev/{disk}: primary GPT is corrupt ({why}); using the backup GPT at LBA {}",
                    gpt.header.my_lba
                );
            }
            sync_kernel(&disk, &gpt)?;
            let dev = format!("/dev/{}", part_name(&disk, entry.number));
            while !Path::new(&dev).exists() {
                if start.elapsed() >= wait {
                    return Err(PartitionError::NoNode {
                        dev,
                        waited: start.elapsed(),
                    });
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            return Ok(Partition {
                dev,
                offset: entry.offset(),
                size_bytes: entry.size(),
                disk: format!("/dev/{disk}"),
                number: entry.number,
                part_guid: entry.part_guid,
            });
        }
        if start.elapsed() >= wait {
            return Err(PartitionError::NotFound {
                partname: partname.into(),
                waited: start.elapsed(),
                disks,
            });
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_device_names() {
        assert_eq!(part_name("vda", 2), "vda2");
        assert_eq!(part_name("vda", 10), "vda10");
        assert_eq!(part_name("mmcblk0", 2), "mmcblk0p2");
        assert_eq!(part_name("nvme0n1", 1), "nvme0n1p1");
    }
}
