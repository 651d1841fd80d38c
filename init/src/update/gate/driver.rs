//! The health gate's side effects, driven from PID 1's event loop: it
//! feeds [`Gate`] the clock and the supervisor's view, spawns the health
//! check as a one-off service (output to the log, killed on timeout, its
//! exit reaped by the loop), runs the measurement self-check on the files
//! stage 1 left in /run, and then commits or fails the trial through
//! `bootctl`. Nothing here blocks the loop for longer than a file read, a
//! TPM PCR read or a boot-state write; nothing here panics.
use super::approval;
use super::decide::{Action, Approved, CheckEnd, Gate};
use super::selfcheck::{self, Inputs};
use crate::measure::Measurer;
use crate::pid1::poller::{Poller, Token};
use crate::supervise::lines::LineBuffer;
use crate::supervise::{self, spawn, Exit, Supervisor};
use crate::update::{bootctl, select};
use azl_formats::bootstate::Slot;
use azl_formats::manifest::Digest;
use azl_formats::measure::QUOTED_PCRS;
use azl_formats::{paths, CommitPolicy, RootSpec, Service};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

/// How long to wait for the boot-state partition (it exists in stage 2).
const WAIT: Duration = Duration::from_secs(2);

/// The running health check.
struct Check {
    svc: Service,
    pid: Pid,
    output: Option<(OwnedFd, LineBuffer)>,
    exec_status: OwnedFd,
}

pub struct Driver {
    gate: Gate,
    slot: Slot,
    manifest_sha256: Digest,
    spec: RootSpec,
    check: Option<Check>,
    /// How the check ended, until the next poll hands it to the gate.
    ended: Option<CheckEnd>,
    /// `Instant` and time since kernel start of the same moment.
    origin: Instant,
    origin_boot: Duration,
    status: String,
}

impl Driver {
    /// The gate of this boot, when stage 1 recorded it as a trial.
    pub fn start(spec: &RootSpec) -> Option<Driver> {
        let booted = match select::booted(paths::BOOTED) {
            Ok(b) => b,
            Err(e) => {
                log::debug!("update: no booted record ({e}); no trial gate");
                return None;
            }
        };
        if !booted.trial {
            return None;
        }
        let p = &spec.update;
        log::info!(
            "update: trial boot of {}: health gate started (commit {}, every service ready within {} s, hold {} s, health check {})",
            booted.slot,
            p.commit.name(),
            p.ready_deadline_s,
            p.hold_s,
            p.health_check
                .as_ref()
                .map_or("none".to_string(), |h| format!("{:?} within {} s", h.exec, h.timeout_s))
        );
        let mut d = Driver {
            gate: Gate::new(p),
            slot: booted.slot,
            manifest_sha256: booted.manifest_sha256,
            spec: spec.clone(),
            check: None,
            ended: None,
            origin: Instant::now(),
            origin_boot: Duration::from_millis(crate::sys::time::boot_ms()),
            status: String::new(),
        };
        d.set_status(d.gate.pending().to_string());
        Some(d)
    }

    fn since_boot(&self, now: Instant) -> Duration {
        self.origin_boot + now.saturating_duration_since(self.origin)
    }

