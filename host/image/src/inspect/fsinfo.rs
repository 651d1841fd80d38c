//! Reading the filesystems on the boot (FAT) and data (ext4) partitions:
//! total and free bytes from their on-disk metadata only (the FAT boot
//! sector and first FAT, the ext4 superblock; anything unexpected gives
//! `None` and the report leaves the numbers out), and the digest of a file
//! on the FAT, through `lamfat` over a read-only window of the image.
//!
//! The metadata is hostile input: all arithmetic is checked (an overflow
//! gives `None`), and what a filesystem claims is clamped to the partition
//! it lies in — a superblock claiming more blocks than the partition has
//! reports the partition's size, never more.
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

/// Filesystem capacity and free space, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub total: u64,
    pub free: u64,
}

/// Largest FAT read to count free clusters (a 2 TiB FAT32 has a 256 MiB FAT).
const MAX_FAT_BYTES: u64 = 64 << 20;

fn read_at(f: &mut File, offset: u64, len: usize) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; len];
    f.seek(SeekFrom::Start(offset)).ok()?;
    f.read_exact(&mut buf).ok()?;
    Some(buf)
}

fn le16(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from(u16::from_le_bytes(
        b.get(at..at + 2)?.try_into().ok()?,
    )))
}

fn le32(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from(u32::from_le_bytes(
        b.get(at..at + 4)?.try_into().ok()?,
    )))
}

impl Usage {
    /// `total` and `free` from `units` and `free_units` of `unit` bytes,
    /// clamped to `limit` bytes (the partition size): a product past
    /// `u64::MAX` saturates, so it is clamped like any other overclaim.
    fn clamped(units: u64, free_units: u64, unit: u64, limit: u64) -> Option<Usage> {
        let total = units.saturating_mul(unit).min(limit);
        let free = free_units.saturating_mul(unit).min(total);
        Some(Usage { total, free })
    }

    /// Bytes in use.
    pub fn used(&self) -> u64 {
        self.total.saturating_sub(self.free)
    }
}

/// FAT12/16/32 at `offset` of a `part_size`-byte partition: clusters in the
/// data area, and those whose FAT entry is 0.
pub fn fat_usage(f: &mut File, offset: u64, part_size: u64) -> Option<Usage> {
    let bs = read_at(f, offset, 512)?;
    if bs.get(510..512)? != [0x55, 0xAA] {
        return None;
    }
    let bytes_per_sector = le16(&bs, 11)?;
    let sectors_per_cluster = u64::from(*bs.get(13)?);
    let reserved = le16(&bs, 14)?;
    let fats = u64::from(*bs.get(16)?);
    let root_entries = le16(&bs, 17)?;
    let total_sectors = match le16(&bs, 19)? {
        0 => le32(&bs, 32)?,
        n => n,
    };
    let fat_sectors = match le16(&bs, 22)? {
        0 => le32(&bs, 36)?,
        n => n,
    };
    if !matches!(bytes_per_sector, 512 | 1024 | 2048 | 4096)
        || !sectors_per_cluster.is_power_of_two()
        || fats == 0
        || fat_sectors == 0
    {
        return None;
    }
    let root_sectors = root_entries.checked_mul(32)?.div_ceil(bytes_per_sector);
    let meta = fats
        .checked_mul(fat_sectors)?
        .checked_add(reserved)?
        .checked_add(root_sectors)?;
    let clusters = total_sectors.checked_sub(meta)? / sectors_per_cluster;
    let fat_bytes = fat_sectors.checked_mul(bytes_per_sector)?;
    if fat_bytes > MAX_FAT_BYTES {
        return None;
    }
    let fat = read_at(
        f,
        offset.checked_add(reserved.checked_mul(bytes_per_sector)?)?,
        usize::try_from(fat_bytes).ok()?,
    )?;
    let mut free = 0u64;
    for c in 2..clusters.checked_add(2)? {
        let entry = if clusters < 4085 {
            // FAT12: 12-bit entries packed in pairs.
            let at = usize::try_from(c + c / 2).ok()?;
            let v = le16(&fat, at)?;
            if c % 2 == 0 {
                v & 0xFFF
            } else {
                v >> 4
            }
        } else if clusters < 65525 {
            le16(&fat, usize::try_from(c * 2).ok()?)?
        } else {
            le32(&fat, usize::try_from(c * 4).ok()?)? & 0x0FFF_FFFF
        };
        if entry == 0 {
            free += 1;
        }
    }
    let cluster_bytes = sectors_per_cluster.checked_mul(bytes_per_sector)?;
    Usage::clamped(clusters, free, cluster_bytes, part_size)
}

