//! Stage 1 of a verified boot, run from the initramfs: find the root
//! partition, verify its manifest, map it through dm-verity, mount the
//! squashfs read-only and the data partition read-write, then switch root
//! and exec the root filesystem's init (which is stage 2: supervision).
//!
//! Every step either succeeds or returns an error that names what failed;
//! the caller turns errors into the emergency state, so there is never a
//! half-mounted system running services.
use crate::disk::{self, DiskError};
use crate::manifest::{self, ManifestError, Verified};
use crate::measure::Measurer;
use crate::verity::{DeviceMapper, DmError};
use azl_formats::measure::Kind as MKind;
use azl_formats::RootSpec;
use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use std::fmt;
use std::time::Duration;

/// Where the new root is assembled.
const NEWROOT: &str = "/sysroot";
/// statfs magic of ramfs (not exported by libc).
const RAMFS_MAGIC: u64 = 0x8584_58f6;
/// The dm device name of the verified root.
pub const DM_NAME: &str = "root";

#[derive(Debug)]
pub enum RootError {
    Disk(DiskError),
    Manifest(ManifestError),
    Verity(DmError),
    Mount {
        what: String,
        target: String,
        errno: Errno,
        kernel: Vec<String>,
    },
    ServiceTable {
        expected: String,
        found: String,
    },
    Switch {
        step: &'static str,
        errno: Errno,
    },
}

impl fmt::Display for RootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Disk(e) => write!(f, "root: {e}"),
            Self::Manifest(e) => write!(f, "{e}"),
            Self::Verity(e) => write!(f, "verity: {e}"),
            Self::Mount { what, target, errno, kernel } => {
                write!(f, "cannot mount {what} on {target}: {}", errno.desc())?;
                for k in kernel {
                    write!(f, "\n  kernel: {k}")?;
                }
                Ok(())
            }
            Self::ServiceTable { expected, found } => write!(
                f,
                "service table in the root filesystem has sha256 {found}, the manifest says {expected}"
            ),
            Self::Switch { step, errno } => write!(f, "switch root: {step}: {}", errno.desc()),
        }
    }
}

/// Is `/` still the initramfs (rootfs/tmpfs)? Then this is stage 1.
pub fn in_initramfs() -> bool {
    nix::sys::statfs::statfs("/")
        .map(|s| {
            // rootfs is ramfs (0x858458f6) or tmpfs.
            let t = s.filesystem_type();
            t.0 as u64 == RAMFS_MAGIC || t == nix::sys::statfs::TMPFS_MAGIC
        })
        .unwrap_or(false)
}

/// Kernel log lines about verity corruption (for diagnoses).
pub fn kernel_verity_errors() -> Vec<String> {
    use std::io::Read;
    let mut out = Vec::new();
    let Ok(mut f) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
    else {
        return out;
    };
    let mut buf = vec![0u8; 8192];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let rec = String::from_utf8_lossy(buf.get(..n).unwrap_or(&[])).into_owned();
                let msg = rec
                    .split_once(';')
                    .map(|(_, m)| m)
                    .unwrap_or(&rec)
                    .trim()
                    .to_string();
                if msg.contains("verity") && (msg.contains("corrupt") || msg.contains("error")) {
                    out.push(msg);
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(_) => break,
        }
    }
    out.truncate(8);
    out
}
use std::os::unix::fs::OpenOptionsExt;

