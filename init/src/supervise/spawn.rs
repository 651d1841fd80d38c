//! Starting one service process: argv, environment, user/group, working
//! directory, its own session (so it can be signalled as a process group),
//! its cgroup, stdout+stderr into a pipe init reads, and for
//! `ready = "notify"` a readiness pipe on fd 3 (`$NOTIFY_FD`).
use azl_formats::Service;
use nix::fcntl::OFlag;
use nix::unistd::{pipe2, Pid};
use std::fmt;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// The fd number a notify-ready service writes to.
pub const NOTIFY_FD: i32 = 3;

#[derive(Debug)]
pub struct SpawnError {
    pub service: String,
    pub exec: String,
    pub err: std::io::Error,
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "service {}: cannot start {}: {}",
            self.service, self.exec, self.err
        )
    }
}

pub struct Spawned {
    pub pid: Pid,
    /// Read end of stdout+stderr.
    pub output: OwnedFd,
    /// Read end of the readiness pipe (notify services only).
    pub notify: Option<OwnedFd>,
}

fn io(e: nix::errno::Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e as i32)
}

pub fn spawn(svc: &Service, cgroup_procs: Option<OwnedFd>) -> Result<Spawned, SpawnError> {
    let exec0 = svc.exec.first().cloned().unwrap_or_default();
    let fail = |err| SpawnError {
        service: svc.name.to_string(),
        exec: exec0.clone(),
        err,
    };
    let (out_r, out_w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| fail(io(e)))?;
    let out_w2 = out_w.try_clone().map_err(fail)?;
    let notify = match svc.ready {
        azl_formats::Readiness::Notify => Some(pipe2(OFlag::O_CLOEXEC).map_err(|e| fail(io(e)))?),
        azl_formats::Readiness::Started => None,
    };

    let mut cmd = Command::new(&exec0);
    cmd.args(svc.exec.iter().skip(1))
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOME", "/")
        .env("SERVICE_NAME", svc.name.as_str())
        .current_dir(svc.workdir.as_deref().unwrap_or("/"))
        .stdin(Stdio::null())
        .stdout(Stdio::from(out_w))
        .stderr(Stdio::from(out_w2));
    if let Ok(term) = std::env::var("TERM") {
        cmd.env("TERM", term);
    }
    for (k, v) in &svc.env {
        cmd.env(k, v);
    }
    if svc.uid != 0 || svc.gid != 0 {
        cmd.gid(svc.gid).uid(svc.uid);
    }
    if notify.is_some() {
        cmd.env("NOTIFY_FD", NOTIFY_FD.to_string());
    }
    let procs_fd = cgroup_procs.as_ref().map(|f| f.as_raw_fd());
    let notify_w = notify.as_ref().map(|(_, w)| w.as_raw_fd());
    // SAFETY: the closure runs in the forked child before exec and only
    // makes async-signal-safe system calls on fds that are open in the child.
    unsafe {
        cmd.pre_exec(move || {
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(fd) = procs_fd {
                // Join the service's cgroup ("0" = the writing process).
                if libc::write(fd, b"0".as_ptr().cast(), 1) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if let Some(fd) = notify_w {
                if fd == NOTIFY_FD {
                    libc::fcntl(fd, libc::F_SETFD, 0);
                } else if libc::dup2(fd, NOTIFY_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(fail)?;
    // The child is reaped by the main loop's waitpid(-1); dropping the
    // handle does not wait.
    let pid = Pid::from_raw(child.id() as i32);
    drop(cmd);
    drop(cgroup_procs);
    Ok(Spawned {
        pid,
        output: out_r,
        notify: notify.map(|(r, _w)| r),
    })
}
