//! Signals PID 1 acts on, received through a signalfd in the main loop:
//! SIGCHLD (reap), SIGTERM and SIGPWR (power off), SIGINT (ctrl-alt-del:
//! reboot). Plus reaping itself: every exited child, ours or an orphan.
use crate::supervise::Exit;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// What a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Reap,
    Poweroff,
    Reboot,
    Ignore,
}

fn handled() -> SigSet {
    let mut s = SigSet::empty();
    for sig in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGPWR,
        Signal::SIGHUP,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ] {
        s.add(sig);
    }
    s
}

/// Block the handled signals and return a signalfd for them; also route
/// ctrl-alt-del to SIGINT instead of an immediate kernel reboot.
pub fn setup() -> nix::Result<SignalFd> {
    let set = handled();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    let _ = nix::sys::reboot::set_cad_enabled(false);
    SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
}

/// Drain the signalfd into actions.
pub fn read(fd: &SignalFd) -> Vec<Action> {
    let mut out = Vec::new();
    while let Ok(Some(info)) = fd.read_signal() {
        let action = match Signal::try_from(info.ssi_signo as i32) {
            Ok(Signal::SIGCHLD) => Action::Reap,
            Ok(Signal::SIGTERM | Signal::SIGPWR | Signal::SIGUSR2) => Action::Poweroff,
            Ok(Signal::SIGINT | Signal::SIGUSR1) => Action::Reboot,
            _ => Action::Ignore,
        };
        if action != Action::Reap {
            log::info!("signal {} from pid {}", info.ssi_signo, info.ssi_pid);
        }
        out.push(action);
    }
    out
}

/// Reap every exited child without blocking.
pub fn reap() -> Vec<(Pid, Exit)> {
    let mut out = Vec::new();
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => out.push((pid, Exit::Code(code))),
            Ok(WaitStatus::Signaled(pid, sig, _)) => out.push((pid, Exit::Signal(sig as i32))),
            Ok(WaitStatus::StillAlive) | Err(_) => break,
            Ok(_) => {}
        }
    }
    out
}

/// Does PID 1 still have children (running or unreaped)? Reaps one if it
/// happens to be waiting — only used at shutdown, where statuses no longer matter.
pub fn children_left() -> bool {
    !matches!(
        waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)),
        Err(nix::errno::Errno::ECHILD)
    )
}
