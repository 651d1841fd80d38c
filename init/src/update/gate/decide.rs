//! The health gate's decisions, as pure logic: given the time since
//! kernel start and what the supervisor reports of each service, which
//! gate is pending, when to look again, and what to do next. No clock,
//! no processes: the [`super::driver`] feeds it, so every path is tested
//! without fork or exec.
//!
//! Order: every service ready (or finished successfully) by
//! `ready_deadline_s` after kernel start → `hold_s` with no service
//! exiting, restarting, stopping or failing → the health check (if any)
//! exits 0 within its timeout, while the hold's rule still applies → the
//! measurement self-check → commit (policy local), wait for
//! `update commit` (policy manual), or wait up to `deadline_s` for a
//! verifier's approval and then commit (policy attested; an approval that
//! arrived earlier is kept and commits as soon as the local gates pass).
//! The first failure ends the gate.
use crate::supervise::Exit;
use crate::supervise::{Health, ServiceView};
use azl_formats::{CommitPolicy, UpdatePolicy};
use std::time::Duration;

/// Where the gate is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    Ready,
    /// Until this time since boot; the start counts of every service when
    /// the hold began.
    Hold {
        until: Duration,
        starts: Vec<u32>,
    },
    /// The health check was requested; it must end by `until`.
    Check {
        until: Duration,
        starts: Vec<u32>,
    },
    SelfCheck,
    /// Policy attested: every local gate passed; an approval must arrive
    /// by `until`.
    Approval {
        until: Duration,
    },
    Passed,
    Failed,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Spawn the health check, then report how it ended with
    /// [`Gate::check_ended`].
    StartCheck,
    /// Run the measurement self-check, then report with [`Gate::self_checked`].
    SelfCheck,
    /// Every gate passed; policy local: commit the trial.
    Commit,
    /// Every gate passed; policy manual: leave it to `update commit`.
    AwaitCommit,
    /// Every local gate passed; policy attested: wait for an approval
    /// until this time since kernel start.
    AwaitApproval { until: Duration },
    /// A gate failed (the reason names it): fail the trial (killing the
    /// health check if it runs) and reboot.
    Fail(String),
}

/// How the health check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckEnd {
    Exited(Exit),
    /// It could not be started (spawn or exec failed).
    NotStarted(String),
}

#[derive(Debug, Clone)]
pub struct Gate {
    policy: UpdatePolicy,
    stage: Stage,
    /// A valid approval arrived (policy attested).
    approved: bool,
}

/// What became of an approval handed to the gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approved {
    /// The local gates had passed: commit now.
    Commit,
    /// Kept: the trial commits once every local gate has passed.
    Kept,
    /// Too late or pointless: the gate is decided (the trial failed or
    /// was already committed), or the policy is not attested.
    Refused(&'static str),
}

fn secs(s: u32) -> Duration {
    Duration::from_secs(u64::from(s))
}

impl Gate {
    pub fn new(policy: &UpdatePolicy) -> Gate {
        Gate {
            policy: policy.clone(),
            stage: Stage::Ready,
            approved: false,
        }
    }

