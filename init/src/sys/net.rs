//! Interface flags through `SIOCGIFFLAGS`/`SIOCSIFFLAGS` (for bringing up lo).
use nix::errno::Errno;
use std::os::fd::{AsRawFd, OwnedFd};

/// `struct ifreq` as the SIOC[GS]IFFLAGS ioctls use it (name + flags, padded
/// to the union's 24 bytes).
#[repr(C)]
pub struct IfreqFlags {
    pub name: [u8; libc::IFNAMSIZ],
    pub flags: libc::c_short,
    pub pad: [u8; 22],
}

const _: () = assert!(std::mem::size_of::<IfreqFlags>() == 40);

nix::ioctl_read_bad!(siocgifflags, libc::SIOCGIFFLAGS, IfreqFlags);
nix::ioctl_write_ptr_bad!(siocsifflags, libc::SIOCSIFFLAGS, IfreqFlags);

/// Set `add` in the flags of interface `name` (≤ 15 bytes) through `sock`.
pub fn add_if_flags(sock: &OwnedFd, name: &str, add: libc::c_short) -> Result<(), Errno> {
    let mut req = IfreqFlags {
        name: [0; libc::IFNAMSIZ],
        flags: 0,
        pad: [0; 22],
    };
    let n = name.as_bytes();
    if n.len() >= libc::IFNAMSIZ {
        return Err(Errno::ENAMETOOLONG);
    }
    for (d, s) in req.name.iter_mut().zip(n) {
        *d = *s;
    }
    // SAFETY: `req` is a live, correctly sized ifreq; the kernel writes flags.
    unsafe { siocgifflags(sock.as_raw_fd(), &mut req) }?;
    req.flags |= add;
    // SAFETY: as above; the kernel only reads it.
    unsafe { siocsifflags(sock.as_raw_fd(), &req) }?;
    Ok(())
}
