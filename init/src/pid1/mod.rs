//! PID 1: [`sequence`] brings the system up (boot → verify → measure →
//! mount → supervise), [`event_loop`] then reaps, supervises, pets the
//! watchdog and carries out shutdown, and [`requests`] answers initctl.
//! Nothing here may panic or return: fatal errors go to the emergency state.
mod event_loop;
pub mod poller;
mod requests;
mod sequence;
pub mod shutdown;
pub mod signals;

use crate::supervise::Supervisor;
use shutdown::Kind;
use std::time::Instant;

/// Run as PID 1: boot, then the event loop, forever.
pub fn run() -> ! {
    let system = sequence::boot();
    event_loop::run(system)
}

/// Whether (and how) the system is going down.
#[derive(Default)]
pub(crate) struct ShutdownState {
    kind: Option<Kind>,
    measured: bool,
}

impl ShutdownState {
    /// Start stopping services for `kind`, unless a shutdown is under way.
    pub(crate) fn begin(&mut self, sup: &mut Supervisor, kind: Kind, now: Instant) {
        if self.kind.is_none() {
            log::info!(
                "shutdown: {} requested; stopping services",
                if kind == Kind::Poweroff {
                    "power off"
                } else {
                    "reboot"
                }
            );
            self.kind = Some(kind);
            sup.begin_shutdown(now);
        }
    }
}
