//! The partition table: protective MBR, primary GPT (LBA 1–33) and backup
//! GPT (the last 33 sectors), as UEFI 2.10 §5 specifies, with 512-byte
//! sectors, 128 entries of 128 bytes, partition names in UTF-16LE (Linux
//! shows them as `PARTNAME=` in uevents) and CRC32 (`crc32fast`) over each
//! header and entry array.
//!
//! Reading has one rule, the device's: [`azl_formats::gpt`] (stage 1's
//! reader) decides which copy is used and what a valid header and entry
//! array are. [`read_table`] reads through it and then also checks what
//! the device does not need but a host tool should report: the protective
//! MBR, the other copy, and that both copies agree. [`read_gpt`] is the
//! strict form (any such problem is an error).
//!
//! Written here rather than with the `gpt` crate (4.1): its reader panics
//! (`assert_eq!`) on an entry size other than 128 and does not check the
//! entry-array CRC, and its writer draws random GUIDs wherever a caller
//! does not override one. The format is two small structures and a CRC;
//! the tests cross-check the writer with `sgdisk -v`, `sfdisk --json` and
//! the formats reader.
use super::{DiskError, Placed, PlacedPartition, SECTOR_SIZE};
use azl_formats::gpt::{self as fgpt, GptError, Header, Which};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Entries in the partition entry array (the UEFI minimum array is 16 KiB).
pub const ENTRY_COUNT: u32 = 128;
/// Bytes per entry.
pub const ENTRY_SIZE: u32 = 128;
/// Sectors of one entry array (32).
const ARRAY_SECTORS: u64 = (ENTRY_COUNT as u64 * ENTRY_SIZE as u64).div_ceil(SECTOR_SIZE);
/// Sectors the table needs at each end of the disk, besides LBA 0: a header
/// and an entry array (33).
pub const TABLE_SECTORS: u64 = 1 + ARRAY_SECTORS;
const HEADER_SIZE: u32 = 92;
const SIGNATURE: &[u8; 8] = b"EFI PART";
const REVISION_1_0: u32 = 0x0001_0000;

/// A partition as read from a GPT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptPartition {
    /// 1-based entry number (Linux's partition number: `/dev/vda<number>`).
    pub number: u32,
    pub name: String,
    /// On-disk byte order.
    pub type_guid: [u8; 16],
    /// On-disk byte order.
    pub part_guid: [u8; 16],
    /// Byte offset and size on the disk.
    pub offset: u64,
    pub size: u64,
}

/// A partition table as read from a disk image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptInfo {
    /// On-disk byte order.
    pub disk_guid: [u8; 16],
    /// Logical sector size the table was read with (512).
    pub sector_size: u64,
    /// Used entries, in entry order.
    pub partitions: Vec<GptPartition>,
    /// The copy they were read from: the primary, or the backup when the
    /// primary fails a check (as the device's stage 1 does).
    pub copy: Which,
}

/// What is wrong with a partition table read from disk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GptProblem {
    #[error("{size} bytes is too small for a GPT disk")]
    TooSmall { size: u64 },
    #[error(
        "not a GPT disk: no protective MBR (0xEE partition with the 0x55AA signature) in sector 0"
    )]
    NoProtectiveMbr,
    /// Neither copy passes the formats reader's checks.
    #[error("no valid GPT: primary: {primary}; backup: {backup}")]
    Unreadable { primary: GptError, backup: GptError },
    /// One copy fails a check (the other one was used).
    #[error("{which} GPT: {error}")]
    Copy { which: Which, error: GptError },
    #[error("primary GPT header: backup header LBA {says} is not the last sector ({last})")]
    BackupLba { says: u64, last: u64 },
    #[error("primary and backup GPT headers disagree on {0}")]
    Mismatch(&'static str),
}

/// Everything the table occupies, ready to be written at byte 0
/// (`head`: protective MBR, primary header, primary array) and at
/// `disk_size - tail.len()` (`tail`: backup array, backup header).
pub(crate) struct Encoded {
    pub head: Vec<u8>,
    pub tail: Vec<u8>,
}

