//! The device's identity and minimal networking: the hostname and the
//! loopback interface (so local sockets on 127.0.0.1 work before any
//! network service runs).
use nix::errno::Errno;

pub fn set_hostname(name: &str) {
    match nix::unistd::sethostname(name) {
        Ok(()) => log::info!("hostname: {name}"),
        Err(e) => log::warn!("cannot set hostname {name:?}: {}", e.desc()),
    }
}

fn loopback_up() -> Result<(), Errno> {
    let sock = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    crate::sys::net::add_if_flags(
        &sock,
        "lo",
        (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short,
    )
}

pub fn bring_up_loopback() {
    match loopback_up() {
        Ok(()) => log::info!("network: lo up"),
        Err(e) => log::warn!("cannot bring up loopback: {}", e.desc()),
    }
}
