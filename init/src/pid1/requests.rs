//! The control handler: what PID 1 does for each initctl request, and the
//! answer it sends back.
use super::sequence::System;
use super::shutdown::Kind;
use super::ShutdownState;
use crate::initctl::protocol::Request;
use crate::initctl::server::Pending;
use std::time::{Duration, Instant};

/// Carry out one request and answer it.
pub(super) fn handle(s: &mut System, down: &mut ShutdownState, p: Pending, now: Instant) {
    let result = match &p.request {
        Request::Status => Ok(s.sup.status(now)),
        Request::Version => Ok(format!("azl-edge init {}", env!("CARGO_PKG_VERSION"))),
        Request::Start(name) => s.sup.start(name, &s.poller, now),
        Request::Stop(name) => s.sup.stop(name, now),
        Request::Restart(name) => s.sup.restart(name, &s.poller, now),
        Request::Reboot => {
            down.begin(&mut s.sup, Kind::Reboot, now);
            Ok("rebooting".into())
        }
        Request::Poweroff => {
            down.begin(&mut s.sup, Kind::Poweroff, now);
            Ok("powering off".into())
        }
        Request::Approve => match s.gate.as_mut() {
            Some(_) if down.kind.is_some() => {
                Err("the system is going down: the trial ends uncommitted".into())
            }
            None => Err("no trial is running: this boot has no health gate".into()),
            Some(g) => g.approve(),
        },
        Request::WatchdogTest => match s.watchdog.as_ref() {
            None => Err("no watchdog is armed on this device".into()),
            Some(_) => Ok("main loop stopping; the watchdog must reset the board".into()),
        },
    };
    let wedge = matches!(p.request, Request::WatchdogTest) && result.is_ok();
    p.answer(result);
    if wedge {
        wedge_for_watchdog_test();
    }
}

/// `initctl watchdog-test`: stop running the main loop (as a wedged init
/// would). Only the hardware watchdog can end this.
fn wedge_for_watchdog_test() -> ! {
    log::warn!("watchdog test: main loop stopped, no more watchdog pets");
    nix::unistd::sync();
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
