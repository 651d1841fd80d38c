//! Reading a GUID partition table (UEFI 2.10 §5.3) from hostile bytes, for
//! the device: stage 1 reads the table itself instead of trusting the
//! kernel's view, so it can boot from the backup GPT when the primary is
//! damaged (Linux ignores the backup unless `gpt` is on the cmdline) and can
//! see every entry, including a second one with the root slot's name.
//!
//! 512-byte logical sectors. Checked: header signature, size and CRC32, its
//! own LBA, the usable range against the header and entry array, the entry
//! array's CRC32, entry size (≥ 128, multiple of 8) and count (array at
//! most [`MAX_ARRAY_BYTES`]), and that used entries lie in the usable range
//! and do not overlap. Every allocation is bounded by the bytes handed in.
//!
//! Hand-written (with a table-free CRC32) rather than with the `gpt` crate:
//! that crate needs std and panics on an entry size other than 128; this
//! parser must be `no_std`, small enough for the device's init, and total on
//! any input. The host writer is `imagegen`'s; tests cross-check both with
//! `sgdisk`.
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Logical sector size.
pub const SECTOR: u64 = 512;
/// Longest entry array accepted (bytes), against hostile headers.
pub const MAX_ARRAY_BYTES: u64 = 1 << 20;
const SIGNATURE: &[u8; 8] = b"EFI PART";
const MIN_HEADER: u32 = 92;
const MIN_ENTRY: u32 = 128;

/// Which copy of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Primary,
    Backup,
}

impl fmt::Display for Which {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Which::Primary => "primary",
            Which::Backup => "backup",
        })
    }
}

/// What is wrong with a GPT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GptError {
    /// Fewer bytes than a header sector / the entry array.
    Short {
        what: &'static str,
        need: u64,
        got: u64,
    },
    DiskTooSmall {
        sectors: u64,
    },
    Signature {
        lba: u64,
    },
    HeaderSize {
        lba: u64,
        size: u32,
    },
    HeaderCrc {
        lba: u64,
        stored: u32,
        computed: u32,
    },
    /// The header says it is at another LBA than it was read from.
    MyLba {
        lba: u64,
        says: u64,
    },
    /// Usable range overlapping the header or entry array, or off the disk.
    UsableRange {
        lba: u64,
        first: u64,
        last: u64,
    },
    EntrySize {
        lba: u64,
        size: u32,
    },
    EntryCount {
        lba: u64,
        count: u32,
        size: u32,
    },
    ArrayPlace {
        lba: u64,
        array_lba: u64,
    },
    ArrayCrc {
        lba: u64,
        stored: u32,
        computed: u32,
    },
    /// A used entry outside the usable range or with last < first.
    EntryRange {
        number: u32,
        first: u64,
        last: u64,
    },
    Overlap {
        a: u32,
        b: u32,
    },
    /// Two used entries with the same name.
    DuplicateName {
        name: String,
        first: u32,
        second: u32,
    },
}

