//! `FS_IOC_GETFLAGS`/`FS_IOC_SETFLAGS` (`<linux/fs.h>`): efivarfs marks
//! existing variables immutable; the flag must be cleared before a
//! variable is rewritten or deleted.
use nix::errno::Errno;
use std::fs::File;
use std::os::fd::AsRawFd;

/// `FS_IMMUTABLE_FL`.
pub const IMMUTABLE: libc::c_long = 0x10;

nix::ioctl_read!(fs_ioc_getflags, b'f', 1, libc::c_long);
nix::ioctl_write_ptr!(fs_ioc_setflags, b'f', 2, libc::c_long);

/// Clear `FS_IMMUTABLE_FL` on `file` if it is set. The kernel reads and
/// writes an int through the pointer; a zeroed long holds it in its low
/// bytes on little-endian arm64 and x86_64.
pub fn clear_immutable(file: &File) -> Result<(), Errno> {
    let mut flags: libc::c_long = 0;
    // SAFETY: valid fd and a pointer to a live, zero-initialised c_long.
    unsafe { fs_ioc_getflags(file.as_raw_fd(), &mut flags) }?;
    if flags & IMMUTABLE == 0 {
        return Ok(());
    }
    let cleared = flags & !IMMUTABLE;
    // SAFETY: valid fd and a pointer to a live c_long.
    unsafe { fs_ioc_setflags(file.as_raw_fd(), &cleared) }?;
    Ok(())
}
