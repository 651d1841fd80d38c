//! Service supervision: starts services from the service table in `after`
//! order once their dependencies are ready, captures their output into the
//! log, restarts them by policy with backoff, escalates crash loops, stops
//! them on request, and at shutdown stops them one by one in reverse order
//! (SIGTERM, grace period, SIGKILL of the whole cgroup).
pub mod cgroup;
pub mod lines;
mod policy;
pub mod spawn;

use crate::pid1::poller::{Poller, Token};
use crate::supervise::cgroup::Cgroups;
use azl_formats::{Readiness, ServiceTable};
use lines::LineBuffer;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
pub use policy::Exit;
use policy::{Decision, RestartState};
use std::fmt::Write as _;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

/// Lifecycle of one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not started yet: waiting for its `after` dependencies.
    Waiting,
    Running,
    /// Exited; restarts at the given time.
    Backoff(Instant),
    /// SIGTERM sent; SIGKILL at the deadline.
    Stopping {
        deadline: Instant,
        killed: bool,
    },
    /// Stopped on request (initctl stop, shutdown).
    Stopped,
    /// Exited and the policy does not restart it.
    Exited(Exit),
    /// Gave up after a crash loop, or could not be started.
    Failed,
}

/// What to do once a stopping service is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterStop {
    Stay,
    Start,
}

struct Unit {
    state: State,
    pid: Option<Pid>,
    started: Instant,
    ready: bool,
    ever_ready: bool,
    restart: RestartState,
    after_stop: AfterStop,
    output: Option<(OwnedFd, LineBuffer)>,
    notify: Option<OwnedFd>,
    /// The exec-status pipe of a process that has not exec'd yet.
    exec_status: Option<OwnedFd>,
    note: String,
    /// Successful starts since boot (the trial's hold counts restarts by it).
    starts: u32,
}

/// How one service stands, as the trial boot's health gate sees it
/// (`update::gate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Waiting for its dependencies, or started and not ready yet.
    Starting,
    Ready,
    /// Exited successfully and the policy does not restart it (a one-shot).
    Done,
    /// Exited and waiting for its restart.
    Restarting,
    /// Stopped (or stopping) on request.
    Stopped,
    /// Exited for good with a failure, or gave up (the text says how).
    Down(String),
}

/// One service for the health gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceView {
    pub name: String,
    pub health: Health,
    pub starts: u32,
}

/// Something the supervisor needs PID 1 to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Escalation {
    Reboot(String),
}

pub struct Supervisor {
    table: ServiceTable,
    /// `after` of each service as table indices (resolved once).
    after: Vec<Vec<Option<usize>>>,
    units: Vec<Unit>,
    cgroups: Cgroups,
    default_grace: Duration,
    shutting_down: bool,
    ready_announced: bool,
    /// Set when "ready" was just announced, until taken by [`Self::take_ready`].
    ready_pending: bool,
    escalation: Option<Escalation>,
}

