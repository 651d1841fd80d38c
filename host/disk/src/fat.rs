//! The boot partition image: a FAT filesystem built in memory (no mount,
//! no `mkfs.fat`, no `mtools`), holding the kernel, the initramfs, the
//! command line and, later, firmware files.
//!
//! Built with `lamfat`, a crates.io republish of rust-fatfs's current
//! (0.4) line. The crates.io `fatfs` 0.3.6 is not used: it writes long-name
//! entries before `.`/`..` and a non-zero `..` cluster for the root, which
//! `fsck.vfat` reports and repairs (the tests check with it).
//!
//! FAT32 from 64 MiB up (what UEFI and the Raspberry Pi firmware prefer),
//! otherwise the FAT type `lamfat` picks for the size (FAT16, or FAT12 below
//! 4 MiB). Reproducible: every timestamp is the DOS epoch
//! (1980-01-01 00:00:00, the smallest FAT can store) from a fixed time
//! provider, the volume ID and label come from the caller, files are
//! written in path order whatever order they are given in, and the
//! filesystem is unmounted cleanly (FSInfo written, dirty bit clear).
use super::{DiskError, MIB};
use lamfat::{
    Date, DateTime, FatType, FileSystem, FormatVolumeOptions, FsOptions, StdIoWrapper, Time,
};
use std::io::{Cursor, Write};

/// From this size up the boot filesystem is FAT32.
pub const FAT32_MIN_SIZE: u64 = 64 * MIB;

/// What went wrong building a FAT image.
#[derive(Debug, thiserror::Error)]
pub enum FatProblem {
    #[error("size {0} bytes is not a positive multiple of 512")]
    Size(u64),
    #[error("volume label must be 1-11 ASCII letters, digits, spaces, `_` or `-` (lower case is stored upper case)")]
    Label,
    #[error("path {path:?}: {why}")]
    Path { path: String, why: &'static str },
    #[error("formatting: {0}")]
    Format(std::io::Error),
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// Fixed timestamps for every directory entry.
#[derive(Debug)]
struct DosEpoch;

impl lamfat::TimeProvider for DosEpoch {
    fn get_current_date(&self) -> Date {
        Date::new(1980, 1, 1)
    }
    fn get_current_date_time(&self) -> DateTime {
        DateTime::new(self.get_current_date(), Time::new(0, 0, 0, 0))
    }
}

/// The 11-byte, space-padded label field; lower-case ASCII is upper-cased
/// (FAT labels are upper case; `mkfs.fat` does the same).
fn label_field(label: &str) -> Option<[u8; 11]> {
    let b = label.as_bytes();
    if b.is_empty()
        || b.len() > 11
        || !b
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b' ' | b'_' | b'-'))
        || b.first() == Some(&b' ')
    {
        return None;
    }
    let mut f = [b' '; 11];
    for (d, s) in f.iter_mut().zip(b) {
        *d = s.to_ascii_uppercase();
    }
    Some(f)
}

/// Split `/EFI/BOOT/x` into checked components.
fn components(path: &str) -> Result<Vec<&str>, &'static str> {
    let rest = path.strip_prefix('/').ok_or("must be absolute")?;
    let parts: Vec<&str> = rest.split('/').collect();
    for c in &parts {
        if c.is_empty() {
            return Err("has an empty component (`//` or a trailing `/`)");
        }
        if *c == "." || *c == ".." {
            return Err("has a `.` or `..` component");
        }
        if c.len() > 255 {
            return Err("has a component longer than 255 bytes");
        }
        if c.ends_with(' ') || c.ends_with('.') {
            return Err("has a component ending in a space or `.` (FAT drops them)");
        }
        if c.chars()
            .any(|ch| ch.is_control() || "\"*:<>?\\|".contains(ch))
        {
            return Err("has a character FAT does not allow (control, \" * : < > ? \\ |)");
        }
    }
    Ok(parts)
}

