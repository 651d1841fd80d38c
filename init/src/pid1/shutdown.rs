//! The end of the line, after services are stopped: signal whatever is
//! left, sync, unmount, and `reboot(2)` — poweroff or restart.
use crate::boot::mounts;
use nix::sys::reboot::{reboot, RebootMode};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Poweroff,
    Reboot,
}

/// Terminate all remaining processes, sync, unmount, and reboot/power off.
/// Never returns; if the kernel refuses `reboot(2)` we wait forever (the
/// watchdog, if any, will reset the board).
pub fn finish(kind: Kind) -> ! {
    log::info!("shutdown: terminating remaining processes");
    let all = Pid::from_raw(-1);
    if kill(all, Signal::SIGTERM).is_ok() {
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until {
            crate::pid1::signals::reap();
            // Every process left is ours (orphans are re-parented to PID 1),
            // so "no children" means nothing is left.
            if !crate::pid1::signals::children_left() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = kill(all, Signal::SIGKILL);
        std::thread::sleep(Duration::from_millis(50));
        crate::pid1::signals::reap();
    }
    nix::unistd::sync();
    mounts::unmount_all();
    nix::unistd::sync();
    final_reboot(kind)
}

/// `reboot(2)` with no cleanup at all.
pub fn final_reboot(kind: Kind) -> ! {
    let mode = match kind {
        Kind::Poweroff => RebootMode::RB_POWER_OFF,
        Kind::Reboot => RebootMode::RB_AUTOBOOT,
    };
    log::info!(
        "shutdown: {}",
        if kind == Kind::Poweroff {
            "power off"
        } else {
            "reboot"
        }
    );
    loop {
        let Err(e) = reboot(mode);
        log::error!("reboot(2) failed: {}; waiting for the watchdog", e.desc());
        std::thread::sleep(Duration::from_secs(60));
    }
}
