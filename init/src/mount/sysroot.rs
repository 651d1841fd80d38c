//! Mounts below `/sysroot`, the new root being assembled: each failure is a
//! [`MountError`] naming what, where, and the kernel's verity complaints
//! (a squashfs mount over a corrupted verity device fails with EIO and the
//! reason is only in the kernel log).
use crate::verify::health::kernel_verity_errors;
use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use std::fmt;

/// Where the new root is assembled.
pub const NEWROOT: &str = azl_formats::paths::SYSROOT;

/// A mount (or read) below the new root that failed.
#[derive(Debug)]
pub struct MountError {
    pub what: String,
    pub target: String,
    pub errno: Errno,
    /// Kernel log lines about verity corruption at the time.
    pub kernel: Vec<String>,
}

impl fmt::Display for MountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot mount {} on {}: {}",
            self.what,
            self.target,
            self.errno.desc()
        )?;
        for k in &self.kernel {
            write!(f, "\n  kernel: {k}")?;
        }
        Ok(())
    }
}

fn do_mount(
    src: &str,
    target: &str,
    fstype: &str,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), MountError> {
    let _ = std::fs::create_dir_all(target);
    mount(Some(src), target, Some(fstype), flags, data).map_err(|errno| MountError {
        what: format!("{fstype} {src}"),
        target: target.to_string(),
        errno,
        kernel: kernel_verity_errors(),
    })
}

/// Mount the verified squashfs (`/dev/dm-N`) read-only on [`NEWROOT`].
pub fn mount_root(node: &str) -> Result<(), MountError> {
    do_mount(
        node,
        NEWROOT,
        "squashfs",
        MsFlags::MS_RDONLY | MsFlags::MS_NODEV,
        None,
    )
}

/// Mount the data partition read-write on `/sysroot/data`.
pub fn mount_data(dev: &str) -> Result<(), MountError> {
    do_mount(
        dev,
        azl_formats::paths::SYSROOT_DATA,
        "ext4",
        MsFlags::MS_NODEV | MsFlags::MS_NOSUID,
        None,
    )
}

/// Read a file of the mounted new root (`path` is absolute in the new root).
pub fn read(path: &str) -> Result<Vec<u8>, MountError> {
    let full = format!("{NEWROOT}{path}");
    std::fs::read(&full).map_err(|e| MountError {
        what: format!("read {full}"),
        target: NEWROOT.into(),
        errno: crate::errno::of(&e),
        kernel: kernel_verity_errors(),
    })
}
