//! An unpacked kernel package directory: the kernel image to boot and the
//! module tree of its (single) release.
//!
//! Layout: `boot/Image`, or exactly one `boot/vmlinuz-*`, or (as Fedora's
//! and Azure Linux's kernel RPMs ship it) `lib/modules/<release>/vmlinuz`;
//! and `lib/modules/<release>/` with exactly one release directory (may be
//! absent when the board loads no modules).
use std::path::{Path, PathBuf};

/// arm64 Image header magic ("ARM\x64") at offset 56.
const ARM64_MAGIC: &[u8; 4] = b"ARM\x64";
const ARM64_MAGIC_OFFSET: usize = 56;
const GZIP_MAGIC: &[u8; 2] = &[0x1f, 0x8b];

#[derive(Debug, Clone)]
pub struct Kernel {
    pub dir: PathBuf,
    /// The file handed to the boot loader / QEMU.
    pub image: PathBuf,
    /// `lib/modules/<release>` name and path, if the package has modules.
    pub release: Option<Release>,
}

#[derive(Debug, Clone)]
pub struct Release {
    pub name: String,
    pub dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("kernel directory {0} does not exist (run scripts/kernels.sh, or fix [kernel] path / --kernel)")]
    Missing(PathBuf),
    #[error(
        "kernel directory {dir}: no boot/Image, no boot/vmlinuz-* and no lib/modules/*/vmlinuz"
    )]
    NoImage { dir: PathBuf },
    #[error("kernel directory {dir}: no boot/Image and several boot/vmlinuz-* ({}); keep one", .list.join(", "))]
    SeveralImages { dir: PathBuf, list: Vec<String> },
    #[error("kernel directory {dir}: several releases in lib/modules ({}); keep one", .list.join(", "))]
    SeveralReleases { dir: PathBuf, list: Vec<String> },
    #[error("{path} is not an arm64 kernel Image (no ARM\\x64 magic at offset 56) nor a gzip-compressed one")]
    NotArm64 { path: PathBuf },
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KernelError + '_ {
    move |source| KernelError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Sorted names of the entries of `dir` accepted by `keep` (empty if `dir` is absent).
fn list(dir: &Path, keep: impl Fn(&str, &Path) -> bool) -> Result<Vec<String>, KernelError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(dir)(e)),
    };
    let mut v = Vec::new();
    for e in rd {
        let e = e.map_err(io(dir))?;
        if let Some(n) = e.file_name().to_str() {
            if keep(n, &e.path()) {
                v.push(n.to_string());
            }
        }
    }
    v.sort();
    Ok(v)
}

impl Kernel {
    /// Inspect `dir`.
    pub fn open(dir: &Path) -> Result<Self, KernelError> {
        if !dir.is_dir() {
            return Err(KernelError::Missing(dir.to_path_buf()));
        }
        let modules = dir.join("lib/modules");
        let releases = list(&modules, |_, p| p.is_dir())?;
        let release = match releases.as_slice() {
            [] => None,
            [one] => Some(Release {
                name: one.clone(),
                dir: modules.join(one),
            }),
            _ => {
                return Err(KernelError::SeveralReleases {
                    dir: dir.into(),
                    list: releases,
                })
            }
        };
        let boot = dir.join("boot");
        let in_modules = release
            .as_ref()
            .map(|r| r.dir.join("vmlinuz"))
            .filter(|p| p.is_file());
        let image = if boot.join("Image").is_file() {
            boot.join("Image")
        } else {
            let v = list(&boot, |n, p| n.starts_with("vmlinuz-") && p.is_file())?;
            match (v.as_slice(), in_modules) {
                ([], Some(p)) => p,
                ([], None) => return Err(KernelError::NoImage { dir: dir.into() }),
                ([one], _) => boot.join(one),
                _ => {
                    return Err(KernelError::SeveralImages {
                        dir: dir.into(),
                        list: v,
                    })
                }
            }
        };
        check_image(&image)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            image,
            release,
        })
    }
}

/// The image must be an arm64 `Image` or a gzip of one (Debian's vmlinuz).
fn check_image(path: &Path) -> Result<(), KernelError> {
    use std::io::Read;
    let mut head = [0u8; 64];
    let mut f = std::fs::File::open(path).map_err(io(path))?;
    let mut n = 0;
    while let Some(rest) = head.get_mut(n..).filter(|r| !r.is_empty()) {
        match f.read(rest).map_err(io(path))? {
            0 => break,
            k => n += k,
        }
    }
    let head = head.get(..n).unwrap_or_default();
    let is_image = head.get(ARM64_MAGIC_OFFSET..ARM64_MAGIC_OFFSET + 4) == Some(ARM64_MAGIC);
    if is_image || head.starts_with(GZIP_MAGIC) {
        Ok(())
    } else {
        Err(KernelError::NotArm64 { path: path.into() })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fake arm64 Image: 64 bytes with the header magic.
    pub(crate) fn fake_image() -> Vec<u8> {
        let mut v = vec![0u8; 64];
        v[56..60].copy_from_slice(ARM64_MAGIC);
        v
    }

    #[test]
    fn layouts() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        assert!(matches!(
            Kernel::open(&d.join("x")),
            Err(KernelError::Missing(_))
        ));
        assert!(matches!(Kernel::open(d), Err(KernelError::NoImage { .. })));
        // A kernel RPM's layout: the image inside its release directory.
        let rpm = t.path().join("rpm");
        std::fs::create_dir_all(rpm.join("lib/modules/6.1.0-1.azl3.aarch64")).unwrap();
        std::fs::write(
            rpm.join("lib/modules/6.1.0-1.azl3.aarch64/vmlinuz"),
            fake_image(),
        )
        .unwrap();
        let k = Kernel::open(&rpm).unwrap();
        assert!(k
            .image
            .ends_with("lib/modules/6.1.0-1.azl3.aarch64/vmlinuz"));
        assert_eq!(k.release.unwrap().name, "6.1.0-1.azl3.aarch64");
        std::fs::create_dir_all(d.join("boot")).unwrap();
        std::fs::write(d.join("boot/vmlinuz-1"), [0x1f, 0x8b, 8]).unwrap();
        let k = Kernel::open(d).unwrap();
        assert!(k.image.ends_with("vmlinuz-1") && k.release.is_none());
        std::fs::write(d.join("boot/vmlinuz-2"), [0x1f, 0x8b, 8]).unwrap();
        let e = Kernel::open(d).unwrap_err().to_string();
        assert!(
            e.contains("several boot/vmlinuz-* (vmlinuz-1, vmlinuz-2)"),
            "{e}"
        );
        std::fs::write(d.join("boot/Image"), b"not a kernel").unwrap();
        assert!(matches!(Kernel::open(d), Err(KernelError::NotArm64 { .. })));
        std::fs::write(d.join("boot/Image"), fake_image()).unwrap();
        std::fs::create_dir_all(d.join("lib/modules/6.1.0-azl")).unwrap();
        let k = Kernel::open(d).unwrap();
        assert!(k.image.ends_with("boot/Image"));
        assert_eq!(k.release.unwrap().name, "6.1.0-azl");
        std::fs::create_dir_all(d.join("lib/modules/6.2")).unwrap();
        assert!(matches!(
            Kernel::open(d),
            Err(KernelError::SeveralReleases { .. })
        ));
    }
}
