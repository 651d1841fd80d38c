//! The `log` backend of PID 1: every record goes to `/dev/kmsg` (so `dmesg`
//! and the kernel's timestamps have it) and to the console with a monotonic
//! timestamp — unless the kernel already echoes kmsg to the console at this
//! level, in which case the console copy is skipped so lines are not doubled.
//!
//! With `quiet` on the kernel command line the console only gets warnings
//! and errors (kmsg still gets everything), as for the kernel's own messages.
//!
//! Records whose target starts with `svc/` are service output and carry the
//! service name as their prefix instead of `init`.
use log::{Level, LevelFilter, Log, Metadata, Record};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::Mutex;

/// Longest line written to kmsg (the kernel truncates at ~1 KiB anyway).
const MAX_LINE: usize = 900;

struct Sinks {
    console: Option<File>,
    kmsg: Option<File>,
    /// The kernel prints kmsg records of level <= this to the console.
    console_loglevel: u8,
    /// `quiet` on the kernel command line: only warnings and errors go to
    /// the console (everything still goes to kmsg).
    quiet: bool,
}

pub struct Logger {
    sinks: Mutex<Sinks>,
}

static LOGGER: Logger = Logger {
    sinks: Mutex::new(Sinks {
        console: None,
        kmsg: None,
        console_loglevel: 0,
        quiet: false,
    }),
};

/// Install the logger; the console is opened now, kmsg once `/dev` exists
/// (see [`attach_kmsg`]).
pub fn install() {
    if let Ok(mut s) = LOGGER.sinks.lock() {
        s.console = OpenOptions::new().write(true).open("/dev/console").ok();
    }
    // Fails only if a logger is already set, which is harmless.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(LevelFilter::Info);
}

/// Open `/dev/kmsg` (after devtmpfs is mounted), lift the kernel's rate
/// limit on userspace kmsg writes (service output would be dropped), and
/// learn whether the kernel echoes our records to the console.
pub fn attach_kmsg() {
    // "on" = no rate limit for /dev/kmsg writers. Best effort.
    let _ = std::fs::write("/proc/sys/kernel/printk_devkmsg", "on\n");
    let level = std::fs::read_to_string("/proc/sys/kernel/printk")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|v| v.parse::<u8>().ok())
        })
        .unwrap_or(0);
    if let Ok(mut s) = LOGGER.sinks.lock() {
        s.kmsg = OpenOptions::new().write(true).open("/dev/kmsg").ok();
        s.console_loglevel = level;
        s.quiet = std::fs::read_to_string(azl_formats::paths::PROC_CMDLINE)
            .map(|c| c.split_whitespace().any(|w| w == "quiet"))
            .unwrap_or(false);
        if s.console.is_none() {
            s.console = OpenOptions::new().write(true).open("/dev/console").ok();
        }
    }
}

/// Syslog priority (facility daemon) for a level.
fn priority(level: Level) -> u8 {
    let sev = match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    };
    (3 << 3) | sev
}

fn monotonic() -> (u64, u32) {
    crate::sys::time::monotonic()
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

impl Log for Logger {
    fn enabled(&self, m: &Metadata) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let prefix = record.target().strip_prefix("svc/").unwrap_or("init");
        let tag = match record.level() {
            Level::Error => "error: ",
            Level::Warn => "warning: ",
            _ => "",
        };
        let msg = format!("{}", record.args());
        let msg = truncate(&msg, MAX_LINE);
        let Ok(mut s) = self.sinks.lock() else { return };
        let pri = priority(record.level());
        let mut echoed = false;
        if let Some(k) = s.kmsg.as_mut() {
            let line = format!("<{pri}>{prefix}: {tag}{msg}\n");
            echoed = k.write_all(line.as_bytes()).is_ok() && (pri & 7) < s.console_loglevel;
        }
        let quiet = s.quiet && record.level() > Level::Warn;
        if !echoed && !quiet {
            if let Some(c) = s.console.as_mut() {
                let (sec, us) = monotonic();
                let line = format!("[{sec:5}.{us:06}] {prefix}: {tag}{msg}\n");
                let _ = c.write_all(line.as_bytes());
            }
        }
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_on_char_boundary() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("hello", 10), "hello");
    }

    #[test]
    fn priorities() {
        assert_eq!(priority(Level::Info), 30);
        assert_eq!(priority(Level::Error), 27);
    }
}
