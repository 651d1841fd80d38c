//! Forking a service process and setting it up in the child (session,
//! cgroup, stdio, notify fd, credentials, working directory, exec) with
//! async-signal-safe calls only; failures are reported to the parent as
//! (step, errno) through a pipe.
use azl_formats::limits::{MAX_ENV_ENTRIES, MAX_EXEC_ARGS};
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// The fd number a notify-ready service writes to.
pub const NOTIFY_FD: i32 = 3;

/// Everything the child needs, prepared before `fork` so that the child
/// only makes async-signal-safe system calls.
pub struct Prepared {
    pub path: CString,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    pub cwd: CString,
}

/// Fork (into `cgroup` when given) and, in the child, set up and exec
/// `p`; returns the child's pid in the parent. `fds`: stdin, output,
/// cgroup dir to join (-1: none), notify write end (-1: none).
pub fn spawn_child(
    p: &Prepared,
    uid: u32,
    gid: u32,
    fds: [RawFd; 4],
    err_fd: RawFd,
    cgroup: Option<&OwnedFd>,
) -> Result<i32, std::io::Error> {
    let (pid, placed) = fork_into(cgroup)?;
    let [stdin, output, procs, notify] = fds;
    let fds = [stdin, output, if placed { -1 } else { procs }, notify];
    if pid == 0 {
        // SAFETY: we are the freshly forked child of single-threaded PID 1.
        unsafe { child(p, uid, gid, fds, err_fd) }
    }
    Ok(pid)
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
    // One slot more than the limits allow, for the terminating NULL (spawn
    // refused anything longer before the fork).
    let mut argv: [*const libc::c_char; MAX_EXEC_ARGS + 1] = [std::ptr::null(); MAX_EXEC_ARGS + 1];
    for (slot, a) in argv.iter_mut().zip(p.argv.iter().take(MAX_EXEC_ARGS)) {
        *slot = a.as_ptr();
    }
    let mut envp: [*const libc::c_char; MAX_ENV_ENTRIES + 1] =
        [std::ptr::null(); MAX_ENV_ENTRIES + 1];
    for (slot, e) in envp.iter_mut().zip(p.envp.iter().take(MAX_ENV_ENTRIES)) {
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

pub const STEP_SETSID: u8 = 1;
pub const STEP_CGROUP: u8 = 2;
pub const STEP_FDS: u8 = 3;
pub const STEP_CREDENTIALS: u8 = 4;
pub const STEP_WORKDIR: u8 = 5;
pub const STEP_EXEC: u8 = 6;
