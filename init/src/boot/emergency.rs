//! The emergency state: what PID 1 does when boot cannot go on. It prints
//! the diagnosis, keeps reaping and petting the watchdog (so the board
//! reboots by our timer, not by a watchdog bite), and reboots after the
//! board's delay. A field device therefore always recovers by itself.
use crate::boot::watchdog::Watchdog;
use crate::pid1::shutdown;
use std::fmt::Display;
use std::time::{Duration, Instant};

pub fn enter(reason: &dyn Display, delay_s: u32, mut watchdog: Option<&mut Watchdog>) -> ! {
    log::error!("EMERGENCY: {reason}");
    log::error!("EMERGENCY: boot cannot continue; rebooting in {delay_s} s");
    let until = Instant::now() + Duration::from_secs(u64::from(delay_s));
    while Instant::now() < until {
        if let Some(w) = watchdog.as_deref_mut() {
            w.pet();
        }
        crate::pid1::signals::reap();
        std::thread::sleep(Duration::from_millis(250));
    }
    nix::unistd::sync();
    shutdown::final_reboot(shutdown::Kind::Reboot)
}

/// Panic safety net of the plain build (`AZL_PLAIN_INIT=1`): log, then
/// reboot after the delay. The shipped init is built with
/// `panic=immediate-abort` (scripts/build-init.sh), where no hook runs: a
/// panic there aborts PID 1, the kernel panics and `panic=-1` reboots the
/// board. init is written not to panic (clippy denies the panicking calls).
pub fn install_panic_hook(delay_s: u32) {
    std::panic::set_hook(Box::new(move |info| {
        log::error!("EMERGENCY: init panicked: {info}");
        enter(&"internal error in init", delay_s, None)
    }));
}