impl fmt::Display for GptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Short { what, need, got } => {
                write!(f, "{what}: need {need} bytes, have {got}")
            }
            Self::DiskTooSmall { sectors } => {
                write!(f, "disk of {sectors} sectors is too small for a GPT")
            }
            Self::Signature { lba } => write!(f, "no GPT header signature at LBA {lba}"),
            Self::HeaderSize { lba, size } => {
                write!(f, "GPT header at LBA {lba}: header size {size} is invalid")
            }
            Self::HeaderCrc {
                lba,
                stored,
                computed,
            } => write!(
                f,
                "GPT header at LBA {lba}: CRC {stored:#010x}, computed {computed:#010x}"
            ),
            Self::MyLba { lba, says } => {
                write!(f, "GPT header at LBA {lba} says it is at LBA {says}")
            }
            Self::UsableRange { lba, first, last } => write!(
                f,
                "GPT header at LBA {lba}: usable LBAs {first}..={last} overlap the table or leave the disk"
            ),
            Self::EntrySize { lba, size } => {
                write!(f, "GPT header at LBA {lba}: entry size {size} is invalid")
            }
            Self::EntryCount { lba, count, size } => write!(
                f,
                "GPT header at LBA {lba}: {count} entries of {size} bytes is too many"
            ),
            Self::ArrayPlace { lba, array_lba } => write!(
                f,
                "GPT header at LBA {lba}: entry array at LBA {array_lba} overlaps the header, the usable range or leaves the disk"
            ),
            Self::ArrayCrc {
                lba,
                stored,
                computed,
            } => write!(
                f,
                "GPT entries of the header at LBA {lba}: CRC {stored:#010x}, computed {computed:#010x}"
            ),
            Self::EntryRange {
                number,
                first,
                last,
            } => write!(
                f,
                "GPT entry {number}: LBAs {first}..={last} are outside the usable range"
            ),
            Self::Overlap { a, b } => write!(f, "GPT entries {a} and {b} overlap"),
            Self::DuplicateName {
                name,
                first,
                second,
            } => write!(
                f,
                "GPT entries {first} and {second} are both named {name:?}"
            ),
        }
    }
}

/// CRC-32 (IEEE 802.3, reflected, as UEFI uses), bitwise: small code over
/// speed — the device checksums 16 KiB once per boot.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

fn guid_at(b: &[u8], at: usize) -> [u8; 16] {
    let mut g = [0u8; 16];
    if let Some(s) = b.get(at..at + 16) {
        g.copy_from_slice(s);
    }
    g
}

/// A GPT header that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub my_lba: u64,
    pub alternate_lba: u64,
    pub first_usable: u64,
    pub last_usable: u64,
    /// On-disk byte order.
    pub disk_guid: [u8; 16],
    pub entries_lba: u64,
    pub entry_count: u32,
    pub entry_size: u32,
    pub entries_crc: u32,
}

impl Header {
    /// Parse and check the header sector read at `lba` of a disk of
    /// `disk_sectors` sectors.
    pub fn parse(sector: &[u8], lba: u64, disk_sectors: u64) -> Result<Header, GptError> {
        if sector.len() < SECTOR as usize {
            return Err(GptError::Short {
                what: "GPT header sector",
                need: SECTOR,
                got: sector.len() as u64,
            });
        }
        if disk_sectors < 3 {
            return Err(GptError::DiskTooSmall {
                sectors: disk_sectors,
            });
        }
        if sector.get(..8) != Some(&SIGNATURE[..]) {
            return Err(GptError::Signature { lba });
        }
        let size = u32_at(sector, 12);
        if size < MIN_HEADER || u64::from(size) > SECTOR {
            return Err(GptError::HeaderSize { lba, size });
        }
        let stored = u32_at(sector, 16);
        let mut copy = [0u8; SECTOR as usize];
        copy.copy_from_slice(
            sector
                .get(..SECTOR as usize)
                .unwrap_or(&[0; SECTOR as usize]),
        );
        if let Some(s) = copy.get_mut(16..20) {
            s.fill(0);
        }
        let computed = crc32(copy.get(..size as usize).unwrap_or(&[]));
        if stored != computed {
            return Err(GptError::HeaderCrc {
                lba,
                stored,
                computed,
            });
        }
        let h = Header {
            my_lba: u64_at(sector, 24),
            alternate_lba: u64_at(sector, 32),
            first_usable: u64_at(sector, 40),
            last_usable: u64_at(sector, 48),
            disk_guid: guid_at(sector, 56),
            entries_lba: u64_at(sector, 72),
            entry_count: u32_at(sector, 80),
            entry_size: u32_at(sector, 84),
            entries_crc: u32_at(sector, 88),
        };
        if h.my_lba != lba {
            return Err(GptError::MyLba {
                lba,
                says: h.my_lba,
            });
        }
        if h.entry_size < MIN_ENTRY || !h.entry_size.is_multiple_of(8) {
            return Err(GptError::EntrySize {
                lba,
                size: h.entry_size,
            });
        }
        let array_bytes = h.array_bytes();
        if array_bytes > MAX_ARRAY_BYTES || h.entry_count == 0 {
            return Err(GptError::EntryCount {
                lba,
                count: h.entry_count,
                size: h.entry_size,
            });
        }
        let array_end = h.entries_lba.saturating_add(array_bytes.div_ceil(SECTOR)); // exclusive
                                                                                    // The usable range: after LBA 1 (primary) and before the backup
                                                                                    // header; neither the header nor the entry array inside it.
        let usable_ok = h.first_usable <= h.last_usable
            && h.first_usable > 1
            && h.last_usable < disk_sectors - 1
            && !(h.first_usable..=h.last_usable).contains(&lba);
        if !usable_ok {
            return Err(GptError::UsableRange {
                lba,
                first: h.first_usable,
                last: h.last_usable,
            });
        }
        let array_ok = h.entries_lba > 1
            && array_end <= disk_sectors
            && (array_end <= h.first_usable || h.entries_lba > h.last_usable)
            && !(h.entries_lba..array_end).contains(&lba);
        if !array_ok {
            return Err(GptError::ArrayPlace {
                lba,
                array_lba: h.entries_lba,
            });
        }
        Ok(h)
    }

