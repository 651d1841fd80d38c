//! `[kernel] rpm`: the kernel package's files written once to the cache,
//! `${AZL_CACHE}/rpm-kernels/<sha256 of the .rpm>/`, and used like a
//! `[kernel] path` (`crate::kernel::Kernel::open` takes the RPM layout,
//! `lib/modules/<release>/vmlinuz`). Only directories and regular files
//! are written (hard links as copies; symlinks such as
//! `lib/modules/*/build` are left out), into a fresh directory that is
//! renamed into place when complete: no link is ever followed, and a
//! partial extraction is never used.
use super::Installed;
use azl_rpm::package::entries::{Item, Kind};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("kernel package {package}: writing {path}: {err}")]
pub struct KernelRpmError {
    pub package: String,
    pub path: PathBuf,
    pub err: std::io::Error,
}

/// The directory holding `kernel`'s files under `cache`.
pub fn materialize(
    cache: &Path,
    kernel: &Installed,
    items: &[Item],
) -> Result<PathBuf, KernelRpmError> {
    let nevra = format!("{}-{}.{}", kernel.name, kernel.evr, kernel.arch);
    let err = |path: &Path| {
        let package = nevra.clone();
        let path = path.to_path_buf();
        move |err| KernelRpmError { package, path, err }
    };
    let root = cache.join("rpm-kernels");
    let dest = root.join(&kernel.sha256);
    if dest.is_dir() {
        return Ok(dest);
    }
    std::fs::create_dir_all(&root).map_err(err(&root))?;
    let tmp = tempfile::Builder::new()
        .prefix(".partial-")
        .tempdir_in(&root)
        .map_err(err(&root))?;
    let files: BTreeMap<&str, &[u8]> = items
        .iter()
        .filter_map(|i| match &i.kind {
            Kind::File(b) => Some((i.path.as_str(), b.as_slice())),
            _ => None,
        })
        .collect();
    for item in items {
        let rel = item.path.trim_start_matches('/');
        if rel.is_empty() {
            continue;
        }
        let path = tmp.path().join(rel);
        let bytes = match &item.kind {
            Kind::Dir => {
                std::fs::create_dir_all(&path).map_err(err(&path))?;
                continue;
            }
            Kind::File(b) => b.as_slice(),
            Kind::HardLink(t) => files.get(t.as_str()).copied().unwrap_or_default(),
            Kind::Symlink(_) | Kind::Device { .. } => continue,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(err(parent))?;
        }
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(err(&path))?;
        f.write_all(bytes).map_err(err(&path))?;
    }
    let done = tmp.keep();
    match std::fs::rename(&done, &dest) {
        Ok(()) => Ok(dest),
        // Another build put it there first: theirs is as good as ours.
        Err(_) if dest.is_dir() => {
            let _ = std::fs::remove_dir_all(&done);
            Ok(dest)
        }
        Err(e) => Err(err(&dest)(e)),
    }
}
