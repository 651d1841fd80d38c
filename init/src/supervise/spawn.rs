//! Starting one service process: argv, environment, user/group, working
//! directory, its own session (so it can be signalled as a process group),
//! its cgroup, stdout+stderr into a pipe init reads, and for
//! `ready = "notify"` a readiness pipe on fd 3 (`$NOTIFY_FD`).
//!
//! Written with `fork` + `execve` rather than `std::process::Command`: the
//! child must join a cgroup, start a session and take fd 3 in one place, and
//! Command's environment machinery is a large part of a binary that has to
//! stay under 512 KiB.
use azl_formats::Service;
use nix::fcntl::OFlag;
use nix::unistd::{pipe2, Pid};
use std::ffi::CString;
use std::fmt;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

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

/// Everything the child needs, prepared before `fork` so that the child
/// only makes async-signal-safe system calls.
struct Prepared {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    cwd: CString,
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

/// In the forked child: set up and exec; on failure report errno through
/// `err_fd` and exit. Only async-signal-safe calls.
///
/// # Safety
/// Must only run in a freshly forked child of a single-threaded parent.
unsafe fn child(
    p: &Prepared,
    svc_uid: u32,
    svc_gid: u32,
    fds: [RawFd; 4], /* stdin, output, cgroup dir to join (-1: none/already in), notify (-1) */
    err_fd: RawFd,
) -> ! {
    // Report (step, errno) to the parent, which names the failing step.
    let fail = |step: u8| -> ! {
        let e = *libc::__errno_location();
        let mut b = [0u8; 5];
        b[0] = step;
        b[1..].copy_from_slice(&e.to_ne_bytes());
        libc::write(err_fd, b.as_ptr().cast(), b.len());
        libc::_exit(127)
    };
    let [stdin, output, procs, notify] = fds;
    let mut empty: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut empty);
    libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    if libc::setsid() < 0 {
        fail(STEP_SETSID);
    }
    if procs >= 0 {
        // Fallback when clone3 could not place us: join by writing our pid.
        let f = libc::openat(
            procs,
            c"cgroup.procs".as_ptr(),
            libc::O_WRONLY | libc::O_CLOEXEC,
        );
        if f < 0 || libc::write(f, b"0".as_ptr().cast(), 1) < 0 {
            fail(STEP_CGROUP);
        }
        libc::close(f);
    }
    if libc::dup2(stdin, 0) < 0 || libc::dup2(output, 1) < 0 || libc::dup2(output, 2) < 0 {
        fail(STEP_FDS);
    }
    if notify >= 0 {
        if notify == NOTIFY_FD {
            libc::fcntl(notify, libc::F_SETFD, 0);
        } else if libc::dup2(notify, NOTIFY_FD) < 0 {
            fail(STEP_FDS);
        }
    }
    let drop_privileges = svc_uid != 0 || svc_gid != 0;
    if drop_privileges
        && (libc::setgroups(0, std::ptr::null()) < 0
            || libc::setgid(svc_gid) < 0
            || libc::setuid(svc_uid) < 0)
    {
        fail(STEP_CREDENTIALS);
    }
    if libc::chdir(p.cwd.as_ptr()) < 0 {
        fail(STEP_WORKDIR);
    }
    let mut argv: [*const libc::c_char; 64] = [std::ptr::null(); 64];
    for (slot, a) in argv.iter_mut().zip(p.argv.iter().take(63)) {
        *slot = a.as_ptr();
    }
    let mut envp: [*const libc::c_char; 64] = [std::ptr::null(); 64];
    for (slot, e) in envp.iter_mut().zip(p.envp.iter().take(63)) {
        *slot = e.as_ptr();
    }
    libc::execve(p.path.as_ptr(), argv.as_ptr(), envp.as_ptr());
    fail(STEP_EXEC)
}

/// `struct clone_args` up to `cgroup` (CLONE_ARGS_SIZE_VER2, 88 bytes).
#[repr(C)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Fork, directly into `cgroup` when given (`clone3` + `CLONE_INTO_CGROUP`,
/// Linux 5.7+). Returns (pid or 0 in the child, whether the child was
/// placed in the cgroup); falls back to plain `fork` when clone3 is not
/// available, and the child then joins the cgroup itself.
fn fork_into(cgroup: Option<&OwnedFd>) -> Result<(i32, bool), std::io::Error> {
    if let Some(dir) = cgroup {
        let args = CloneArgs {
            flags: CLONE_INTO_CGROUP,
            pidfd: 0,
            child_tid: 0,
            parent_tid: 0,
            exit_signal: libc::SIGCHLD as u64,
            stack: 0,
            stack_size: 0,
            tls: 0,
            set_tid: 0,
            set_tid_size: 0,
            cgroup: dir.as_raw_fd() as u64,
        };
        // SAFETY: like fork (no CLONE_VM, no new stack): the child gets a
        // copy of this single-threaded process and only runs `child`.
        let r = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &args as *const CloneArgs,
                std::mem::size_of::<CloneArgs>(),
            )
        };
        if r >= 0 {
            return Ok((r as i32, true));
        }
        let e = std::io::Error::last_os_error();
        if !matches!(
            e.raw_os_error(),
            Some(libc::ENOSYS) | Some(libc::EINVAL) | Some(libc::E2BIG)
        ) {
            return Err(e);
        }
    }
    // SAFETY: PID 1 is single-threaded; the child runs only `child`.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((pid, false))
}

const STEP_SETSID: u8 = 1;
const STEP_CGROUP: u8 = 2;
const STEP_FDS: u8 = 3;
const STEP_CREDENTIALS: u8 = 4;
const STEP_WORKDIR: u8 = 5;
const STEP_EXEC: u8 = 6;

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
    if svc.exec.len() > 63 {
        return Err(fail(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "more than 63 arguments",
        )));
    }
    let notify_wanted = svc.ready == azl_formats::Readiness::Notify;
    let prepared = prepare(svc, notify_wanted).map_err(fail)?;
    if prepared.envp.len() > 63 {
        return Err(fail(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "more than 60 environment variables",
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
    let (pid, fds) = match fork_into(cgroup_dir.as_ref()) {
        Ok((pid, placed)) => (
            pid,
            if placed {
                [fds[0], fds[1], -1, fds[3]]
            } else {
                fds
            },
        ),
        Err(e) => return Err(fail(e)),
    };
    if pid == 0 {
        // SAFETY: we are the freshly forked child.
        unsafe { child(&prepared, svc.uid, svc.gid, fds, err_w.as_raw_fd()) }
    }
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
