//! Starting one service process: argv, environment, user/group, working
//! directory, its own session (so it can be signalled as a process group),
//! its cgroup, stdout+stderr into a pipe init reads, and for
//! `ready = "notify"` a readiness pipe on fd 3 (`$NOTIFY_FD`).
//!
//! Written with `fork` + `execve` rather than `std::process::Command`: the
//! child must join a cgroup, start a session and take fd 3 in one place, and
//! Command's environment machinery is a large part of a binary that has to
//! stay under 512 KiB.
use crate::sys::process::{self, Prepared, NOTIFY_FD, STEP_EXEC, STEP_WORKDIR};
use crate::sys::process::{STEP_CGROUP, STEP_CREDENTIALS, STEP_FDS, STEP_SETSID};
use azl_formats::limits::{MAX_ENV_ENTRIES, MAX_EXEC_ARGS};
use azl_formats::Service;
use nix::fcntl::OFlag;
use nix::unistd::{pipe2, Pid};
use std::ffi::CString;
use std::fmt;
use std::os::fd::{AsRawFd, OwnedFd};

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
    /// Closes when the child exec'd, or carries (step, errno) when its setup
    /// failed: see [`exec_result`]. Not waited for here, so init can start
    /// the next service while this one execs.
    pub exec_status: OwnedFd,
    /// Read end of the readiness pipe (notify services only).
    pub notify: Option<OwnedFd>,
}

fn io(e: nix::errno::Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e as i32)
}

fn cstring(s: &str, what: &'static str) -> Result<CString, std::io::Error> {
    CString::new(s).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, what))
}

fn prepare(svc: &Service, notify: bool) -> Result<Prepared, std::io::Error> {
    let exec0 = svc.exec.first().map(String::as_str).unwrap_or("");
    let argv = svc
        .exec
        .iter()
        .map(|a| cstring(a, "NUL byte in exec"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut env: Vec<(String, String)> = vec![
        (
            "PATH".into(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ),
        ("HOME".into(), "/".into()),
        ("SERVICE_NAME".into(), svc.name.to_string()),
    ];
    if let Ok(term) = std::env::var("TERM") {
        env.push(("TERM".into(), term));
    }
    if notify {
        env.push(("NOTIFY_FD".into(), NOTIFY_FD.to_string()));
    }
    for (k, v) in &svc.env {
        env.retain(|(ek, _)| ek != k);
        env.push((k.clone(), v.clone()));
    }
    let envp = env
        .iter()
        .map(|(k, v)| cstring(&format!("{k}={v}"), "NUL byte in env"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Prepared {
        path: cstring(exec0, "NUL byte in exec")?,
        argv,
        envp,
        cwd: cstring(svc.workdir.as_deref().unwrap_or("/"), "NUL byte in workdir")?,
    })
}

/// What the child was doing when it failed.
fn step_name(step: u8) -> &'static str {
    match step {
        STEP_SETSID => "start a session",
        STEP_CGROUP => "join its cgroup",
        STEP_FDS => "set up stdio",
        STEP_CREDENTIALS => "switch user/group",
        STEP_WORKDIR => "enter its working directory",
        _ => "exec",
    }
}

/// Start `svc`. Failures before the fork are returned here; a failure of the
/// child's setup or exec arrives later on [`Spawned::exec_status`].
pub fn spawn(svc: &Service, cgroup_dir: Option<OwnedFd>) -> Result<Spawned, SpawnError> {
    let exec0 = svc.exec.first().cloned().unwrap_or_default();
    let fail = |err| SpawnError {
        service: svc.name.to_string(),
        exec: exec0.clone(),
        err,
    };
    if svc.exec.len() > MAX_EXEC_ARGS {
        return Err(fail(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "more arguments than init passes (limits::MAX_EXEC_ARGS)",
        )));
    }
    let notify_wanted = svc.ready == azl_formats::Readiness::Notify;
    let prepared = prepare(svc, notify_wanted).map_err(fail)?;
    if prepared.envp.len() > MAX_ENV_ENTRIES {
        return Err(fail(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "more environment variables than init passes (limits::MAX_ENV_ENTRIES)",
        )));
    }
    let (out_r, out_w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| fail(io(e)))?;
    let (err_r, err_w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| fail(io(e)))?;
    let notify = if notify_wanted {
        Some(pipe2(OFlag::O_CLOEXEC).map_err(|e| fail(io(e)))?)
    } else {
        None
    };
    let devnull = std::fs::File::open("/dev/null").map_err(fail)?;
    let fds = [
        devnull.as_raw_fd(),
        out_w.as_raw_fd(),
        cgroup_dir.as_ref().map_or(-1, |f| f.as_raw_fd()),
        notify.as_ref().map_or(-1, |(_, w)| w.as_raw_fd()),
    ];
    let pid = process::spawn_child(
        &prepared,
        svc.uid,
        svc.gid,
        fds,
        err_w.as_raw_fd(),
        cgroup_dir.as_ref(),
    )
    .map_err(fail)?;
    drop(err_w);
    drop(out_w);
    drop(devnull);
    drop(cgroup_dir);
    Ok(Spawned {
        pid: Pid::from_raw(pid),
        output: out_r,
        notify: notify.map(|(r, _w)| r),
        exec_status: err_r,
    })
}

/// What the exec-status pipe says, without blocking: `None` while the child
/// has neither exec'd nor failed, `Some(Ok)` once exec succeeded (the pipe
/// closed on exec), `Some(Err)` naming the step that failed.
pub fn exec_result(svc: &Service, fd: &OwnedFd) -> Option<Result<(), SpawnError>> {
    let mut report = [0u8; 5];
    let n = loop {
        match nix::unistd::read(fd, &mut report) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::EAGAIN) => return None,
            other => break other.unwrap_or(0),
        }
    };
    if n != 5 {
        return Some(Ok(()));
    }
    let [step, e @ ..] = report;
    let os = std::io::Error::from_raw_os_error(i32::from_ne_bytes(e));
    let what = match step {
        STEP_EXEC => os,
        STEP_WORKDIR => std::io::Error::new(
            os.kind(),
            format!(
                "cannot enter working directory {}: {os}",
                svc.workdir.as_deref().unwrap_or("/")
            ),
        ),
        s => std::io::Error::new(os.kind(), format!("cannot {}: {os}", step_name(s))),
    };
    Some(Err(SpawnError {
        service: svc.name.to_string(),
        exec: svc.exec.first().cloned().unwrap_or_default(),
        err: what,
    }))
}