/// Protective MBR (UEFI 2.10 §5.2.3): one 0xEE partition from LBA 1 over
/// the whole disk (capped at 2^32-1 sectors), disk signature 0.
fn protective_mbr(total_sectors: u64) -> Vec<u8> {
    let mut m = vec![0u8; 446];
    m.push(0x00); // not bootable
    m.extend_from_slice(&[0x00, 0x02, 0x00]); // CHS of LBA 1
    m.push(0xEE);
    m.extend_from_slice(&[0xFF, 0xFF, 0xFF]); // CHS: out of range
    m.extend_from_slice(&1u32.to_le_bytes());
    let size = u32::try_from(total_sectors.saturating_sub(1)).unwrap_or(u32::MAX);
    m.extend_from_slice(&size.to_le_bytes());
    m.resize(510, 0);
    m.extend_from_slice(&[0x55, 0xAA]);
    m
}

fn entry(p: &PlacedPartition) -> Result<Vec<u8>, DiskError> {
    let outside = || DiskError::Outside {
        partition: p.spec.name.clone(),
        offset: p.offset,
        size: p.size,
    };
    let first = p.offset / SECTOR_SIZE;
    let last = p
        .offset
        .checked_add(p.size)
        .map(|end| end / SECTOR_SIZE)
        .and_then(|end| end.checked_sub(1))
        .ok_or_else(outside)?;
    let name: Vec<u16> = p.spec.name.encode_utf16().collect();
    if name.len() > 36 {
        return Err(super::LayoutProblem::InvalidName(p.spec.name.clone()).into());
    }
    let mut e = Vec::with_capacity(ENTRY_SIZE as usize);
    e.extend_from_slice(&p.type_guid);
    e.extend_from_slice(&p.part_guid);
    e.extend_from_slice(&first.to_le_bytes());
    e.extend_from_slice(&last.to_le_bytes());
    e.extend_from_slice(&0u64.to_le_bytes()); // attributes
    for c in name {
        e.extend_from_slice(&c.to_le_bytes());
    }
    e.resize(ENTRY_SIZE as usize, 0);
    Ok(e)
}

struct HeaderFields {
    current: u64,
    backup: u64,
    first_usable: u64,
    last_usable: u64,
    disk_guid: [u8; 16],
    array_lba: u64,
    array_crc: u32,
}

/// The header sector; its CRC32 covers the 92 header bytes with the CRC
/// field (bytes 16..20) zero.
fn header(h: &HeaderFields) -> Vec<u8> {
    let mut before = Vec::with_capacity(16);
    before.extend_from_slice(SIGNATURE);
    before.extend_from_slice(&REVISION_1_0.to_le_bytes());
    before.extend_from_slice(&HEADER_SIZE.to_le_bytes());
    let mut after = Vec::with_capacity(HEADER_SIZE as usize - 20);
    after.extend_from_slice(&0u32.to_le_bytes()); // reserved
    for v in [h.current, h.backup, h.first_usable, h.last_usable] {
        after.extend_from_slice(&v.to_le_bytes());
    }
    after.extend_from_slice(&h.disk_guid);
    after.extend_from_slice(&h.array_lba.to_le_bytes());
    after.extend_from_slice(&ENTRY_COUNT.to_le_bytes());
    after.extend_from_slice(&ENTRY_SIZE.to_le_bytes());
    after.extend_from_slice(&h.array_crc.to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&before);
    crc.update(&[0; 4]);
    crc.update(&after);
    let mut b = before;
    b.extend_from_slice(&crc.finalize().to_le_bytes());
    b.extend_from_slice(&after);
    b.resize(SECTOR_SIZE as usize, 0);
    b
}

