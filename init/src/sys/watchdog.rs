//! The watchdog ioctls of `<linux/watchdog.h>`.
use nix::errno::Errno;
use std::fs::File;
use std::os::fd::AsRawFd;

nix::ioctl_read!(wdioc_keepalive, b'W', 5, libc::c_int);
nix::ioctl_readwrite!(wdioc_settimeout, b'W', 6, libc::c_int);

/// Ask for a timeout of `seconds`; returns the timeout the driver set.
pub fn set_timeout(dev: &File, seconds: i32) -> Result<i32, Errno> {
    let mut t: libc::c_int = seconds;
    // SAFETY: valid fd and a pointer to a live c_int.
    unsafe { wdioc_settimeout(dev.as_raw_fd(), &mut t) }?;
    Ok(t)
}

/// Pet the watchdog.
pub fn keepalive(dev: &File) -> Result<(), Errno> {
    let mut dummy: libc::c_int = 0;
    // SAFETY: valid fd and a pointer to a live c_int.
    unsafe { wdioc_keepalive(dev.as_raw_fd(), &mut dummy) }?;
    Ok(())
}