    /// The gate pending, for `update status` (`ready`, `hold`,
    /// `health-check`, `self-check`, `approval`), or `done` once decided.
    pub fn pending(&self) -> &'static str {
        match self.stage {
            Stage::Ready => "ready",
            Stage::Hold { .. } => "hold",
            Stage::Check { .. } => "health-check",
            Stage::SelfCheck => "self-check",
            Stage::Approval { .. } => "approval",
            Stage::Passed | Stage::Failed => "done",
        }
    }

    /// While waiting for an approval: until when (since kernel start).
    pub fn approval_until(&self) -> Option<Duration> {
        match self.stage {
            Stage::Approval { until } => Some(until),
            _ => None,
        }
    }

    /// A valid approval (checked by the caller, [`azl_formats::approval::check`])
    /// arrived.
    pub fn approval_arrived(&mut self) -> Approved {
        if !matches!(self.policy.commit, CommitPolicy::Attested { .. }) {
            return Approved::Refused("this trial's commit policy does not take approvals");
        }
        match self.stage {
            Stage::Failed => Approved::Refused("the trial has already failed"),
            Stage::Passed => Approved::Refused("the trial is already committed"),
            Stage::Approval { .. } => {
                self.approved = true;
                self.stage = Stage::Passed;
                Approved::Commit
            }
            _ => {
                self.approved = true;
                Approved::Kept
            }
        }
    }

    pub fn finished(&self) -> bool {
        matches!(self.stage, Stage::Passed | Stage::Failed)
    }

    /// The next time (since kernel start) [`Gate::poll`] has something to
    /// decide even if nothing else happens.
    pub fn next_deadline(&self) -> Option<Duration> {
        match &self.stage {
            Stage::Ready => Some(secs(self.policy.ready_deadline_s)),
            Stage::Hold { until, .. } | Stage::Check { until, .. } | Stage::Approval { until } => {
                Some(*until)
            }
            _ => None,
        }
    }

    fn fail(&mut self, why: String) -> Option<Action> {
        self.stage = Stage::Failed;
        Some(Action::Fail(why))
    }

    /// After the hold: the health check, or straight to the self-check.
    fn after_hold(&mut self, now: Duration, starts: Vec<u32>) -> Option<Action> {
        match &self.policy.health_check {
            Some(hc) => {
                self.stage = Stage::Check {
                    until: now + secs(hc.timeout_s),
                    starts,
                };
                Some(Action::StartCheck)
            }
            None => {
                self.stage = Stage::SelfCheck;
                Some(Action::SelfCheck)
            }
        }
    }

    /// Look at the services at `now` (time since kernel start).
    pub fn poll(&mut self, now: Duration, services: &[ServiceView]) -> Option<Action> {
        match &self.stage {
            Stage::Ready => {
                if let Some(s) = services
                    .iter()
                    .find(|s| matches!(s.health, Health::Down(_)))
                {
                    let why = match &s.health {
                        Health::Down(d) => d.as_str(),
                        _ => "",
                    };
                    return self.fail(format!("service \"{}\" failed: {why}", s.name));
                }
                let waiting = services
                    .iter()
                    .find(|s| !matches!(s.health, Health::Ready | Health::Done));
                match waiting {
                    None => {
                        let starts: Vec<u32> = services.iter().map(|s| s.starts).collect();
                        if self.policy.hold_s == 0 {
                            return self.after_hold(now, starts);
                        }
                        self.stage = Stage::Hold {
                            until: now + secs(self.policy.hold_s),
                            starts,
                        };
                        None
                    }
                    Some(s) if now >= secs(self.policy.ready_deadline_s) => self.fail(format!(
                        "service \"{}\" not ready within {} s",
                        s.name, self.policy.ready_deadline_s
                    )),
                    Some(_) => None,
                }
            }
            Stage::Hold { until, starts } => {
                let (until, starts) = (*until, starts.clone());
                if let Some(why) = unsteady(services, &starts, "the hold") {
                    return self.fail(why);
                }
                if now >= until {
                    return self.after_hold(now, starts);
                }
                None
            }
            Stage::Check { until, starts } => {
                let until = *until;
                if let Some(why) = unsteady(services, starts, "the health check") {
                    return self.fail(why);
                }
                if now >= until {
                    let t = self.policy.health_check.as_ref().map_or(0, |h| h.timeout_s);
                    return self.fail(format!("health check did not finish within {t} s"));
                }
                None
            }
            Stage::Approval { until } => {
                if now >= *until {
                    let d = match self.policy.commit {
                        CommitPolicy::Attested { deadline_s, .. } => deadline_s,
                        _ => 0,
                    };
                    return self.fail(format!("no approval within {d} s"));
                }
                None
            }
            Stage::SelfCheck | Stage::Passed | Stage::Failed => None,
        }
    }

    /// The health check ended.
    pub fn check_ended(&mut self, end: CheckEnd) -> Option<Action> {
        if !matches!(self.stage, Stage::Check { .. }) {
            return None;
        }
        match end {
            CheckEnd::Exited(e) if e.success() => {
                self.stage = Stage::SelfCheck;
                Some(Action::SelfCheck)
            }
            CheckEnd::Exited(Exit::Code(c)) => self.fail(format!("health check exited {c}")),
            CheckEnd::Exited(e) => self.fail(format!("health check {e}")),
            CheckEnd::NotStarted(why) => self.fail(format!("health check could not start: {why}")),
        }
    }

    /// The measurement self-check's verdict at `now` (its error is the
    /// reason).
    pub fn self_checked(&mut self, now: Duration, result: Result<(), String>) -> Option<Action> {
        if self.stage != Stage::SelfCheck {
            return None;
        }
        if let Err(why) = result {
            return self.fail(why);
        }
        self.stage = Stage::Passed;
        Some(match self.policy.commit {
            CommitPolicy::Local => Action::Commit,
            CommitPolicy::Manual => Action::AwaitCommit,
            CommitPolicy::Attested { .. } if self.approved => Action::Commit,
            CommitPolicy::Attested { deadline_s, .. } => {
                let until = now + secs(deadline_s);
                self.stage = Stage::Approval { until };
                Action::AwaitApproval { until }
            }
        })
    }
}

/// The hold's rule: since `starts` was taken, no service started again,
/// and each is still ready (or finished successfully).
fn unsteady(services: &[ServiceView], starts: &[u32], during: &str) -> Option<String> {
    services.iter().enumerate().find_map(|(i, s)| {
        let before = starts.get(i).copied().unwrap_or(0);
        if s.starts != before {
            return Some(format!("service \"{}\" restarted during {during}", s.name));
        }
        match &s.health {
            Health::Ready | Health::Done => None,
            Health::Down(why) => Some(format!(
                "service \"{}\" exited during {during}: {why}",
                s.name
            )),
            Health::Restarting => Some(format!("service \"{}\" exited during {during}", s.name)),
            Health::Starting => Some(format!(
                "service \"{}\" stopped being ready during {during}",
                s.name
            )),
            Health::Stopped => Some(format!(
                "service \"{}\" was stopped during {during}",
                s.name
            )),
        }
    })
}