    /// Bytes of the entry array (≤ [`MAX_ARRAY_BYTES`] once parsed).
    pub fn array_bytes(&self) -> u64 {
        u64::from(self.entry_count) * u64::from(self.entry_size)
    }

    /// Byte offset of the entry array on the disk.
    pub fn array_offset(&self) -> u64 {
        self.entries_lba.saturating_mul(SECTOR)
    }

    /// Parse and check the entry array read at [`Self::array_offset`]:
    /// the used entries, in entry order.
    pub fn entries(&self, array: &[u8]) -> Result<Vec<Entry>, GptError> {
        let len = self.array_bytes();
        let Some(array) = array.get(..len as usize) else {
            return Err(GptError::Short {
                what: "GPT entry array",
                need: len,
                got: array.len() as u64,
            });
        };
        let computed = crc32(array);
        if computed != self.entries_crc {
            return Err(GptError::ArrayCrc {
                lba: self.my_lba,
                stored: self.entries_crc,
                computed,
            });
        }
        let mut out = Vec::new();
        for (i, e) in array.chunks_exact(self.entry_size as usize).enumerate() {
            let type_guid = guid_at(e, 0);
            if type_guid == [0; 16] {
                continue;
            }
            let number = i as u32 + 1;
            let first_lba = u64_at(e, 32);
            let last_lba = u64_at(e, 40);
            if first_lba > last_lba || first_lba < self.first_usable || last_lba > self.last_usable
            {
                return Err(GptError::EntryRange {
                    number,
                    first: first_lba,
                    last: last_lba,
                });
            }
            let units = e
                .get(56..128)
                .unwrap_or(&[])
                .chunks_exact(2)
                .map(|c| {
                    u16::from_le_bytes([
                        c.first().copied().unwrap_or(0),
                        c.get(1).copied().unwrap_or(0),
                    ])
                })
                .take_while(|&u| u != 0);
            let name = char::decode_utf16(units)
                .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect();
            out.push(Entry {
                number,
                type_guid,
                part_guid: guid_at(e, 16),
                first_lba,
                last_lba,
                attributes: u64_at(e, 48),
                name,
            });
        }
        // Overlaps: sorted by first LBA, each must end before the next.
        let mut order: Vec<&Entry> = out.iter().collect();
        order.sort_by_key(|e| e.first_lba);
        for w in order.windows(2) {
            if let [a, b] = w {
                if b.first_lba <= a.last_lba {
                    return Err(GptError::Overlap {
                        a: a.number,
                        b: b.number,
                    });
                }
            }
        }
        Ok(out)
    }
}

