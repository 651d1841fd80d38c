//! The partition table: protective MBR, primary GPT (LBA 1–33) and backup
//! GPT (the last 33 sectors), as UEFI 2.10 §5 specifies, with 512-byte
//! sectors, 128 entries of 128 bytes, partition names in UTF-16LE (Linux
//! shows them as `PARTNAME=` in uevents) and CRC32 (`crc32fast`) over each
//! header and entry array. [`read_gpt`] reads a table back and checks all
//! of it.
//!
//! Written here rather than with the `gpt` crate (4.1): its reader panics
//! (`assert_eq!`) on an entry size other than 128 and does not check the
//! entry-array CRC, which `imagegen inspect` must do on images it did not
//! make, and its writer draws random GUIDs wherever a caller does not
//! override one. The format is two small structures and a CRC; the tests
//! cross-check the result with `sgdisk -v` and `sfdisk --json`.
use super::{DiskError, Placed, PlacedPartition, SECTOR_SIZE};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
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
/// Longest entry array [`read_gpt`] accepts (bytes), against hostile headers.
const MAX_ARRAY_BYTES: u64 = 1 << 20;

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
    #[error("{which} GPT header at byte {offset}: {what}")]
    Header {
        which: &'static str,
        offset: u64,
        what: String,
    },
    #[error("{which} GPT header at byte {offset}: header CRC32 is {stored:#010x}, computed {computed:#010x}")]
    HeaderCrc {
        which: &'static str,
        offset: u64,
        stored: u32,
        computed: u32,
    },
    #[error("{which} GPT partition entries at byte {offset}: CRC32 is {stored:#010x}, computed {computed:#010x}")]
    ArrayCrc {
        which: &'static str,
        offset: u64,
        stored: u32,
        computed: u32,
    },
    #[error("primary and backup GPT headers disagree on {0}")]
    Mismatch(&'static str),
    #[error("partition entry {number}: {what}")]
    Entry { number: u32, what: String },
}

/// Everything the table occupies, ready to be written at byte 0
/// (`head`: protective MBR, primary header, primary array) and at
/// `disk_size - tail.len()` (`tail`: backup array, backup header).
pub(crate) struct Encoded {
    pub head: Vec<u8>,
    pub tail: Vec<u8>,
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
fn get_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn get_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}
fn get_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}
fn get_guid(b: &[u8], at: usize) -> [u8; 16] {
    let mut g = [0u8; 16];
    g.copy_from_slice(&b[at..at + 16]);
    g
}

/// Protective MBR (UEFI 2.10 §5.2.3): one 0xEE partition from LBA 1 over
/// the whole disk (capped at 2^32-1 sectors), disk signature 0.
fn protective_mbr(total_sectors: u64) -> [u8; 512] {
    let mut m = [0u8; 512];
    let e = 446;
    m[e] = 0x00; // not bootable
    m[e + 1..e + 4].copy_from_slice(&[0x00, 0x02, 0x00]); // CHS of LBA 1
    m[e + 4] = 0xEE;
    m[e + 5..e + 8].copy_from_slice(&[0xFF, 0xFF, 0xFF]); // CHS: out of range
    put_u32(&mut m, e + 8, 1);
    let size = u32::try_from(total_sectors - 1).unwrap_or(u32::MAX);
    put_u32(&mut m, e + 12, size);
    m[510] = 0x55;
    m[511] = 0xAA;
    m
}