fn idx32(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

impl Supervisor {
    pub fn new(table: ServiceTable, cgroups: Cgroups, default_grace: Duration) -> Supervisor {
        let now = Instant::now();
        let units = table
            .services
            .iter()
            .map(|_| Unit {
                state: State::Waiting,
                pid: None,
                started: now,
                ready: false,
                ever_ready: false,
                restart: RestartState::default(),
                after_stop: AfterStop::Stay,
                output: None,
                notify: None,
                exec_status: None,
                note: String::new(),
                starts: 0,
            })
            .collect();
        let after = policy::resolve_after(&table.services);
        Supervisor {
            after,
            table,
            units,
            cgroups,
            default_grace,
            shutting_down: false,
            ready_announced: false,
            ready_pending: false,
            escalation: None,
        }
    }

    /// Is dependency `i` satisfied (ready, or finished successfully)?
    fn satisfied(&self, i: usize) -> bool {
        self.units.get(i).is_some_and(|u| {
            let exited = match u.state {
                State::Exited(e) => Some(e),
                _ => None,
            };
            policy::dependency_met(u.state == State::Running, u.ready, exited)
        })
    }

    fn deps_ready(&self, i: usize) -> Result<(), String> {
        let Some(svc) = self.table.services.get(i) else {
            return Ok(());
        };
        let deps = self.after.get(i).map_or(&[][..], Vec::as_slice);
        match policy::first_unmet(deps, |j| self.satisfied(j)) {
            None => Ok(()),
            Some(k) => Err(svc.after.get(k).map(|a| a.to_string()).unwrap_or_default()),
        }
    }

    fn start_unit(&mut self, i: usize, poller: &Poller, now: Instant) {
        let (Some(svc), Some(unit)) = (self.table.services.get(i), self.units.get_mut(i)) else {
            return;
        };
        let procs = match self.cgroups.prepare(&svc.name, svc.memory_max) {
            Ok(p) => p,
            Err(e) => {
                log::warn!("{e}; starting {} outside its cgroup", svc.name);
                None
            }
        };
        match spawn::spawn(svc, procs) {
            Ok(sp) => {
                set_nonblocking(&sp.output);
                poller.add(sp.output.as_fd(), Token::Output(idx32(i)));
                if let Some(old) = unit.output.replace((sp.output, LineBuffer::new())) {
                    poller.remove(old.0.as_fd());
                }
                if let Some(n) = &sp.notify {
                    set_nonblocking(n);
                    poller.add(n.as_fd(), Token::Notify(idx32(i)));
                }
                if let Some(old) = std::mem::replace(&mut unit.notify, sp.notify) {
                    poller.remove(old.as_fd());
                }
                set_nonblocking(&sp.exec_status);
                poller.add(sp.exec_status.as_fd(), Token::Exec(idx32(i)));
                if let Some(old) = unit.exec_status.replace(sp.exec_status) {
                    poller.remove(old.as_fd());
                }
                unit.pid = Some(sp.pid);
                unit.starts = unit.starts.saturating_add(1);
                unit.state = State::Running;
                unit.started = now;
                // "started" readiness: once the exec is confirmed (on_exec).
                unit.ready = false;
                unit.note.clear();
                log::info!("started {} (pid {})", svc.name, sp.pid);
            }
            Err(e) => {
                log::error!("{e}");
                unit.note = e.err.to_string();
                // A missing binary will not appear by retrying quickly, but
                // a transient failure (EAGAIN, ENOMEM) might: use the policy.
                unit.state = State::Failed;
                unit.pid = None;
                let decision = unit
                    .restart
                    .on_exit(svc, Exit::Code(127), Duration::ZERO, now);
                self.apply_decision(i, decision, now);
            }
        }
    }

    fn apply_decision(&mut self, i: usize, decision: Decision, now: Instant) {
        let (Some(svc), Some(unit)) = (self.table.services.get(i), self.units.get_mut(i)) else {
            return;
        };
        match decision {
            Decision::Restart(d) => {
                log::info!(
                    "{}: restarting in {} ms (restart {})",
                    svc.name,
                    d.as_millis(),
                    unit.restart.total
                );
                unit.state = State::Backoff(now + d);
            }
            Decision::Stay => {}
            Decision::CrashLoop => {
                let cl = svc.crash_loop;
                let (note, reboot) = policy::crash_loop_outcome(cl.action);
                log::error!(
                    "{}: crash loop (more than {} restarts in {} s): {}",
                    svc.name,
                    cl.max_restarts,
                    cl.window_s,
                    if reboot { "rebooting" } else { "giving up" }
                );
                unit.state = State::Failed;
                unit.note = note.into();
                if reboot {
                    self.escalation = Some(Escalation::Reboot(format!(
                        "service {} crash loop",
                        svc.name
                    )));
                }
            }
        }
    }

    /// Advance time: start services whose dependencies are ready, restart
    /// those whose backoff expired, escalate stops past their grace, and
    /// during shutdown stop the next service.
    pub fn tick(&mut self, poller: &Poller, now: Instant) {
        if self.shutting_down {
            self.shutdown_step(now);
        }
        for i in 0..self.units.len() {
            let state = self.units.get(i).map(|u| u.state);
            match state {
                Some(State::Waiting) if !self.shutting_down => match self.deps_ready(i) {
                    Ok(()) => self.start_unit(i, poller, now),
                    Err(dep) => {
                        if let Some(u) = self.units.get_mut(i) {
                            u.note = format!("waiting for {dep}");
                        }
                    }
                },
                Some(State::Backoff(at)) if !self.shutting_down && now >= at => {
                    self.start_unit(i, poller, now)
                }
                Some(State::Stopping {
                    deadline,
                    killed: false,
                }) if now >= deadline => self.kill_unit(i, now),
                Some(State::Stopping {
                    deadline,
                    killed: true,
                }) if now >= deadline => self.abandon_unit(i),
                _ => {}
            }
        }
        self.announce_ready();
    }

    fn kill_unit(&mut self, i: usize, now: Instant) {
        let (Some(svc), Some(unit)) = (self.table.services.get(i), self.units.get_mut(i)) else {
            return;
        };
        log::warn!(
            "{}: did not stop within its grace period, killing",
            svc.name
        );
        if let Some(pid) = unit.pid {
            let _ = killpg(pid, Signal::SIGKILL);
        }
        self.cgroups.kill_all(&svc.name);
        // Give the kernel a moment to deliver; after that we stop waiting.
        unit.state = State::Stopping {
            deadline: now + Duration::from_secs(2),
            killed: true,
        };
    }

    /// SIGKILL did not end it (stuck in the kernel): stop waiting for it.
    fn abandon_unit(&mut self, i: usize) {
        let (Some(svc), Some(unit)) = (self.table.services.get(i), self.units.get_mut(i)) else {
            return;
        };
        log::error!(
            "{}: still alive after SIGKILL (pid {:?}), abandoning it",
            svc.name,
            unit.pid
        );
        unit.pid = None;
        unit.state = State::Stopped;
        unit.note = "abandoned after SIGKILL".into();
    }

    fn announce_ready(&mut self) {
        if self.ready_announced {
            return;
        }
        let settled = self.units.iter().all(|u| {
            u.ever_ready || matches!(u.state, State::Exited(_) | State::Failed | State::Stopped)
        });
        if settled {
            self.ready_announced = true;
            self.ready_pending = true;
            log::info!(
                "ready: {} services up, {} ms since kernel start",
                self.units.len(),
                crate::sys::time::boot_ms()
            );
        }
    }

    /// The earliest time `tick` has work to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.units
            .iter()
            .filter_map(|u| match u.state {
                State::Backoff(t) => Some(t),
                State::Stopping { deadline, .. } => Some(deadline),
                _ => None,
            })
            .min()
    }

    /// A child exited; returns false when it was not one of ours (an orphan).
    pub fn on_exit(&mut self, pid: Pid, exit: Exit, poller: &Poller, now: Instant) -> bool {
        let Some(i) = self.units.iter().position(|u| u.pid == Some(pid)) else {
            return false;
        };
        // A failed exec's reason, before its exit is handled.
        self.on_exec(idx32(i), poller);
        self.drain_output(i, poller);
        let (Some(svc), Some(unit)) = (self.table.services.get(i), self.units.get_mut(i)) else {
            return true;
        };
        unit.pid = None;
        unit.ready = false;
        let ran = now.saturating_duration_since(unit.started);
        // Whatever the main process left behind in its cgroup goes with it.
        if self.cgroups.populated(&svc.name) {
            self.cgroups.kill_all(&svc.name);
        }
        if let State::Stopping { .. } = unit.state {
            log::info!("stopped {} ({exit})", svc.name);
            unit.state = State::Stopped;
            if unit.after_stop == AfterStop::Start && !self.shutting_down {
                unit.after_stop = AfterStop::Stay;
                unit.restart.reset();
                self.start_unit(i, poller, now);
            }
            return true;
        }
        if self.shutting_down {
            unit.state = State::Stopped;
            return true;
        }
        log::warn!("{} exited: {exit} after {} ms", svc.name, ran.as_millis());
        unit.state = State::Exited(exit);
        unit.note = exit.to_string();
        let decision = unit.restart.on_exit(svc, exit, ran, now);
        self.apply_decision(i, decision, now);
        true
    }

    fn drain_output(&mut self, i: usize, poller: &Poller) {
        let Some(svc) = self.table.services.get(i) else {
            return;
        };
        let Some(unit) = self.units.get_mut(i) else {
            return;
        };
        let Some((fd, lb)) = unit.output.as_mut() else {
            return;
        };
        if drain(fd, lb, poller, &format!("svc/{}", svc.name)) {
            unit.output = None;
        }
    }

    /// The exec-status pipe of service `i` is readable: exec succeeded
    /// (ready, for `ready = "started"`) or the child's setup failed (its
    /// exit, reaped next, drives the restart policy).
    pub fn on_exec(&mut self, i: u32, poller: &Poller) {
        let i = i as usize;
        let (Some(svc), Some(unit)) = (self.table.services.get(i), self.units.get_mut(i)) else {
            return;
        };
        let Some(fd) = unit.exec_status.as_ref() else {
            return;
        };
        let Some(result) = spawn::exec_result(svc, fd) else {
            return;
        };
        if let Some(fd) = unit.exec_status.take() {
            poller.remove(fd.as_fd());
        }
        match result {
            Ok(()) => {
                if svc.ready == Readiness::Started && unit.pid.is_some() {
                    unit.ready = true;
                    unit.ever_ready = true;
                }
            }
            Err(e) => {
                log::error!("{e}");
                unit.note = e.err.to_string();
            }
        }
    }

    /// Service output is readable.
    pub fn on_output(&mut self, i: u32, poller: &Poller) {
        self.drain_output(i as usize, poller);
    }

    /// The readiness pipe of a notify service is readable.
    pub fn on_notify(&mut self, i: u32, poller: &Poller) {
        let i = i as usize;
        let Some(svc) = self.table.services.get(i) else {
            return;
        };
        let Some(unit) = self.units.get_mut(i) else {
            return;
        };
        let Some(fd) = unit.notify.take() else { return };
        let mut buf = [0u8; 64];
        match nix::unistd::read(fd.as_fd(), &mut buf) {
            Ok(n) if n > 0 => {
                unit.ready = true;
                unit.ever_ready = true;
                log::info!("{} is ready", svc.name);
            }
            Err(nix::errno::Errno::EAGAIN) => {
                unit.notify = Some(fd);
                return;
            }
            _ => log::warn!(
                "{} closed its notify fd without signalling readiness",
                svc.name
            ),
        }
        poller.remove(fd.as_fd());
    }

    fn signal_stop(&mut self, i: usize, now: Instant) {
        let (Some(svc), Some(unit)) = (self.table.services.get(i), self.units.get_mut(i)) else {
            return;
        };
        let grace = svc
            .stop_timeout_ms
            .map(|ms| Duration::from_millis(u64::from(ms)))
            .unwrap_or(self.default_grace);
        match unit.pid {
            Some(pid) => {
                log::info!(
                    "stopping {} (pid {pid}, grace {} ms)",
                    svc.name,
                    grace.as_millis()
                );
                if killpg(pid, Signal::SIGTERM).is_err() {
                    let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
                }
                unit.state = State::Stopping {
                    deadline: now + grace,
                    killed: false,
                };
            }
            None => unit.state = State::Stopped,
        }
    }

    /// Begin the orderly stop of every service, last started first.
    pub fn begin_shutdown(&mut self, now: Instant) {
        if self.shutting_down {
            return;
        }
        self.shutting_down = true;
        for u in &mut self.units {
            if matches!(u.state, State::Waiting | State::Backoff(_)) {
                u.state = State::Stopped;
            }
        }
        self.shutdown_step(now);
    }

    /// During shutdown: if no service is stopping, stop the last running one.
    fn shutdown_step(&mut self, now: Instant) {
        let alive: Vec<bool> = self.units.iter().map(|u| u.pid.is_some()).collect();
        let stopping = self
            .units
            .iter()
            .map(|u| matches!(u.state, State::Stopping { .. }));
        if let Some(i) = policy::next_to_stop(stopping, &alive) {
            self.signal_stop(i, now);
        }
    }

    pub fn all_stopped(&self) -> bool {
        self.units.iter().all(|u| u.pid.is_none())
    }

    /// True once, right after every service became ready (or settled).
    pub fn take_ready(&mut self) -> bool {
        std::mem::take(&mut self.ready_pending)
    }

    pub fn take_escalation(&mut self) -> Option<Escalation> {
        self.escalation.take()
    }

    fn find(&self, name: &str) -> Result<usize, String> {
        self.table
            .index_of(name)
            .ok_or_else(|| format!("no service named {name:?}"))
    }

    /// `initctl start`: start a stopped, exited or failed service now.
    pub fn start(&mut self, name: &str, poller: &Poller, now: Instant) -> Result<String, String> {
        let i = self.find(name)?;
        let state = self.units.get(i).map(|u| u.state);
        match state {
            Some(State::Running | State::Stopping { .. }) => {
                Err(format!("{name} is already running"))
            }
            _ => {
                if let Some(u) = self.units.get_mut(i) {
                    u.restart.reset();
                }
                self.start_unit(i, poller, now);
                Ok(format!("started {name}"))
            }
        }
    }

    /// `initctl stop`: stop and do not restart.
    pub fn stop(&mut self, name: &str, now: Instant) -> Result<String, String> {
        let i = self.find(name)?;
        let Some(u) = self.units.get_mut(i) else {
            return Err(format!("no service named {name:?}"));
        };
        match u.state {
            State::Running => {
                u.after_stop = AfterStop::Stay;
                self.signal_stop(i, now);
                Ok(format!("stopping {name}"))
            }
            State::Stopping { .. } => Ok(format!("{name} is already stopping")),
            _ => {
                u.state = State::Stopped;
                Ok(format!("{name} is stopped"))
            }
        }
    }

    /// `initctl restart`: stop (if running), then start.
    pub fn restart(&mut self, name: &str, poller: &Poller, now: Instant) -> Result<String, String> {
        let i = self.find(name)?;
        let Some(u) = self.units.get_mut(i) else {
            return Err(format!("no service named {name:?}"));
        };
        match u.state {
            State::Running | State::Stopping { .. } => {
                u.after_stop = AfterStop::Start;
                if matches!(u.state, State::Running) {
                    self.signal_stop(i, now);
                }
                Ok(format!("restarting {name}"))
            }
            _ => self.start(name, poller, now),
        }
    }

    /// Every service as the health gate sees it, in table order.
    pub fn view(&self) -> Vec<ServiceView> {
        self.table
            .services
            .iter()
            .zip(&self.units)
            .map(|(svc, u)| ServiceView {
                name: svc.name.to_string(),
                health: match u.state {
                    State::Waiting => Health::Starting,
                    State::Running if u.ready => Health::Ready,
                    State::Running => Health::Starting,
                    State::Backoff(_) => Health::Restarting,
                    State::Stopping { .. } | State::Stopped => Health::Stopped,
                    State::Exited(e) if e.success() => Health::Done,
                    State::Exited(e) => Health::Down(e.to_string()),
                    State::Failed if u.note.is_empty() => Health::Down("failed".into()),
                    State::Failed => Health::Down(u.note.clone()),
                },
                starts: u.starts,
            })
            .collect()
    }

    /// The `initctl status` table.
    pub fn status(&self, now: Instant) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<16} {:<10} {:>6} {:>8} {:>9}  INFO",
            "SERVICE", "STATE", "PID", "RESTARTS", "MEMORY"
        );
        for (svc, u) in self.table.services.iter().zip(&self.units) {
            let state = match u.state {
                State::Waiting => "waiting",
                State::Running if u.ready => "running",
                State::Running => "starting",
                State::Backoff(_) => "backoff",
                State::Stopping { .. } => "stopping",
                State::Stopped => "stopped",
                State::Exited(e) if e.success() => "done",
                State::Exited(_) => "exited",
                State::Failed => "failed",
            };
            let pid = u.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
            let mem = self
                .cgroups
                .memory_current(&svc.name)
                .map(human_bytes)
                .unwrap_or_else(|| "-".into());
            let info = match u.state {
                State::Running => {
                    format!("up {}s", now.saturating_duration_since(u.started).as_secs())
                }
                State::Backoff(t) => format!(
                    "{}; retry in {} ms",
                    u.note,
                    t.saturating_duration_since(now).as_millis()
                ),
                _ => u.note.clone(),
            };
            let _ = writeln!(
                out,
                "{:<16} {:<10} {:>6} {:>8} {:>9}  {}",
                svc.name, state, pid, u.restart.total, mem, info
            );
        }
        out
    }
}

