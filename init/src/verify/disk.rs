//! Finding block devices and partitions on the device: by GPT partition
//! name (the kernel exposes it as `PARTNAME=` in sysfs uevents), waiting a
//! bounded time for slow buses to probe; and raw reads at an offset.
use std::fmt;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub enum DiskError {
    /// No partition with that GPT name appeared in time.
    NotFound {
        partname: String,
        waited: Duration,
        seen: Vec<String>,
    },
    Io {
        path: String,
        offset: u64,
        err: std::io::Error,
    },
}

impl fmt::Display for DiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound {
                partname,
                waited,
                seen,
            } => write!(
                f,
                "no partition named {partname:?} after {} ms (block devices: {})",
                waited.as_millis(),
                if seen.is_empty() {
                    "none".to_string()
                } else {
                    seen.join(", ")
                }
            ),
            Self::Io { path, offset, err } => write!(f, "{path} at offset {offset}: {err}"),
        }
    }
}

/// A partition found by name.
#[derive(Debug, Clone)]
pub struct Partition {
    /// `/dev/vda2`
    pub dev: String,
    pub size_bytes: u64,
}

fn uevent_value(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .map(str::to_string)
}

fn scan(partname: &str) -> (Option<Partition>, Vec<String>) {
    let mut seen = Vec::new();
    let Ok(dir) = std::fs::read_dir("/sys/class/block") else {
        return (None, seen);
    };
    let mut entries: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        let Some(name) = p.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
            continue;
        };
        let uevent = std::fs::read_to_string(p.join("uevent")).unwrap_or_default();
        let pn = uevent_value(&uevent, "PARTNAME");
        seen.push(match &pn {
            Some(n) => format!("{name}={n}"),
            None => name.clone(),
        });
        if pn.as_deref() == Some(partname) {
            let sectors: u64 = std::fs::read_to_string(p.join("size"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            return (
                Some(Partition {
                    dev: format!("/dev/{name}"),
                    size_bytes: sectors * 512,
                }),
                seen,
            );
        }
    }
    (None, seen)
}

/// Wait up to `wait` for a partition with GPT name `partname` and its
/// device node.
pub fn find_partition(partname: &str, wait: Duration) -> Result<Partition, DiskError> {
    let start = Instant::now();
    loop {
        let (found, seen) = scan(partname);
        if let Some(p) = found {
            if std::path::Path::new(&p.dev).exists() {
                return Ok(p);
            }
        }
        if start.elapsed() >= wait {
            return Err(DiskError::NotFound {
                partname: partname.to_string(),
                waited: start.elapsed(),
                seen,
            });
        }
        std::thread::sleep(Duration::from_millis(25));
    }
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
    fn uevent_parsing() {
        let u = "MAJOR=254\nMINOR=2\nDEVNAME=vda2\nDEVTYPE=partition\nPARTN=2\nPARTNAME=root-a\n";
        assert_eq!(uevent_value(u, "PARTNAME").as_deref(), Some("root-a"));
        assert_eq!(uevent_value(u, "PARTN").as_deref(), Some("2"));
        assert_eq!(uevent_value(u, "NOPE"), None);
    }
}