/// Encode the protective MBR and both GPTs for `placed`.
pub(crate) fn encode(placed: &Placed) -> Result<Encoded, DiskError> {
    if !placed.disk_size.is_multiple_of(SECTOR_SIZE) {
        return Err(DiskError::Overflow(
            "disk size is not a whole number of sectors",
        ));
    }
    let total = placed.disk_size / SECTOR_SIZE;
    if total < 2 * TABLE_SECTORS + 2 {
        return Err(DiskError::Overflow("disk too small for a GPT"));
    }
    let first_usable = 1 + TABLE_SECTORS;
    let last_usable = total - 1 - TABLE_SECTORS;
    if placed.partitions.len() > ENTRY_COUNT as usize {
        return Err(DiskError::Overflow("more than 128 partitions"));
    }
    let mut array = Vec::with_capacity((ARRAY_SECTORS * SECTOR_SIZE) as usize);
    for p in &placed.partitions {
        let end = p.offset.checked_add(p.size);
        let ok = p.offset % SECTOR_SIZE == 0
            && p.size % SECTOR_SIZE == 0
            && p.size > 0
            && p.offset / SECTOR_SIZE >= first_usable
            && matches!(end, Some(e) if e / SECTOR_SIZE <= last_usable + 1);
        if !ok {
            return Err(DiskError::Outside {
                partition: p.spec.name.clone(),
                offset: p.offset,
                size: p.size,
            });
        }
        array.extend_from_slice(&entry(p)?);
    }
    // The whole array (ENTRY_COUNT × ENTRY_SIZE = ARRAY_SECTORS sectors).
    array.resize((ARRAY_SECTORS * SECTOR_SIZE) as usize, 0);
    let array_crc = crc32fast::hash(&array);
    let mut fields = HeaderFields {
        current: 1,
        backup: total - 1,
        first_usable,
        last_usable,
        disk_guid: placed.disk_guid,
        array_lba: 2,
        array_crc,
    };
    let mut head = Vec::with_capacity(((1 + TABLE_SECTORS) * SECTOR_SIZE) as usize);
    head.extend_from_slice(&protective_mbr(total));
    head.extend_from_slice(&header(&fields));
    head.extend_from_slice(&array);
    fields.current = total - 1;
    fields.backup = 1;
    fields.array_lba = total - TABLE_SECTORS;
    let mut tail = Vec::with_capacity((TABLE_SECTORS * SECTOR_SIZE) as usize);
    tail.extend_from_slice(&array);
    tail.extend_from_slice(&header(&fields));
    Ok(Encoded { head, tail })
}

/// A partition table as read by [`read_table`]: the device's view, and
/// everything else wrong with the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptRead {
    /// What the device would use (see [`azl_formats::gpt::read`]).
    pub info: GptInfo,
    /// The used copy's entries as the formats reader returns them.
    pub entries: Vec<fgpt::Entry>,
    /// Problems that did not stop the table from being read: no protective
    /// MBR, a damaged copy, copies that disagree. Empty for a sound table.
    pub problems: Vec<GptProblem>,
}