/// A used partition entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1-based entry number (Linux's partition number).
    pub number: u32,
    /// On-disk byte order.
    pub type_guid: [u8; 16],
    /// On-disk byte order.
    pub part_guid: [u8; 16],
    pub first_lba: u64,
    /// Inclusive.
    pub last_lba: u64,
    pub attributes: u64,
    /// Decoded from UTF-16LE (unpaired surrogates become U+FFFD).
    pub name: String,
}

impl Entry {
    /// Byte offset on the disk.
    pub fn offset(&self) -> u64 {
        self.first_lba.saturating_mul(SECTOR)
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        (self.last_lba - self.first_lba + 1).saturating_mul(SECTOR)
    }
}

/// A table read from a disk, and which copy it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpt {
    pub header: Header,
    pub copy: Which,
    pub entries: Vec<Entry>,
    /// Why the primary was not used, when `copy` is the backup.
    pub primary_error: Option<GptError>,
}

impl Gpt {
    /// The one used entry named `name`: `None` if there is none, an error
    /// naming both entries if there are two.
    pub fn unique(&self, name: &str) -> Result<Option<&Entry>, GptError> {
        let mut found: Option<&Entry> = None;
        for e in self.entries.iter().filter(|e| e.name == name) {
            if let Some(first) = found {
                return Err(GptError::DuplicateName {
                    name: name.into(),
                    first: first.number,
                    second: e.number,
                });
            }
            found = Some(e);
        }
        Ok(found)
    }
}

/// Why no table could be read: an I/O error, or both copies bad.
#[derive(Debug)]
pub enum ReadError<E> {
    Io(E),
    Invalid { primary: GptError, backup: GptError },
}