/// A FAT image of exactly `size` bytes with volume label `label` and
/// volume ID (serial number) `volume_id`, holding `files` (absolute paths
/// like `/EFI/BOOT/BOOTAA64.EFI`; parent directories are created). Names
/// keep their case (long file names); FAT lookups ignore case, so two paths
/// that differ only in case are an error.
pub fn fat_image(
    size: u64,
    label: &str,
    volume_id: u32,
    files: &[(String, Vec<u8>)],
) -> Result<Vec<u8>, DiskError> {
    let fail = |problem| DiskError::Fat {
        label: label.to_string(),
        problem,
    };
    if size == 0 || !size.is_multiple_of(512) {
        return Err(fail(FatProblem::Size(size)));
    }
    let len = usize::try_from(size).map_err(|_| fail(FatProblem::Size(size)))?;
    let label_bytes = label_field(label).ok_or_else(|| fail(FatProblem::Label))?;

    // Check every path before formatting, in path order.
    let mut sorted: Vec<(&str, Vec<&str>, &[u8])> = Vec::with_capacity(files.len());
    for (path, bytes) in files {
        let comps = components(path).map_err(|why| {
            fail(FatProblem::Path {
                path: path.clone(),
                why,
            })
        })?;
        sorted.push((path, comps, bytes));
    }
    sorted.sort_by(|a, b| a.1.cmp(&b.1));
    let folded = |c: &[&str]| -> Vec<String> { c.iter().map(|s| s.to_lowercase()).collect() };
    for (i, (path, comps, _)) in sorted.iter().enumerate() {
        let me = folded(comps);
        for (_, ocomps, _) in sorted.iter().take(i) {
            let o = folded(ocomps);
            let why = if o == me {
                "is given twice (FAT names ignore case)"
            } else if me.starts_with(&o) || o.starts_with(&me) {
                "is both a file and a directory"
            } else {
                continue;
            };
            return Err(fail(FatProblem::Path {
                path: path.to_string(),
                why,
            }));
        }
    }

    let mut disk = Cursor::new(vec![0u8; len]);
    let mut opts = FormatVolumeOptions::new()
        .volume_id(volume_id)
        .volume_label(label_bytes);
    if size >= FAT32_MIN_SIZE {
        opts = opts.fat_type(FatType::Fat32);
    }
    lamfat::format_volume(&mut StdIoWrapper::new(&mut disk), opts)
        .map_err(|e| fail(FatProblem::Format(e.into())))?;
    disk.set_position(0);
    {
        let fs = FileSystem::new(
            &mut disk,
            FsOptions::new()
                .time_provider(DosEpoch)
                .update_accessed_date(false),
        )
        .map_err(|e| fail(FatProblem::Format(e.into())))?;
        for (path, comps, bytes) in &sorted {
            let werr = |source: std::io::Error| {
                fail(FatProblem::Write {
                    path: path.to_string(),
                    source,
                })
            };
            let (file_name, dirs) = match comps.split_last() {
                Some(x) => x,
                None => continue,
            };
            let mut dir = fs.root_dir();
            for d in dirs {
                dir = dir.create_dir(d).map_err(|e| werr(e.into()))?;
            }
            let mut f = dir.create_file(file_name).map_err(|e| werr(e.into()))?;
            f.truncate().map_err(|e| werr(e.into()))?;
            f.write_all(bytes).map_err(werr)?;
            f.flush().map_err(werr)?;
        }
        fs.unmount().map_err(|e| {
            fail(FatProblem::Write {
                path: "(unmount)".into(),
                source: e.into(),
            })
        })?;
    }
    Ok(disk.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn files() -> Vec<(String, Vec<u8>)> {
        vec![
            ("/EFI/BOOT/BOOTAA64.EFI".into(), vec![0xAA; 5000]),
            ("/cmdline.txt".into(), b"console=ttyAMA0\n".to_vec()),
            (
                "/EFI/azl/Image".into(),
                (0..100_000u32).map(|i| i as u8).collect(),
            ),
        ]
    }

    #[test]
    fn disk_fat_roundtrip_and_types() {
        for (size, ty) in [
            (64 * MIB, FatType::Fat32),
            (16 * MIB, FatType::Fat16),
            (MIB, FatType::Fat12),
        ] {
            let img = fat_image(size, "boot", 0x1234_5678, &files()).unwrap();
            assert_eq!(img.len() as u64, size);
            let fs = FileSystem::new(Cursor::new(img), FsOptions::new()).unwrap();
            assert_eq!(fs.fat_type(), ty, "{size}");
            assert_eq!(fs.volume_id(), 0x1234_5678);
            assert_eq!(fs.volume_label(), "BOOT");
            assert!(!fs.read_status_flags().unwrap().dirty());
            for (p, want) in files() {
                let mut got = Vec::new();
                fs.root_dir()
                    .open_file(&p[1..])
                    .unwrap()
                    .read_to_end(&mut got)
                    .unwrap();
                assert_eq!(got, want, "{p}");
            }
            let e = fs.root_dir().open_dir("EFI").unwrap();
            for entry in e.iter() {
                let entry = entry.unwrap();
                assert_eq!(entry.modified().date.year, 1980);
            }
        }
    }

    #[test]
    fn disk_fat_order_independent() {
        let mut rev = files();
        rev.reverse();
        assert_eq!(
            fat_image(16 * MIB, "BOOT", 1, &files()).unwrap(),
            fat_image(16 * MIB, "BOOT", 1, &rev).unwrap()
        );
    }

    #[test]
    fn disk_fat_errors() {
        let e = |size, label: &str, f: &[(&str, &[u8])]| {
            let f: Vec<(String, Vec<u8>)> =
                f.iter().map(|(p, b)| (p.to_string(), b.to_vec())).collect();
            fat_image(size, label, 1, &f).unwrap_err().to_string()
        };
        assert_eq!(
            e(1000, "b", &[]),
            "FAT image \"b\": size 1000 bytes is not a positive multiple of 512"
        );
        assert!(e(MIB, "much-too-long", &[]).contains("volume label must be"));
        assert!(e(MIB, "", &[]).contains("volume label must be"));
        assert_eq!(
            e(MIB, "b", &[("x", b"")]),
            "FAT image \"b\": path \"x\": must be absolute"
        );
        assert!(e(MIB, "b", &[("/a//b", b"")]).contains("empty component"));
        assert!(e(MIB, "b", &[("/a/../b", b"")]).contains("`..`"));
        assert!(e(MIB, "b", &[("/a:b", b"")]).contains("does not allow"));
        assert_eq!(
            e(MIB, "b", &[("/A/b", b""), ("/a/B", b"")]),
            "FAT image \"b\": path \"/a/B\": is given twice (FAT names ignore case)"
        );
        assert!(e(MIB, "b", &[("/a", b""), ("/a/b", b"")]).contains("both a file and a directory"));
        let big = vec![1u8; 2 * MIB as usize];
        let msg = e(MIB, "b", &[("/big", &big)]);
        assert!(msg.starts_with("FAT image \"b\": writing /big: "), "{msg}");
    }
}