/// `len` bytes at `offset` of `file` (fewer at its end).
fn read_upto(file: &File, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut got = 0usize;
    while let Some(rest) = buf.get_mut(got..) {
        if rest.is_empty() {
            break;
        }
        let at = offset.saturating_add(got as u64);
        match file.read_at(rest, at) {
            Ok(0) => break,
            Ok(n) => got = got.saturating_add(n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

/// One copy through the formats reader's checks: the header at `lba` and
/// its entry array.
fn read_copy(
    file: &File,
    lba: u64,
    sectors: u64,
) -> std::io::Result<Result<(Header, Vec<fgpt::Entry>), GptError>> {
    let sector = read_upto(file, lba.saturating_mul(SECTOR_SIZE), SECTOR_SIZE as usize)?;
    let header = match Header::parse(&sector, lba, sectors) {
        Ok(h) => h,
        Err(e) => return Ok(Err(e)),
    };
    let len = usize::try_from(header.array_bytes()).unwrap_or(usize::MAX);
    let array = read_upto(file, header.array_offset(), len)?;
    Ok(header.entries(&array).map(|entries| (header, entries)))
}

fn info(header: &Header, entries: &[fgpt::Entry], copy: Which) -> GptInfo {
    GptInfo {
        disk_guid: header.disk_guid,
        sector_size: SECTOR_SIZE,
        partitions: entries
            .iter()
            .map(|e| GptPartition {
                number: e.number,
                name: e.name.clone(),
                type_guid: e.type_guid,
                part_guid: e.part_guid,
                offset: e.offset(),
                size: e.size(),
            })
            .collect(),
        copy,
    }
}

/// What two valid copies disagree on, if anything.
fn disagreement(primary: &Header, backup: &Header, sectors: u64) -> Option<&'static str> {
    if primary.alternate_lba != backup.my_lba || backup.alternate_lba != primary.my_lba {
        Some("each other's location")
    } else if backup.disk_guid != primary.disk_guid {
        Some("the disk GUID")
    } else if (backup.first_usable, backup.last_usable)
        != (primary.first_usable, primary.last_usable)
    {
        Some("the usable area")
    } else if (backup.entry_count, backup.entry_size, backup.entries_crc)
        != (primary.entry_count, primary.entry_size, primary.entries_crc)
    {
        Some("the partition entries")
    } else if backup.my_lba != sectors.saturating_sub(1) {
        Some("the backup's location")
    } else {
        None
    }
}

/// Read the GPT of `file` (`len` bytes; `path` names it in errors) the way
/// the device does — [`azl_formats::gpt::read`]: the primary, else the
/// backup — and list what else is wrong: no protective MBR, the primary's
/// backup LBA not the last sector, the other copy damaged or different.
/// Fails only when no copy can be used (or on I/O errors).
pub fn read_table(path: &Path, file: &File, len: u64) -> Result<GptRead, DiskError> {
    let io = |source| DiskError::Read {
        path: path.to_path_buf(),
        source,
    };
    let gpt_err = |problem| DiskError::Gpt {
        path: path.to_path_buf(),
        problem,
    };
    let sectors = len / SECTOR_SIZE;
    if sectors < 3 {
        return Err(gpt_err(GptProblem::TooSmall { size: len }));
    }
    let g = fgpt::read(len, |offset, n| read_upto(file, offset, n)).map_err(|e| match e {
        fgpt::ReadError::Io(e) => io(e),
        fgpt::ReadError::Invalid { primary, backup } => {
            gpt_err(GptProblem::Unreadable { primary, backup })
        }
    })?;
    let mut problems = Vec::new();
    let mbr = read_upto(file, 0, SECTOR_SIZE as usize).map_err(io)?;
    let protective = mbr.get(510..512) == Some(&[0x55, 0xAA][..])
        && (0..4).any(|i| mbr.get(446 + 16 * i + 4) == Some(&0xEE));
    if !protective {
        problems.push(GptProblem::NoProtectiveMbr);
    }
    let last = sectors.saturating_sub(1);
    match g.copy {
        Which::Primary => {
            if g.header.alternate_lba != last {
                problems.push(GptProblem::BackupLba {
                    says: g.header.alternate_lba,
                    last,
                });
            }
            match read_copy(file, last, sectors).map_err(io)? {
                Err(error) => problems.push(GptProblem::Copy {
                    which: Which::Backup,
                    error,
                }),
                Ok((backup, _)) => {
                    if let Some(what) = disagreement(&g.header, &backup, sectors) {
                        problems.push(GptProblem::Mismatch(what));
                    }
                }
            }
        }
        Which::Backup => {
            if let Some(error) = g.primary_error.clone() {
                problems.push(GptProblem::Copy {
                    which: Which::Primary,
                    error,
                });
            }
        }
    }
    Ok(GptRead {
        info: info(&g.header, &g.entries, g.copy),
        entries: g.entries,
        problems,
    })
}

/// Open a disk image for reading: non-blocking (a FIFO does not hang the
/// open), then `fstat` on the descriptor — only a regular file is read.
/// Returns the file and its size.
pub fn open_image(path: &Path) -> Result<(File, u64), DiskError> {
    azl_fileread::open(path).map_err(|e| match e {
        azl_fileread::ReadError::NotRegular { path, kind } => DiskError::NotRegular { path, kind },
        azl_fileread::ReadError::Io { path, err } => DiskError::Read { path, source: err },
        azl_fileread::ReadError::TooLarge { path, .. } => DiskError::Read {
            path,
            source: std::io::Error::from(std::io::ErrorKind::FileTooLarge),
        },
    })
}

/// Read the GPT of the disk image at `path` strictly: [`read_table`], and
/// any problem it lists is an error — protective MBR, both headers and
/// entry arrays valid under the formats reader's rules (signature, CRC32s,
/// locations, usable range, entries inside it and not overlapping) and in
/// agreement. Assumes 512-byte sectors (all images imagegen makes).
pub fn read_gpt(path: &Path) -> Result<GptInfo, DiskError> {
    let (file, len) = open_image(path)?;
    let t = read_table(path, &file, len)?;
    match t.problems.into_iter().next() {
        Some(problem) => Err(DiskError::Gpt {
            path: path.to_path_buf(),
            problem,
        }),
        None => Ok(t.info),
    }
}
