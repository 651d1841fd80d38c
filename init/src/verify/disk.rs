//! Block devices as stage 1 sees them: the whole disks in sysfs (partitions,
//! device-mapper, loop and RAM disks skipped) and raw reads at an offset.
use std::fmt;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

#[derive(Debug)]
pub enum DiskError {
    Io {
        path: String,
        offset: u64,
        err: std::io::Error,
    },
}

impl fmt::Display for DiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, offset, err } => write!(f, "{path} at offset {offset}: {err}"),
        }
    }
}

/// A number in a sysfs file (0 if unreadable).
pub fn sysfs_u64(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Is `name` (in /sys/class/block) a device that can hold a GPT?
fn is_disk_name(name: &str) -> bool {
    !["dm-", "loop", "ram", "zram", "sr", "md"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// Whole disks with their size in bytes, in name order; empty ones skipped.
pub fn whole_disks() -> Vec<(String, u64)> {
    let Ok(dir) = std::fs::read_dir("/sys/class/block") else {
        return Vec::new();
    };
    let mut out: Vec<(String, u64)> = dir
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let p = e.path();
            if !is_disk_name(&name) || p.join("partition").exists() {
                return None;
            }
            let bytes = sysfs_u64(&p.join("size")) * 512;
            (bytes > 0 && Path::new("/dev").join(&name).exists()).then_some((name, bytes))
        })
        .collect();
    out.sort();
    out
}

/// Read exactly `len` bytes at `offset` of a device.
pub fn read_at(dev: &str, offset: u64, len: usize) -> Result<Vec<u8>, DiskError> {
    let err = |err| DiskError::Io {
        path: dev.to_string(),
        offset,
        err,
    };
    let f = File::open(dev).map_err(err)?;
    let mut buf = vec![0u8; len];
    f.read_exact_at(&mut buf, offset).map_err(err)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_names() {
        assert!(is_disk_name("vda"));
        assert!(is_disk_name("mmcblk0"));
        assert!(!is_disk_name("dm-0"));
        assert!(!is_disk_name("loop3"));
    }
}
