//! The hardware watchdog: opened once at boot with the board's timeout and
//! petted from the main loop. If the main loop wedges, petting stops and the
//! board resets — that is the point, so nothing else pets it.
use crate::sys::watchdog as sys;
use azl_formats::Watchdog as WatchdogConfig;
use nix::errno::Errno;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct WatchdogError {
    pub device: String,
    pub errno: Errno,
}

impl fmt::Display for WatchdogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "watchdog {}: {}", self.device, self.errno.desc())
    }
}

pub struct Watchdog {
    file: File,
    interval: Duration,
    next: Instant,
}

impl Watchdog {
    /// Open and arm the watchdog. Opening arms it: from here on it must be petted.
    pub fn open(cfg: &WatchdogConfig) -> Result<Watchdog, WatchdogError> {
        let err = |errno| WatchdogError {
            device: cfg.device.clone(),
            errno,
        };
        let file = OpenOptions::new()
            .write(true)
            .open(&cfg.device)
            .map_err(|e| err(crate::errno::of(&e)))?;
        let mut timeout: libc::c_int = cfg.timeout_s.clamp(1, 3600) as libc::c_int;
        match sys::set_timeout(&file, timeout) {
            Ok(t) => timeout = t,
            Err(e) => {
                // Some drivers have a fixed timeout; use what they report.
                log::warn!(
                    "watchdog {}: cannot set timeout {}s: {}",
                    cfg.device,
                    cfg.timeout_s,
                    e.desc()
                );
            }
        }
        let effective = u64::try_from(timeout).unwrap_or(1).max(1);
        let interval = Duration::from_millis(effective * 1000 / 3);
        log::info!(
            "watchdog {}: armed, timeout {effective}s, petting every {} ms",
            cfg.device,
            interval.as_millis()
        );
        let mut wd = Watchdog {
            file,
            interval,
            next: Instant::now(),
        };
        wd.pet();
        Ok(wd)
    }

    pub fn pet(&mut self) {
        if sys::keepalive(&self.file).is_err() {
            // Fall back to the write interface.
            let _ = nix::unistd::write(&self.file, b"\0");
        }
        self.next = Instant::now() + self.interval;
    }

    /// Pet if due; returns when it is next due.
    pub fn service(&mut self, now: Instant) -> Instant {
        if now >= self.next {
            self.pet();
        }
        self.next
    }
}
