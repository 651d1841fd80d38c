//! The one conversion from `std::io::Error` to `Errno` init's typed errors
//! carry (EIO when the error has no OS code).
use nix::errno::Errno;

pub fn of(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}