    /// When the loop must wake up for the gate.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.gate
            .next_deadline()
            .map(|d| self.origin + d.saturating_sub(self.origin_boot))
    }

    fn set_status(&mut self, status: String) {
        if status == self.status {
            return;
        }
        let res = std::fs::create_dir_all(paths::RUN_DIR)
            .and_then(|()| std::fs::write(paths::GATE_STATUS, format!("{status}\n")));
        if let Err(e) = res {
            log::warn!("update: cannot write {}: {e}", paths::GATE_STATUS);
        }
        self.status = status;
    }

    /// Advance the gate; true when the trial failed and the system must
    /// reboot (into the committed slot).
    pub fn poll(
        &mut self,
        now: Instant,
        sup: &Supervisor,
        measurer: &mut Measurer,
        poller: &Poller,
    ) -> bool {
        if self.gate.finished() {
            return false;
        }
        let before = self.gate.pending();
        let mut action = match self.ended.take() {
            Some(end) => self.gate.check_ended(end),
            None => None,
        };
        if action.is_none() {
            action = self.gate.poll(self.since_boot(now), &sup.view());
        }
        let mut reboot = false;
        while let Some(a) = action.take() {
            self.announce(before);
            match a {
                Action::StartCheck => action = self.spawn_check(poller),
                Action::SelfCheck => {
                    measurer.flush();
                    let r = self.self_check(measurer);
                    action = self.gate.self_checked(self.since_boot(Instant::now()), r);
                }
                Action::AwaitApproval { until } => {
                    let deadline_s = match self.spec.update.commit {
                        CommitPolicy::Attested { deadline_s, .. } => deadline_s,
                        _ => 0,
                    };
                    log::info!(
                        "update: trial of {} passed every local gate: waiting {deadline_s} s for an approval (`update approve FILE`)",
                        self.slot,
                    );
                    self.set_status(approval_status(until));
                }
                Action::Commit => self.commit(),
                Action::AwaitCommit => {
                    log::info!(
                        "update: trial of {} passed every gate: awaiting `update commit`",
                        self.slot
                    );
                    self.set_status("awaiting-commit".into());
                }
                Action::Fail(why) => {
                    self.fail(&why);
                    reboot = true;
                }
            }
        }
        if !self.gate.finished() {
            self.announce(before);
            let status = match self.gate.approval_until() {
                Some(until) => approval_status(until),
                None => self.gate.pending().to_string(),
            };
            self.set_status(status);
        }
        reboot
    }

    /// `initctl approve` (sent by `update approve` after its own check):
    /// check the approval it left in [`paths::APPROVAL`] again — PID 1
    /// trusts no file — and hand it to the gate; commit at once if every
    /// local gate has passed. The answer is what `update approve` prints.
    pub fn approve(&mut self) -> Result<String, String> {
        let CommitPolicy::Attested { verifier_key, .. } = self.spec.update.commit else {
            return Err(format!(
                "the trial of {} has commit policy {}: it takes no approval",
                self.slot,
                self.spec.update.commit.name()
            ));
        };
        let bytes = approval::read(paths::APPROVAL).map_err(|e| e.to_string())?;
        let body = approval::check(&bytes, &verifier_key, &self.manifest_sha256).map_err(|e| {
            log::warn!("update: approval refused: {e}");
            e.to_string()
        })?;
        let _ = std::fs::remove_file(paths::APPROVAL);
        match self.gate.approval_arrived() {
            Approved::Commit => {
                log::info!(
                    "update: approval accepted (nonce {})",
                    azl_formats::manifest::Hex(&body.nonce)
                );
                self.commit();
                match self.status.as_str() {
                    "committed" => Ok(format!("approved: {} is committed", self.slot)),
                    other => Err(format!("approved, but {other}")),
                }
            }
            Approved::Kept => {
                log::info!(
                    "update: approval accepted (nonce {}); {} commits once every local gate has passed",
                    azl_formats::manifest::Hex(&body.nonce),
                    self.slot
                );
                Ok(format!(
                    "approved: {} commits once every local gate has passed (now: {})",
                    self.slot,
                    self.gate.pending()
                ))
            }
            Approved::Refused(why) => Err(format!("{why} ({})", self.status)),
        }
    }

    /// Log a gate passed (once per stage change).
    fn announce(&mut self, before: &'static str) {
        let now = self.gate.pending();
        if now == before || self.status == now || self.gate.finished() {
            return;
        }
        let p = &self.spec.update;
        match now {
            "hold" => log::info!(
                "update: gate: every service is ready; holding {} s",
                p.hold_s
            ),
            "health-check" => log::info!("update: gate: hold passed; running the health check"),
            "self-check" => log::info!("update: gate: running the measurement self-check"),
            _ => {}
        }
        self.set_status(now.to_string());
    }

    fn spawn_check(&mut self, poller: &Poller) -> Option<Action> {
        let Some(hc) = self.spec.update.health_check.as_ref() else {
            return self.gate.check_ended(CheckEnd::Exited(Exit::Code(0)));
        };
        let svc = hc.as_service();
        if let Err(e) = azl_formats::limits::check_service(&svc) {
            return self.gate.check_ended(CheckEnd::NotStarted(e.to_string()));
        }
        match spawn::spawn(&svc, None) {
            Ok(sp) => {
                supervise::set_nonblocking(&sp.output);
                poller.add(sp.output.as_fd(), Token::Check);
                log::info!(
                    "update: health check started (pid {}): {:?}",
                    sp.pid,
                    svc.exec
                );
                self.check = Some(Check {
                    svc,
                    pid: sp.pid,
                    output: Some((sp.output, LineBuffer::new())),
                    exec_status: sp.exec_status,
                });
                None
            }
            Err(e) => self
                .gate
                .check_ended(CheckEnd::NotStarted(e.err.to_string())),
        }
    }

    /// A child exited: true when it was the health check.
    pub fn on_exit(&mut self, pid: Pid, exit: Exit, poller: &Poller) -> bool {
        if self.check.as_ref().map(|c| c.pid) != Some(pid) {
            return false;
        }
        self.on_output(poller);
        if let Some(c) = self.check.take() {
            if let Some((fd, mut lb)) = c.output {
                lb.flush(&mut |l| log::info!(target: "svc/health-check", "{l}"));
                poller.remove(fd.as_fd());
            }
            log::info!("update: health check (pid {pid}) ended: {exit}");
            self.ended = Some(match spawn::exec_result(&c.svc, &c.exec_status) {
                Some(Err(e)) => CheckEnd::NotStarted(e.err.to_string()),
                _ => CheckEnd::Exited(exit),
            });
        }
        true
    }

    /// The health check's output is readable: into the log.
    pub fn on_output(&mut self, poller: &Poller) {
        let Some(c) = self.check.as_mut() else { return };
        let Some((fd, lb)) = c.output.as_mut() else {
            return;
        };
        if supervise::drain(fd, lb, poller, "svc/health-check") {
            c.output = None;
        }
    }

    fn self_check(&self, measurer: &mut Measurer) -> Result<(), String> {
        let log = std::fs::read(paths::EVENT_LOG).map_err(|e| {
            format!(
                "measurement self-check: cannot read {}: {e}",
                paths::EVENT_LOG
            )
        })?;
        let manifest = std::fs::read(paths::MANIFEST_COPY).map_err(|e| {
            format!(
                "measurement self-check: cannot read {}: {e}",
                paths::MANIFEST_COPY
            )
        })?;
        // The firmware's log, as `initctl attest` merges it: on a UEFI boot
        // with a TPM it holds the EFI stub's PCR 9 event.
        let firmware = match std::fs::read(paths::FIRMWARE_EVENT_LOG) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(format!(
                    "measurement self-check: cannot read {}: {e}",
                    paths::FIRMWARE_EVENT_LOG
                ))
            }
        };
        let tpm = measurer.read_pcrs(&QUOTED_PCRS);
        let with_tpm = tpm.is_some();
        let n = selfcheck::check(&Inputs {
            log: &log,
            firmware_log: firmware.as_deref(),
            manifest: &manifest,
            manifest_sha256: &self.manifest_sha256,
            tpm,
        })
        .map_err(|e| e.to_string())?;
        log::info!(
            "update: gate: measurement self-check passed ({n} events; PCRs 8, 9, 11 equal the signed reference{})",
            if with_tpm { " and the TPM" } else { "; no TPM to read back" }
        );
        Ok(())
    }

    fn commit(&mut self) {
        let _ = std::fs::remove_file(paths::APPROVAL);
        let res = bootctl::open(&self.spec.boot_control, WAIT)
            .and_then(|mut ctl| bootctl::commit(ctl.as_mut(), self.slot));
        match res {
            Ok(s) => {
                log::info!(
                    "update: trial of {} passed every gate: committed",
                    self.slot
                );
                log::info!(
                    "update: {} is the committed slot; the floor is security version {}",
                    s.active,
                    s.floor
                );
                self.set_status("committed".into());
            }
            Err(e) => {
                // The state still says Trying: the next boot falls back.
                log::error!(
                    "update: trial of {} passed every gate but the commit failed: {e}",
                    self.slot
                );
                self.set_status(format!("commit-failed: {e}"));
            }
        }
    }

    fn fail(&mut self, why: &str) {
        let _ = std::fs::remove_file(paths::APPROVAL);
        if let Some(c) = &self.check {
            log::warn!("update: killing the health check (pid {})", c.pid);
            let _ = killpg(c.pid, Signal::SIGKILL);
        }
        log::error!("update: trial of {} failed: {why}", self.slot);
        let res = bootctl::open(&self.spec.boot_control, WAIT)
            .and_then(|mut ctl| bootctl::fail(ctl.as_mut(), self.slot, why));
        match res {
            Ok(s) => log::warn!("update: rebooting into {}", s.active),
            Err(e) => log::error!(
                "update: cannot record the failed trial of {}: {e}; rebooting (the next boot records it as \"did not commit\")",
                self.slot
            ),
        }
        self.set_status(format!("failed: {why}"));
    }
}

/// The gate status line while waiting for an approval: `approval` and the
/// deadline in milliseconds since kernel start (`update status` shows the
/// seconds left).
fn approval_status(until: Duration) -> String {
    format!("approval {}", until.as_millis())
}