/// ext2/3/4 at `offset` of a `part_size`-byte partition, from the
/// superblock's block counts.
pub fn ext4_usage(f: &mut File, offset: u64, part_size: u64) -> Option<Usage> {
    let sb = read_at(f, offset.checked_add(1024)?, 1024)?;
    if le16(&sb, 0x38)? != 0xEF53 {
        return None;
    }
    let log = le32(&sb, 0x18)?;
    if log > 6 {
        return None;
    }
    let block = 1024u64 << log;
    let mut blocks = le32(&sb, 0x04)?;
    let mut free = le32(&sb, 0x0C)?;
    const INCOMPAT_64BIT: u64 = 0x80;
    if le32(&sb, 0x60)? & INCOMPAT_64BIT != 0 {
        blocks |= le32(&sb, 0x150)? << 32;
        free |= le32(&sb, 0x158)? << 32;
    }
    if free > blocks {
        return None;
    }
    Usage::clamped(blocks, free, block, part_size)
}

/// `len` bytes of `file` from `start`, read-only (writes fail), for lamfat.
struct Window<'f> {
    file: &'f File,
    start: u64,
    len: u64,
    pos: u64,
}

impl Read for Window<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let n = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
        let Some(dst) = buf.get_mut(..n) else {
            return Ok(0);
        };
        let got = self.file.read_at(dst, self.start + self.pos)?;
        self.pos += got as u64;
        Ok(got)
    }
}

impl Seek for Window<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos =
            pos.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before start"))?;
        Ok(self.pos)
    }
}