fn do_mount(
    src: &str,
    target: &str,
    fstype: &str,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), RootError> {
    let _ = std::fs::create_dir_all(target);
    mount(Some(src), target, Some(fstype), flags, data).map_err(|errno| RootError::Mount {
        what: format!("{fstype} {src}"),
        target: target.to_string(),
        errno,
        kernel: kernel_verity_errors(),
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    azl_formats::manifest::Hex(&azl_formats::sha256(bytes)).to_string()
}

/// Assemble the verified root at `/sysroot`. Returns the verified manifest.
pub fn assemble(
    spec: &RootSpec,
    board: &str,
    measurer: &mut Measurer,
) -> Result<Verified, RootError> {
    let wait = Duration::from_secs(u64::from(spec.wait_s));
    let part = disk::find_partition(&spec.partition, wait).map_err(RootError::Disk)?;
    log::info!(
        "root: {} is {} ({} MiB)",
        spec.partition,
        part.dev,
        part.size_bytes >> 20
    );
    let verified = manifest::load(&part, &spec.partition, board, spec.allow_unsigned)
        .map_err(RootError::Manifest)?;
    let m = &verified.manifest;
    if verified.signed {
        log::info!(
            "manifest: {} {} signature OK",
            m.image_name,
            m.image_version
        );
    } else {
        log::warn!("INSECURE: manifest is UNSIGNED (image built with --insecure-unsigned); do not ship this image");
    }
    // Measure the manifest before anything it describes is used.
    match m.identity_bytes() {
        Ok(identity) => measurer.measure(MKind::Manifest, &identity),
        Err(e) => log::error!("measure: cannot encode the manifest identity: {e}"),
    }
    if let Err(e) = std::fs::create_dir_all("/run/azl-edge")
        .and_then(|()| std::fs::write(crate::measure::MANIFEST_COPY, &verified.envelope))
    {
        log::error!(
            "cannot keep the manifest in {}: {e}",
            crate::measure::MANIFEST_COPY
        );
    }
    let v = &m.rootfs.verity;
    measurer.measure(MKind::RootHash, &v.root_hash);
    let dm = DeviceMapper::open().map_err(RootError::Verity)?;
    let mapped = dm
        .create_verity(
            DM_NAME,
            m.rootfs.data_size / 512,
            &v.table_params(&part.dev),
        )
        .map_err(RootError::Verity)?;
    log::info!(
        "verity: {} → {} root hash {}",
        part.dev,
        mapped.node,
        azl_formats::manifest::Hex(&v.root_hash)
    );
    let ro = MsFlags::MS_RDONLY | MsFlags::MS_NODEV;
    do_mount(&mapped.node, NEWROOT, "squashfs", ro, None)?;
    // The service table stage 2 will run must be the one the build signed.
    let table_path = format!("{NEWROOT}{}", azl_formats::paths::SERVICE_TABLE);
    let table = std::fs::read(&table_path).map_err(|e| RootError::Mount {
        what: format!("read {table_path}"),
        target: NEWROOT.into(),
        errno: crate::errno::of(&e),
        kernel: kernel_verity_errors(),
    })?;
    let found = sha256_hex(&table);
    let expected = azl_formats::manifest::Hex(&m.service_table_sha256).to_string();
    if found != expected {
        return Err(RootError::ServiceTable { expected, found });
    }
    if let Some(data) = &spec.data_partition {
        let dp = disk::find_partition(data, wait).map_err(RootError::Disk)?;
        do_mount(
            &dp.dev,
            &format!("{NEWROOT}/data"),
            "ext4",
            MsFlags::MS_NODEV | MsFlags::MS_NOSUID,
            None,
        )?;
        log::info!("data: {} mounted read-write on /data", dp.dev);
    }
    Ok(verified)
}

/// The verity device's health: `Ok(())` while no corruption was seen.
pub fn check_health(dm: &DeviceMapper) -> Result<(), String> {
    match dm.verity_status(DM_NAME) {
        Ok(s) if s.trim() == "C" => {
            let lines = kernel_verity_errors();
            Err(if lines.is_empty() {
                "corruption detected".into()
            } else {
                lines.join("; ")
            })
        }
        _ => Ok(()),
    }
}

/// Delete the initramfs' files (same filesystem only) to free its memory.
fn clear_initramfs(dir: &std::path::Path, root_dev: u64) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let Ok(md) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if md.dev() != root_dev {
            continue; // a mount point (/sysroot, moved /dev, …)
        }
        if md.is_dir() {
            clear_initramfs(&p, root_dev);
            let _ = std::fs::remove_dir(&p);
        } else {
            let _ = std::fs::remove_file(&p);
        }
    }
}

/// Move the API filesystems into the new root, make it `/` and exec its
/// init. Returns only on failure.
pub fn switch_root() -> RootError {
    use std::os::unix::fs::MetadataExt;
    for api in ["/dev", "/proc", "/sys", "/run"] {
        let target = format!("{NEWROOT}{api}");
        let _ = std::fs::create_dir_all(&target);
        if let Err(errno) = mount(
            Some(api),
            target.as_str(),
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        ) {
            return RootError::Switch {
                step: "move API filesystems",
                errno,
            };
        }
    }
    if let Ok(md) = std::fs::metadata("/") {
        clear_initramfs(std::path::Path::new("/"), md.dev());
    }
    if let Err(errno) = nix::unistd::chdir(NEWROOT) {
        return RootError::Switch {
            step: "chdir",
            errno,
        };
    }
    if let Err(errno) = mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>) {
        return RootError::Switch {
            step: "move new root to /",
            errno,
        };
    }
    if let Err(errno) = nix::unistd::chroot(".") {
        return RootError::Switch {
            step: "chroot",
            errno,
        };
    }
    if let Err(errno) = nix::unistd::chdir("/") {
        return RootError::Switch {
            step: "chdir /",
            errno,
        };
    }
    let prog = c"/sbin/init";
    let Err(errno) = nix::unistd::execv(prog, &[prog]);
    RootError::Switch {
        step: "exec /sbin/init",
        errno,
    }
}