fn entry(p: &PlacedPartition) -> Result<[u8; ENTRY_SIZE as usize], DiskError> {
    let mut e = [0u8; ENTRY_SIZE as usize];
    e[0..16].copy_from_slice(&p.type_guid);
    e[16..32].copy_from_slice(&p.part_guid);
    let first = p.offset / SECTOR_SIZE;
    let last = (p.offset + p.size) / SECTOR_SIZE - 1;
    put_u64(&mut e, 32, first);
    put_u64(&mut e, 40, last);
    // attributes (48..56) stay 0
    let name: Vec<u16> = p.spec.name.encode_utf16().collect();
    if name.len() > 36 {
        return Err(super::LayoutProblem::InvalidName(p.spec.name.clone()).into());
    }
    for (i, c) in name.iter().enumerate() {
        e[56 + 2 * i..58 + 2 * i].copy_from_slice(&c.to_le_bytes());
    }
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

fn header(h: &HeaderFields) -> [u8; 512] {
    let mut b = [0u8; 512];
    b[0..8].copy_from_slice(SIGNATURE);
    put_u32(&mut b, 8, REVISION_1_0);
    put_u32(&mut b, 12, HEADER_SIZE);
    put_u64(&mut b, 24, h.current);
    put_u64(&mut b, 32, h.backup);
    put_u64(&mut b, 40, h.first_usable);
    put_u64(&mut b, 48, h.last_usable);
    b[56..72].copy_from_slice(&h.disk_guid);
    put_u64(&mut b, 72, h.array_lba);
    put_u32(&mut b, 80, ENTRY_COUNT);
    put_u32(&mut b, 84, ENTRY_SIZE);
    put_u32(&mut b, 88, h.array_crc);
    let crc = crc32fast::hash(&b[..HEADER_SIZE as usize]);
    put_u32(&mut b, 16, crc);
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
    let mut array = vec![0u8; (ARRAY_SECTORS * SECTOR_SIZE) as usize];
    for (i, p) in placed.partitions.iter().enumerate() {
        let end = p.offset.checked_add(p.size);
        let ok = p.offset % SECTOR_SIZE == 0
            && p.size % SECTOR_SIZE == 0
            && p.size > 0
            && p.offset / SECTOR_SIZE >= first_usable
            && matches!(end, Some(e) if e / SECTOR_SIZE - 1 <= last_usable);
        if !ok {
            return Err(DiskError::Outside {
                partition: p.spec.name.clone(),
                offset: p.offset,
                size: p.size,
            });
        }
        let at = i * ENTRY_SIZE as usize;
        array[at..at + ENTRY_SIZE as usize].copy_from_slice(&entry(p)?);
    }
    let array_crc = crc32fast::hash(&array[..(ENTRY_COUNT * ENTRY_SIZE) as usize]);
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

/// A header as read, already checked on its own.
struct ReadHeader {
    current: u64,
    backup: u64,
    first_usable: u64,
    last_usable: u64,
    disk_guid: [u8; 16],
    entries: Vec<u8>,
    entry_count: u32,
    entry_size: u32,
    array_crc: u32,
}

fn read_at<R: Read + Seek>(r: &mut R, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    r.seek(SeekFrom::Start(offset))?;
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf)?;
    Ok(buf)
}

fn read_header<R: Read + Seek>(
    r: &mut R,
    which: &'static str,
    lba: u64,
    total: u64,
) -> Result<Result<ReadHeader, GptProblem>, std::io::Error> {
    let offset = lba * SECTOR_SIZE;
    let bad = |what: String| GptProblem::Header {
        which,
        offset,
        what,
    };
    let b = read_at(r, offset, SECTOR_SIZE as usize)?;
    if &b[0..8] != SIGNATURE {
        return Ok(Err(bad("no \"EFI PART\" signature".into())));
    }
    let size = get_u32(&b, 12);
    if !(HEADER_SIZE..=SECTOR_SIZE as u32).contains(&size) {
        return Ok(Err(bad(format!("header size {size} is out of range"))));
    }
    let mut h = b[..size as usize].to_vec();
    let stored = get_u32(&h, 16);
    h[16..20].fill(0);
    let computed = crc32fast::hash(&h);
    if stored != computed {
        return Ok(Err(GptProblem::HeaderCrc {
            which,
            offset,
            stored,
            computed,
        }));
    }
    let revision = get_u32(&b, 8);
    if revision >> 16 != 1 {
        return Ok(Err(bad(format!("unsupported revision {revision:#010x}"))));
    }
    let current = get_u64(&b, 24);
    if current != lba {
        return Ok(Err(bad(format!("says it is at LBA {current}, not {lba}"))));
    }
    let backup = get_u64(&b, 32);
    let first_usable = get_u64(&b, 40);
    let last_usable = get_u64(&b, 48);
    if first_usable > last_usable || last_usable >= total {
        return Ok(Err(bad(format!(
            "usable LBAs {first_usable}..={last_usable} do not fit a disk of {total} sectors"
        ))));
    }
    let array_lba = get_u64(&b, 72);
    let entry_count = get_u32(&b, 80);
    let entry_size = get_u32(&b, 84);
    if entry_size < 128 || !entry_size.is_power_of_two() {
        return Ok(Err(bad(format!(
            "partition entry size {entry_size} is invalid"
        ))));
    }
    let array_len = u64::from(entry_count) * u64::from(entry_size);
    if array_len > MAX_ARRAY_BYTES {
        return Ok(Err(bad(format!(
            "{entry_count} entries of {entry_size} bytes exceed {MAX_ARRAY_BYTES} bytes"
        ))));
    }
    let array_end = array_lba
        .checked_mul(SECTOR_SIZE)
        .and_then(|o| o.checked_add(array_len));
    if array_lba == 0 || array_end.is_none_or(|e| e > total * SECTOR_SIZE) {
        return Ok(Err(bad(format!(
            "partition entries at LBA {array_lba} lie outside the disk"
        ))));
    }
    let array_offset = array_lba * SECTOR_SIZE;
    let entries = read_at(r, array_offset, array_len as usize)?;
    let stored = get_u32(&b, 88);
    let computed = crc32fast::hash(&entries);
    if stored != computed {
        return Ok(Err(GptProblem::ArrayCrc {
            which,
            offset: array_offset,
            stored,
            computed,
        }));
    }
    Ok(Ok(ReadHeader {
        current,
        backup,
        first_usable,
        last_usable,
        disk_guid: get_guid(&b, 56),
        entries,
        entry_count,
        entry_size,
        array_crc: stored,
    }))
}

fn parse_entries(h: &ReadHeader) -> Result<Vec<GptPartition>, GptProblem> {
    let mut out: Vec<GptPartition> = Vec::new();
    for i in 0..h.entry_count {
        let number = i + 1;
        let at = i as usize * h.entry_size as usize;
        let e = &h.entries[at..at + 128];
        let type_guid = get_guid(e, 0);
        if type_guid == [0u8; 16] {
            continue;
        }
        let bad = |what: String| GptProblem::Entry { number, what };
        let first = get_u64(e, 32);
        let last = get_u64(e, 40);
        if first > last || first < h.first_usable || last > h.last_usable {
            return Err(bad(format!(
                "LBAs {first}..={last} lie outside the usable area {}..={}",
                h.first_usable, h.last_usable
            )));
        }
        if let Some(o) = out.iter().find(|o| {
            let (of, ol) = (
                o.offset / SECTOR_SIZE,
                (o.offset + o.size) / SECTOR_SIZE - 1,
            );
            first <= ol && of <= last
        }) {
            return Err(bad(format!("overlaps partition entry {}", o.number)));
        }
        let units: Vec<u16> = (0..36)
            .map(|k| get_u16(e, 56 + 2 * k))
            .take_while(|&c| c != 0)
            .collect();
        let name = String::from_utf16(&units)
            .map_err(|_| bad("partition name is not valid UTF-16".into()))?;
        out.push(GptPartition {
            number,
            name,
            type_guid,
            part_guid: get_guid(e, 16),
            offset: first * SECTOR_SIZE,
            size: (last - first + 1) * SECTOR_SIZE,
        });
    }
    Ok(out)
}

/// Read and check a GPT from any seekable reader of `len` bytes.
pub(crate) fn decode<R: Read + Seek>(
    r: &mut R,
    len: u64,
) -> Result<Result<GptInfo, GptProblem>, std::io::Error> {
    let total = len / SECTOR_SIZE;
    if total < 2 * TABLE_SECTORS + 2 {
        return Ok(Err(GptProblem::TooSmall { size: len }));
    }
    let mbr = read_at(r, 0, SECTOR_SIZE as usize)?;
    let protective = mbr[510..512] == [0x55, 0xAA] && (0..4).any(|i| mbr[446 + 16 * i + 4] == 0xEE);
    if !protective {
        return Ok(Err(GptProblem::NoProtectiveMbr));
    }
    let primary = match read_header(r, "primary", 1, total)? {
        Ok(h) => h,
        Err(p) => return Ok(Err(p)),
    };
    if primary.backup != total - 1 {
        return Ok(Err(GptProblem::Header {
            which: "primary",
            offset: SECTOR_SIZE,
            what: format!(
                "backup header LBA {} is not the last sector ({})",
                primary.backup,
                total - 1
            ),
        }));
    }
    let backup = match read_header(r, "backup", primary.backup, total)? {
        Ok(h) => h,
        Err(p) => return Ok(Err(p)),
    };
    let mismatch = if backup.backup != primary.current {
        Some("each other's location")
    } else if backup.disk_guid != primary.disk_guid {
        Some("the disk GUID")
    } else if (backup.first_usable, backup.last_usable)
        != (primary.first_usable, primary.last_usable)
    {
        Some("the usable area")
    } else if (backup.entry_count, backup.entry_size, backup.array_crc)
        != (primary.entry_count, primary.entry_size, primary.array_crc)
    {
        Some("the partition entries")
    } else {
        None
    };
    if let Some(m) = mismatch {
        return Ok(Err(GptProblem::Mismatch(m)));
    }
    Ok(parse_entries(&primary).map(|partitions| GptInfo {
        disk_guid: primary.disk_guid,
        sector_size: SECTOR_SIZE,
        partitions,
    }))
}

/// Read the GPT of the disk image at `path`, checking the protective MBR,
/// both headers and entry arrays (signature, CRC32s, locations) and that
/// they agree, and that partitions lie in the usable area without
/// overlapping. Assumes 512-byte sectors (all images imagegen makes).
pub fn read_gpt(path: &Path) -> Result<GptInfo, DiskError> {
    let io = |source| DiskError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut f = File::open(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    decode(&mut f, len)
        .map_err(io)?
        .map_err(|problem| DiskError::Gpt {
            path: path.to_path_buf(),
            problem,
        })
}
