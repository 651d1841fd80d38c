//! The device's identity and minimal networking: the hostname and the
//! loopback interface (so local sockets on 127.0.0.1 work before any
//! network service runs).
use nix::errno::Errno;

/// `struct ifreq` as the SIOC[GS]IFFLAGS ioctls use it (name + flags, padded).
#[repr(C)]
struct IfreqFlags {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

nix::ioctl_read_bad!(siocgifflags, libc::SIOCGIFFLAGS, IfreqFlags);
nix::ioctl_write_ptr_bad!(siocsifflags, libc::SIOCSIFFLAGS, IfreqFlags);

pub fn set_hostname(name: &str) {
    match nix::unistd::sethostname(name) {
        Ok(()) => log::info!("hostname: {name}"),
        Err(e) => log::warn!("cannot set hostname {name:?}: {}", e.desc()),
    }
}

fn loopback_up() -> Result<(), Errno> {
    use std::os::fd::AsRawFd;
    let sock = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let mut req = IfreqFlags {
        name: [0; libc::IFNAMSIZ],
        flags: 0,
        _pad: [0; 22],
    };
    req.name[..2].copy_from_slice(b"lo");
    // SAFETY: req is a properly sized ifreq for these ioctls.
    unsafe { siocgifflags(sock.as_raw_fd(), &mut req) }?;
    req.flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    // SAFETY: as above.
    unsafe { siocsifflags(sock.as_raw_fd(), &req) }?;
    Ok(())
}

pub fn bring_up_loopback() {
    match loopback_up() {
        Ok(()) => log::info!("network: lo up"),
        Err(e) => log::warn!("cannot bring up loopback: {}", e.desc()),
    }
}