/// Read the GPT of a disk of `disk_bytes` bytes through `read(offset, len)`:
/// the primary (LBA 1), or the backup (last LBA) when the primary fails any
/// check. `read` is only asked for at most one sector or
/// [`MAX_ARRAY_BYTES`] at a time.
pub fn read<E>(
    disk_bytes: u64,
    mut read: impl FnMut(u64, usize) -> Result<Vec<u8>, E>,
) -> Result<Gpt, ReadError<E>> {
    let sectors = disk_bytes / SECTOR;
    let mut one = |lba: u64| -> Result<Result<(Header, Vec<Entry>), GptError>, E> {
        let sector = read(lba.saturating_mul(SECTOR), SECTOR as usize)?;
        let header = match Header::parse(&sector, lba, sectors) {
            Ok(h) => h,
            Err(e) => return Ok(Err(e)),
        };
        let array = read(header.array_offset(), header.array_bytes() as usize)?;
        Ok(header.entries(&array).map(|entries| (header, entries)))
    };
    let primary = match one(1).map_err(ReadError::Io)? {
        Ok((header, entries)) => {
            return Ok(Gpt {
                header,
                copy: Which::Primary,
                entries,
                primary_error: None,
            })
        }
        Err(e) => e,
    };
    match one(sectors.saturating_sub(1)).map_err(ReadError::Io)? {
        Ok((header, entries)) => Ok(Gpt {
            header,
            copy: Which::Backup,
            entries,
            primary_error: Some(primary),
        }),
        Err(backup) => Err(ReadError::Invalid { primary, backup }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    extern crate std;
    use super::*;
    use std::process::Command;

    const DISK: u64 = 8 << 20;

    /// A disk written by sgdisk (gdisk package) with the given `-n/-c` args.
    fn sgdisk(args: &[&str]) -> Vec<u8> {
        static N: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(std::format!("azl-gpt-{}-{n}", std::process::id()));
        std::fs::write(&dir, std::vec![0u8; DISK as usize]).unwrap();
        let out = Command::new("sgdisk")
            .arg("-o")
            .args(args)
            .arg(&dir)
            .output()
            .expect("sgdisk (Debian package gdisk) must be installed for this test");
        assert!(out.status.success(), "sgdisk: {out:?}");
        let disk = std::fs::read(&dir).unwrap();
        let _ = std::fs::remove_file(&dir);
        disk
    }

    fn standard() -> Vec<u8> {
        sgdisk(&[
            "-n",
            "1:2048:4095",
            "-c",
            "1:boot",
            "-n",
            "2:4096:8191",
            "-c",
            "2:root-a",
            "-n",
            "3:8192:12287",
            "-c",
            "3:root-b",
        ])
    }

    fn parse(disk: &[u8]) -> Result<Gpt, ReadError<()>> {
        read(disk.len() as u64, |off, len| {
            let (o, l) = (off as usize, len);
            disk.get(o..o + l).map(<[u8]>::to_vec).ok_or(())
        })
    }

    fn last_lba() -> usize {
        (DISK / SECTOR - 1) as usize
    }

    /// Recompute the header CRC of the header at `lba` after an edit.
    fn fix_header(disk: &mut [u8], lba: usize) {
        let h = &mut disk[lba * 512..lba * 512 + 512];
        h[16..20].fill(0);
        let size = u32_at(h, 12) as usize;
        let c = crc32(&h[..size]);
        h[16..20].copy_from_slice(&c.to_le_bytes());
    }

    /// Recompute both entry-array CRCs and header CRCs.
    fn fix_all(disk: &mut [u8]) {
        for lba in [1, last_lba()] {
            let h = &disk[lba * 512..];
            let at = u64_at(h, 72) as usize * 512;
            let len = u32_at(h, 80) as usize * u32_at(h, 84) as usize;
            let c = crc32(&disk[at..at + len]);
            disk[lba * 512 + 88..lba * 512 + 92].copy_from_slice(&c.to_le_bytes());
            fix_header(disk, lba);
        }
    }

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn reads_a_table_written_by_sgdisk() {
        let g = parse(&standard()).unwrap();
        assert_eq!(g.copy, Which::Primary);
        let names: Vec<&str> = g.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["boot", "root-a", "root-b"]);
        let root = g.unique("root-a").unwrap().unwrap();
        assert_eq!(
            (root.number, root.offset(), root.size()),
            (2, 4096 * 512, 4096 * 512)
        );
        assert_eq!(g.unique("data").unwrap(), None);
    }

    #[test]
    fn zeroed_primary_header_falls_back_to_the_backup() {
        let mut d = standard();
        d[512..1024].fill(0);
        let g = parse(&d).unwrap();
        assert_eq!(g.copy, Which::Backup);
        assert_eq!(g.header.my_lba, last_lba() as u64);
        assert_eq!(g.primary_error, Some(GptError::Signature { lba: 1 }));
        assert_eq!(g.entries.len(), 3);
    }

    #[test]
    fn flipped_header_or_array_byte_is_a_crc_error() {
        let mut d = standard();
        d[512 + 40] ^= 1;
        let g = parse(&d).unwrap();
        assert!(
            matches!(g.primary_error, Some(GptError::HeaderCrc { lba: 1, .. })),
            "{g:?}"
        );
        let mut d = standard();
        d[1024 + 130] ^= 1;
        let g = parse(&d).unwrap();
        assert!(
            matches!(g.primary_error, Some(GptError::ArrayCrc { lba: 1, .. })),
            "{g:?}"
        );
        assert_eq!(g.copy, Which::Backup);
    }

    #[test]
    fn both_copies_bad_is_an_error_naming_both() {
        let mut d = standard();
        d[512..1024].fill(0);
        let l = last_lba();
        d[l * 512..l * 512 + 512].fill(0);
        let Err(ReadError::Invalid { primary, backup }) = parse(&d) else {
            panic!("must fail");
        };
        assert_eq!(primary, GptError::Signature { lba: 1 });
        assert_eq!(backup, GptError::Signature { lba: l as u64 });
    }

    #[test]
    fn duplicate_names_are_refused_naming_both_entries() {
        let mut args = std::vec![
            "-n",
            "2:4096:8191",
            "-c",
            "2:root-a",
            "-n",
            "10:8192:12287",
            "-c",
            "10:root-a",
        ];
        args.extend(["-n", "1:2048:4095", "-c", "1:boot"]);
        let g = parse(&sgdisk(&args)).unwrap();
        assert_eq!(
            g.unique("root-a"),
            Err(GptError::DuplicateName {
                name: "root-a".into(),
                first: 2,
                second: 10
            })
        );
        assert!(g.unique("boot").unwrap().is_some());
    }

    #[test]
    fn hostile_headers_are_refused() {
        let set32 = |d: &mut Vec<u8>, at: usize, v: u32| {
            d[512 + at..512 + at + 4].copy_from_slice(&v.to_le_bytes());
            fix_header(d, 1);
        };
        let set64 = |d: &mut Vec<u8>, at: usize, v: u64| {
            d[512 + at..512 + at + 8].copy_from_slice(&v.to_le_bytes());
            fix_header(d, 1);
        };
        let primary = |d: &[u8]| match parse(d) {
            Ok(g) => g.primary_error,
            Err(ReadError::Invalid { primary, .. }) => Some(primary),
            Err(ReadError::Io(())) => panic!("io"),
        };
        let mut d = standard();
        set32(&mut d, 80, u32::MAX);
        assert!(matches!(primary(&d), Some(GptError::EntryCount { .. })));
        let mut d = standard();
        set32(&mut d, 84, 64);
        assert!(matches!(
            primary(&d),
            Some(GptError::EntrySize { size: 64, .. })
        ));
        let mut d = standard();
        d[512 + 12..512 + 16].copy_from_slice(&4096u32.to_le_bytes()); // checked before the CRC
        assert!(matches!(primary(&d), Some(GptError::HeaderSize { .. })));
        // first usable LBA on the entry array.
        let mut d = standard();
        set64(&mut d, 40, 2);
        assert!(matches!(primary(&d), Some(GptError::ArrayPlace { .. })));
        let mut d = standard();
        set64(&mut d, 40, 1);
        assert!(matches!(primary(&d), Some(GptError::UsableRange { .. })));
        let mut d = standard();
        set64(&mut d, 48, u64::MAX);
        assert!(matches!(primary(&d), Some(GptError::UsableRange { .. })));
        let mut d = standard();
        set64(&mut d, 24, 7);
        assert_eq!(primary(&d), Some(GptError::MyLba { lba: 1, says: 7 }));
    }

    #[test]
    fn hostile_entries_are_refused() {
        // Entry 3 (root-b) moved onto root-a: overlap.
        let mut d = standard();
        for at in [1024usize, (last_lba() - 32) * 512] {
            d[at + 256 + 32..at + 256 + 40].copy_from_slice(&8000u64.to_le_bytes());
        }
        fix_all(&mut d);
        assert!(matches!(
            parse(&d),
            Err(ReadError::Invalid {
                primary: GptError::Overlap { a: 2, b: 3 },
                ..
            })
        ));
        // Entry 3 ending beyond the usable range.
        let mut d = standard();
        for at in [1024usize, (last_lba() - 32) * 512] {
            d[at + 256 + 40..at + 256 + 48].copy_from_slice(&u64::MAX.to_le_bytes());
        }
        fix_all(&mut d);
        assert!(matches!(
            parse(&d),
            Err(ReadError::Invalid {
                primary: GptError::EntryRange { number: 3, .. },
                ..
            })
        ));
    }

    #[test]
    fn short_reads_never_panic() {
        let d = standard();
        for n in [0usize, 100, 511] {
            assert!(Header::parse(&d[512..512 + n], 1, DISK / SECTOR).is_err());
        }
        let h = Header::parse(&d[512..1024], 1, DISK / SECTOR).unwrap();
        assert!(matches!(
            h.entries(&d[1024..2048]),
            Err(GptError::Short { .. })
        ));
    }
}