impl Write for Window<'_> {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(io::ErrorKind::PermissionDenied, "read-only"))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Size and sha256 of the file at `path` (e.g. `/Image`) on the FAT
/// filesystem at `offset` (`size` bytes) of `file`; `Ok(None)` if there is
/// no such file.
pub fn fat_file_digest(
    file: &File,
    offset: u64,
    size: u64,
    path: &str,
) -> Result<Option<(u64, [u8; 32])>, String> {
    let window = Window {
        file,
        start: offset,
        len: size,
        pos: 0,
    };
    let fs = lamfat::FileSystem::new(window, lamfat::FsOptions::new())
        .map_err(|e| format!("not a readable FAT filesystem: {e}"))?;
    let rel = path.trim_start_matches('/');
    let mut f = match fs.root_dir().open_file(rel) {
        Ok(f) => f,
        Err(lamfat::Error::NotFound) => return Ok(None),
        Err(e) => return Err(format!("opening {path}: {e}")),
    };
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| format!("reading {path}: {e}"))?;
        let Some(chunk) = buf.get(..n) else { break };
        if n == 0 {
            break;
        }
        ctx.update(chunk);
        total += n as u64;
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    Ok(Some((total, out)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::FileExt;
    use std::process::Command;

    /// Run a tool that `scripts/setup.sh` installs; a missing tool fails the test.
    fn tool(name: &str, args: &[&std::ffi::OsStr]) -> std::process::Output {
        let out = Command::new(name)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{name} (installed by scripts/setup.sh): {e}"));
        assert!(out.status.success(), "{name}: {out:?}");
        out
    }

    #[test]
    fn ext4_from_mkfs() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("e.img");
        let mut f = File::create(&img).unwrap();
        f.write_all(&vec![0xAA; 4096]).unwrap(); // something before the partition
        f.set_len(4096 + (8 << 20)).unwrap();
        drop(f);
        let part = dir.path().join("p.img");
        File::create(&part).unwrap().set_len(8 << 20).unwrap();
        tool(
            "mkfs.ext4",
            &[
                "-q".as_ref(),
                "-F".as_ref(),
                "-b".as_ref(),
                "4096".as_ref(),
                part.as_os_str(),
            ],
        );
        let bytes = std::fs::read(&part).unwrap();
        let mut f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
        f.seek(SeekFrom::Start(4096)).unwrap();
        f.write_all(&bytes).unwrap();
        drop(f);
        let u = ext4_usage(&mut File::open(&img).unwrap(), 4096, 8 << 20).unwrap();
        assert_eq!(u.total, 8 << 20);
        assert!(u.free > 0 && u.free < u.total, "{u:?}");
        // What dumpe2fs says.
        let out = tool("dumpe2fs", &["-h".as_ref(), part.as_os_str()]);
        let text = String::from_utf8_lossy(&out.stdout);
        let field = |name: &str| -> u64 {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().parse().unwrap())
                .unwrap()
        };
        assert_eq!(u.free, field("Free blocks:") * field("Block size:"));
        assert_eq!(ext4_usage(&mut File::open(&img).unwrap(), 0, 8 << 20), None);
    }

    /// A superblock claiming 2^64-ish blocks (64bit feature, high words
    /// 0xFFFFFFFF) used to overflow `blocks * block` (a panic in debug,
    /// "16320 PiB used" in release); now the claim is clamped to the
    /// partition.
    #[test]
    fn ext4_claims_are_clamped_to_the_partition() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("p.img");
        File::create(&part).unwrap().set_len(8 << 20).unwrap();
        tool(
            "mkfs.ext4",
            &[
                "-q".as_ref(),
                "-F".as_ref(),
                "-b".as_ref(),
                "4096".as_ref(),
                part.as_os_str(),
            ],
        );
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&part)
            .unwrap();
        let sb = 1024u64;
        // s_feature_incompat |= 64bit; s_blocks_count_hi, s_free_blocks_hi.
        let mut incompat = [0u8; 4];
        f.read_exact_at(&mut incompat, sb + 0x60).unwrap();
        let v = u32::from_le_bytes(incompat) | 0x80;
        f.write_all_at(&v.to_le_bytes(), sb + 0x60).unwrap();
        f.write_all_at(&u32::MAX.to_le_bytes(), sb + 0x150).unwrap();
        f.write_all_at(&0u32.to_le_bytes(), sb + 0x158).unwrap();
        drop(f);
        let u = ext4_usage(&mut File::open(&part).unwrap(), 0, 8 << 20).unwrap();
        assert_eq!(u.total, 8 << 20, "{u:?}");
        assert!(u.free <= u.total && u.used() <= 8 << 20, "{u:?}");
        // Free blocks beyond the (huge) count's low word: still clamped.
        let f = std::fs::OpenOptions::new().write(true).open(&part).unwrap();
        f.write_all_at(&u32::MAX.to_le_bytes(), sb + 0x158).unwrap();
        drop(f);
        let u = ext4_usage(&mut File::open(&part).unwrap(), 0, 1 << 20).unwrap();
        assert_eq!((u.total, u.free, u.used()), (1 << 20, 1 << 20, 0));
    }

    #[test]
    fn fat_from_mkfs() {
        for (size, fat) in [(4u64 << 20, "12"), (32 << 20, "16"), (64 << 20, "32")] {
            let dir = tempfile::tempdir().unwrap();
            let part = dir.path().join("p.img");
            File::create(&part).unwrap().set_len(size).unwrap();
            tool(
                "mkfs.vfat",
                &["-F".as_ref(), fat.as_ref(), part.as_os_str()],
            );
            let u = fat_usage(&mut File::open(&part).unwrap(), 0, size).unwrap();
            assert!(u.total > size / 2 && u.total <= size, "FAT{fat} {u:?}");
            // A fresh FAT32 has its root directory cluster allocated.
            assert!(
                u.free <= u.total && u.total - u.free <= 4096,
                "FAT{fat} {u:?}"
            );
            // What fsck.fat says: "N files, USED/TOTAL clusters".
            let out = tool("fsck.fat", &["-n".as_ref(), part.as_os_str()]);
            let text = String::from_utf8_lossy(&out.stdout);
            let words: Vec<&str> = text.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "clusters").unwrap();
            let counts = words[at - 1]
                .split('/')
                .map(|n| n.parse::<u64>().unwrap())
                .collect::<Vec<_>>();
            let cluster = u.total / counts[1];
            assert_eq!(u.total, counts[1] * cluster, "FAT{fat}");
            assert_eq!(u.total - u.free, counts[0] * cluster, "FAT{fat}: {text}");
            // Claims are clamped to the partition they are read in.
            let small = fat_usage(&mut File::open(&part).unwrap(), 0, 4096).unwrap();
            assert_eq!(small.total, 4096, "FAT{fat}");
        }
    }
}