/// `1.5M` / `96K`, without floating point (keeps float formatting out of
/// the binary).
fn human_bytes(b: u64) -> String {
    const K: u64 = 1024;
    if b >= K * K {
        let tenths = b * 10 / (K * K);
        format!("{}.{}M", tenths / 10, tenths % 10)
    } else {
        format!("{}K", b / K)
    }
}

pub fn set_nonblocking(fd: &OwnedFd) {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = fcntl(fd, FcntlArg::F_GETFL)
        .map(OFlag::from_bits_truncate)
        .unwrap_or(OFlag::empty());
    let _ = fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK));
}

/// Log what a child wrote to its output pipe (non-blocking), line by line
/// under `target`. `true` at end of file: the last partial line is logged
/// and the pipe removed from the poller, so the caller drops it.
pub fn drain(fd: &OwnedFd, lb: &mut LineBuffer, poller: &Poller, target: &str) -> bool {
    let mut emit = |l: &str| log::info!(target: target, "{l}");
    let mut buf = [0u8; 4096];
    loop {
        match nix::unistd::read(fd.as_fd(), &mut buf) {
            Ok(0) => {
                lb.flush(&mut emit);
                poller.remove(fd.as_fd());
                return true;
            }
            Ok(n) => lb.feed(buf.get(..n).unwrap_or(&[]), &mut emit),
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return false,
        }
    }
}
