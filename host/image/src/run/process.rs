//! Supervising the QEMU process: forward SIGINT/SIGTERM/SIGHUP received by
//! imagegen (so the TPM and temp files are cleaned up after QEMU exits),
//! enforce `--timeout`, and turn the way QEMU ended into an exit code.
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Exit code of a run stopped by `--timeout` (as timeout(1)).
pub const TIMEOUT_EXIT: i32 = 124;
/// After SIGTERM, how long QEMU gets before SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(50);

const FORWARDED: &[i32] = &[
    signal_hook::consts::SIGINT,
    signal_hook::consts::SIGTERM,
    signal_hook::consts::SIGHUP,
];

/// How the supervised process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Exited(ExitStatus),
    TimedOut,
    /// imagegen received this signal and stopped the child.
    Signalled(i32),
}

impl Ending {
    /// The exit code imagegen should end with.
    pub fn exit_code(&self) -> i32 {
        use std::os::unix::process::ExitStatusExt;
        match self {
            Ending::Exited(s) => s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0)),
            Ending::TimedOut => TIMEOUT_EXIT,
            Ending::Signalled(sig) => 128 + sig,
        }
    }
}

/// Send SIGTERM to `child`.
pub fn terminate(child: &Child) -> std::io::Result<()> {
    let pid = rustix::process::Pid::from_child(child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).map_err(Into::into)
}

/// Wait for `child`, stopping it after `timeout` or when a signal arrives.
pub fn supervise(child: &mut Child, timeout: Option<Duration>) -> std::io::Result<Ending> {
    let received = Arc::new(AtomicUsize::new(0));
    let mut ids = Vec::new();
    for &sig in FORWARDED {
        ids.push(signal_hook::flag::register_usize(
            sig,
            received.clone(),
            sig as usize,
        )?);
    }
    let result = wait_loop(child, timeout, &received);
    for id in ids {
        signal_hook::low_level::unregister(id);
    }
    result
}

fn wait_loop(
    child: &mut Child,
    timeout: Option<Duration>,
    received: &AtomicUsize,
) -> std::io::Result<Ending> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut stopping: Option<(Instant, Option<i32>)> = None;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(match stopping {
                None => Ending::Exited(status),
                Some((_, None)) => Ending::TimedOut,
                Some((_, Some(sig))) => Ending::Signalled(sig),
            });
        }
        let sig = received.swap(0, Ordering::SeqCst);
        match stopping {
            None if sig != 0 => {
                stopping = Some((Instant::now(), Some(sig as i32)));
                terminate(child)?;
            }
            None if deadline.is_some_and(|d| Instant::now() >= d) => {
                stopping = Some((Instant::now(), None));
                terminate(child)?;
            }
            Some((since, _)) if since.elapsed() > KILL_GRACE => {
                child.kill()?;
            }
            _ => {}
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn exit_codes_and_timeout() {
        let mut c = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
        let e = supervise(&mut c, Some(Duration::from_secs(30))).unwrap();
        assert_eq!(e.exit_code(), 3);

        let start = Instant::now();
        let mut c = Command::new("sleep").arg("30").spawn().unwrap();
        let e = supervise(&mut c, Some(Duration::from_millis(200))).unwrap();
        assert_eq!(e, Ending::TimedOut);
        assert_eq!(e.exit_code(), 124);
        assert!(start.elapsed() < Duration::from_secs(5));

        let mut c = Command::new("sh")
            .args(["-c", "kill -KILL $$"])
            .spawn()
            .unwrap();
        assert_eq!(supervise(&mut c, None).unwrap().exit_code(), 137);
    }
}
