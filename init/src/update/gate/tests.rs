//! The gate's decisions (every way a trial fails, and the two ways it
//! passes) and the measurement self-check against logs written with the
//! encoder init measures with (`EventLog::append_azl`).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
use super::decide::{Action, Approved, CheckEnd, Gate};
use super::selfcheck::{check, Inputs, SelfCheckError};
use crate::supervise::{Exit, Health, ServiceView};
use azl_formats::bootstate::REASON_MAX;
use azl_formats::envelope::Enveloped;
use azl_formats::eventlog::{self, EventLog};
use azl_formats::manifest::{Digest, Manifest, RefEvent, Reference, SignedManifest};
use azl_formats::measure::{self, Kind, Phase, QUOTED_PCRS, VERIFIED_BOOT_SEQUENCE};
use azl_formats::{CommitPolicy, HealthCheck, UpdatePolicy};
use std::time::Duration;

// --- decisions ---------------------------------------------------------------

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn svc(name: &str, health: Health, starts: u32) -> ServiceView {
    ServiceView {
        name: name.into(),
        health,
        starts,
    }
}

fn ready(starts: u32) -> Vec<ServiceView> {
    vec![
        svc("web", Health::Ready, starts),
        svc("setup", Health::Done, 1),
    ]
}

fn policy(hold_s: u32, check: bool) -> UpdatePolicy {
    UpdatePolicy {
        commit: CommitPolicy::Local,
        ready_deadline_s: 60,
        hold_s,
        health_check: check.then(|| HealthCheck {
            exec: vec!["/bin/check".into()],
            timeout_s: 5,
        }),
    }
}

fn failed(a: Option<Action>) -> String {
    match a {
        Some(Action::Fail(why)) => {
            assert!(why.len() <= REASON_MAX, "{why}");
            why
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// Drive a gate through ready and hold to the health check.
fn at_check(p: &UpdatePolicy) -> Gate {
    let mut g = Gate::new(p);
    assert_eq!(g.poll(s(10), &ready(1)), None);
    assert_eq!(g.pending(), "hold");
    assert_eq!(
        g.poll(s(10 + u64::from(p.hold_s)), &ready(1)),
        Some(Action::StartCheck)
    );
    assert_eq!(g.pending(), "health-check");
    g
}

#[test]
fn all_gates_pass_then_commit() {
    let p = policy(30, true);
    let mut g = Gate::new(&p);
    assert_eq!(g.pending(), "ready");
    assert_eq!(g.next_deadline(), Some(s(60)));
    let starting = vec![
        svc("web", Health::Starting, 1),
        svc("setup", Health::Done, 1),
    ];
    assert_eq!(g.poll(s(5), &starting), None);
    assert_eq!(g.poll(s(10), &ready(1)), None);
    assert_eq!((g.pending(), g.next_deadline()), ("hold", Some(s(40))));
    assert_eq!(g.poll(s(39), &ready(1)), None);
    assert_eq!(g.poll(s(40), &ready(1)), Some(Action::StartCheck));
    assert_eq!(g.next_deadline(), Some(s(45)));
    assert_eq!(g.poll(s(41), &ready(1)), None);
    assert_eq!(
        g.check_ended(CheckEnd::Exited(Exit::Code(0))),
        Some(Action::SelfCheck)
    );
    assert_eq!(g.pending(), "self-check");
    assert_eq!(g.self_checked(s(50), Ok(())), Some(Action::Commit));
    assert!(g.finished());
    assert_eq!(g.poll(s(100), &[]), None, "a decided gate stays decided");
}

#[test]
fn manual_policy_awaits_the_operator() {
    let mut p = policy(0, false);
    p.commit = CommitPolicy::Manual;
    let mut g = Gate::new(&p);
    // hold 0 and no health check: straight to the self-check.
    assert_eq!(g.poll(s(3), &ready(1)), Some(Action::SelfCheck));
    assert_eq!(g.self_checked(s(50), Ok(())), Some(Action::AwaitCommit));
    assert!(g.finished());
}

fn attested(deadline_s: u32) -> UpdatePolicy {
    let mut p = policy(0, false);
    p.commit = CommitPolicy::Attested {
        verifier_key: [7; 32],
        deadline_s,
    };
    p
}

#[test]
fn attested_policy_waits_for_the_approval_then_commits() {
    let mut g = Gate::new(&attested(40));
    assert_eq!(g.poll(s(3), &ready(1)), Some(Action::SelfCheck));
    // The deadline counts from the moment the local gates passed.
    assert_eq!(
        g.self_checked(s(4), Ok(())),
        Some(Action::AwaitApproval { until: s(44) })
    );
    assert_eq!(
        (g.pending(), g.next_deadline(), g.approval_until()),
        ("approval", Some(s(44)), Some(s(44)))
    );
    assert!(!g.finished());
    assert_eq!(g.poll(s(43), &ready(1)), None);
    assert_eq!(g.approval_arrived(), Approved::Commit);
    assert!(g.finished());
    assert_eq!(g.poll(s(100), &ready(1)), None, "committed stays committed");
    assert!(matches!(g.approval_arrived(), Approved::Refused(_)));
}

#[test]
fn attested_policy_without_approval_fails_at_the_deadline() {
    let mut g = Gate::new(&attested(40));
    assert_eq!(g.poll(s(3), &ready(1)), Some(Action::SelfCheck));
    assert!(g.self_checked(s(4), Ok(())).is_some());
    assert_eq!(failed(g.poll(s(44), &ready(1))), "no approval within 40 s");
    assert!(g.finished());
    // An approval after the failure does not revive the trial.
    assert_eq!(
        g.approval_arrived(),
        Approved::Refused("the trial has already failed")
    );
}

#[test]
fn an_early_approval_is_kept_but_the_local_gates_still_rule() {
    // Arrives during the hold: kept; the commit waits for the gates.
    let mut p = attested(40);
    p.hold_s = 10;
    let mut g = Gate::new(&p);
    assert_eq!(g.poll(s(3), &ready(1)), None);
    assert_eq!(g.pending(), "hold");
    assert_eq!(g.approval_arrived(), Approved::Kept);
    assert!(!g.finished());
    assert_eq!(g.poll(s(13), &ready(1)), Some(Action::SelfCheck));
    assert_eq!(g.self_checked(s(13), Ok(())), Some(Action::Commit));
    // Kept, but a gate that fails afterwards still fails the trial.
    let mut g = Gate::new(&p);
    assert_eq!(g.poll(s(3), &ready(1)), None);
    assert_eq!(g.approval_arrived(), Approved::Kept);
    assert!(failed(g.poll(s(5), &ready(2))).contains("restarted during the hold"));
    let mut g = Gate::new(&p);
    assert_eq!(g.poll(s(3), &ready(1)), None);
    assert_eq!(g.approval_arrived(), Approved::Kept);
    assert_eq!(g.poll(s(13), &ready(1)), Some(Action::SelfCheck));
    assert!(failed(g.self_checked(s(13), Err("measurement self-check: x".into()))).contains("x"));
}

#[test]
fn other_policies_take_no_approval() {
    for commit in [CommitPolicy::Local, CommitPolicy::Manual] {
        let mut p = policy(0, false);
        p.commit = commit;
        let mut g = Gate::new(&p);
        assert!(matches!(g.approval_arrived(), Approved::Refused(_)));
        assert_eq!(g.poll(s(3), &ready(1)), Some(Action::SelfCheck));
        assert_ne!(g.self_checked(s(3), Ok(())), None);
    }
}

#[test]
fn deadline_missed_names_the_service() {
    let mut g = Gate::new(&policy(30, false));
    let slow = vec![
        svc("setup", Health::Done, 1),
        svc("web", Health::Starting, 1),
    ];
    assert_eq!(g.poll(s(59), &slow), None);
    assert_eq!(
        failed(g.poll(s(60), &slow)),
        "service \"web\" not ready within 60 s"
    );
    // A service waiting for its restart is not ready either.
    let mut g = Gate::new(&policy(30, false));
    let restarting = vec![svc("db", Health::Restarting, 2)];
    assert_eq!(
        failed(g.poll(s(61), &restarting)),
        "service \"db\" not ready within 60 s"
    );
}

#[test]
fn a_service_that_fails_before_it_is_ready_fails_the_trial_at_once() {
    let mut g = Gate::new(&policy(30, false));
    let down = vec![svc("web", Health::Down("crash loop".into()), 6)];
    assert_eq!(
        failed(g.poll(s(2), &down)),
        "service \"web\" failed: crash loop"
    );
}

#[test]
fn restart_exit_or_stop_during_the_hold_fails() {
    let p = policy(30, false);
    for (later, want) in [
        (ready(2), "service \"web\" restarted during the hold"),
        (
            vec![
                svc("web", Health::Restarting, 1),
                svc("setup", Health::Done, 1),
            ],
            "service \"web\" exited during the hold",
        ),
        (
            vec![
                svc("web", Health::Down("exit code 1".into()), 1),
                svc("setup", Health::Done, 1),
            ],
            "service \"web\" exited during the hold: exit code 1",
        ),
        (
            vec![
                svc("web", Health::Stopped, 1),
                svc("setup", Health::Done, 1),
            ],
            "service \"web\" was stopped during the hold",
        ),
    ] {
        let mut g = Gate::new(&p);
        assert_eq!(g.poll(s(10), &ready(1)), None);
        assert_eq!(failed(g.poll(s(20), &later)), want);
    }
    // The rule still holds while the health check runs.
    let mut g = at_check(&policy(30, true));
    assert_eq!(
        failed(g.poll(s(41), &ready(2))),
        "service \"web\" restarted during the health check"
    );
}

#[test]
fn health_check_failures() {
    let p = policy(30, true);
    let mut g = at_check(&p);
    assert_eq!(
        failed(g.check_ended(CheckEnd::Exited(Exit::Code(3)))),
        "health check exited 3"
    );
    let mut g = at_check(&p);
    assert_eq!(
        failed(g.check_ended(CheckEnd::Exited(Exit::Signal(9)))),
        "health check killed by signal 9 (SIGKILL)"
    );
    let mut g = at_check(&p);
    assert_eq!(g.poll(s(44), &ready(1)), None);
    assert_eq!(
        failed(g.poll(s(45), &ready(1))),
        "health check did not finish within 5 s"
    );
    // Its exit after the timeout changes nothing.
    assert_eq!(g.check_ended(CheckEnd::Exited(Exit::Code(0))), None);
    let mut g = at_check(&p);
    assert_eq!(
        failed(g.check_ended(CheckEnd::NotStarted("No such file or directory".into()))),
        "health check could not start: No such file or directory"
    );
}

#[test]
fn a_failed_self_check_fails_the_trial_with_its_reason() {
    let mut g = Gate::new(&policy(0, false));
    assert_eq!(g.poll(s(1), &[]), Some(Action::SelfCheck));
    assert_eq!(
        failed(g.self_checked(s(50), Err("measurement self-check: PCR 8 is x".into()))),
        "measurement self-check: PCR 8 is x"
    );
}

// --- measurement self-check ------------------------------------------------

pub(super) struct Boot {
    pub(super) manifest: Manifest,
    table: Vec<u8>,
}

impl Boot {
    pub(super) fn new() -> Boot {
        let mut manifest = azl_formats::manifest::example();
        manifest.cmdline = "console=ttyAMA0 root=PARTLABEL=root-b".into();
        Boot {
            manifest,
            table: b"AZSV service table bytes".to_vec(),
        }
    }

    /// What init measures for each step of a verified boot.
    pub(super) fn content(&self, kind: Kind) -> Vec<u8> {
        match kind {
            Kind::Manifest => self.manifest.identity_bytes().unwrap(),
            Kind::Cmdline => measure::measured_cmdline(self.manifest.cmdline.as_bytes()).to_vec(),
            Kind::RootHash => self.manifest.rootfs.verity.root_hash.to_vec(),
            Kind::ServiceTable => self.table.clone(),
            Kind::Phase(_) => Vec::new(),
        }
    }

    /// The log stage 1 and stage 2 write, with `edit` applied to the
    /// content of each event (`None`: the event is not measured).
    pub(super) fn log(&self, edit: impl Fn(Kind, Vec<u8>) -> Option<Vec<u8>>) -> EventLog {
        let mut log = EventLog::new();
        for k in VERIFIED_BOOT_SEQUENCE {
            if let Some(c) = edit(k, self.content(k)) {
                log.append_azl(k, &c);
            }
        }
        log
    }

    /// The signed manifest envelope with the reference a build predicts.
    pub(super) fn envelope(&self) -> Vec<u8> {
        let events: Vec<RefEvent> = VERIFIED_BOOT_SEQUENCE
            .iter()
            .map(|&k| RefEvent {
                pcr: k.pcr(),
                tag: k.tag().to_string(),
                digest: eventlog::azl_event(k, &self.content(k)).0,
            })
            .collect();
        let mut log = EventLog::new();
        for e in &events {
            log.append(e.pcr, measure::EV_AZL, &e.digest, b"");
        }
        let pcrs = eventlog::replay(&eventlog::parse(log.as_bytes()).unwrap(), &QUOTED_PCRS);
        let mut m = self.manifest.clone();
        m.reference = Some(Reference { events, pcrs });
        self.sign(&m)
    }

    pub(super) fn sign(&self, m: &Manifest) -> Vec<u8> {
        SignedManifest {
            manifest: m.to_bytes().unwrap(),
            signature: None,
        }
        .to_bytes()
        .unwrap()
    }
}

fn replayed(log: &EventLog) -> Vec<(u8, Digest)> {
    eventlog::replay(&eventlog::parse(log.as_bytes()).unwrap(), &QUOTED_PCRS)
}

fn run(
    log: &[u8],
    manifest: &[u8],
    tpm: Option<Result<Vec<(u8, Digest)>, String>>,
) -> Result<usize, SelfCheckError> {
    check(&Inputs {
        log,
        firmware_log: None,
        manifest,
        manifest_sha256: &azl_formats::sha256(manifest),
        tpm,
    })
}

pub(super) fn reason(r: Result<usize, SelfCheckError>) -> String {
    let why = r.unwrap_err().to_string();
    assert!(why.starts_with("measurement self-check: "), "{why}");
    assert!(
        why.chars().count() <= REASON_MAX,
        "{} chars: {why}",
        why.len()
    );
    why
}

#[test]
fn self_check_passes_a_correct_log_with_and_without_a_tpm() {
    let b = Boot::new();
    let log = b.log(|_, c| Some(c));
    let env = b.envelope();
    assert_eq!(run(log.as_bytes(), &env, None).unwrap(), 7);
    assert_eq!(
        run(log.as_bytes(), &env, Some(Ok(replayed(&log)))).unwrap(),
        7
    );
}

#[test]
fn self_check_refuses_an_edited_cmdline() {
    let b = Boot::new();
    let env = b.envelope();
    // Measured with another command line (digest and data agree).
    let log = b.log(|k, c| {
        Some(if k == Kind::Cmdline {
            b"init=/bin/sh".to_vec()
        } else {
            c
        })
    });
    let why = reason(run(log.as_bytes(), &env, None));
    assert!(
        why.starts_with("measurement self-check: event 2 is cmdline ")
            && why.contains("…, the manifest says "),
        "{why}"
    );
    // The data edited in the log after the fact: it no longer matches its digest.
    let good = b.log(|_, c| Some(c));
    let mut bytes = good.to_bytes();
    let at = bytes
        .windows(b"console=".len())
        .position(|w| w == b"console=")
        .unwrap();
    bytes[at] = b'C';
    assert_eq!(
        reason(run(&bytes, &env, None)),
        "measurement self-check: event 2 (PCR 8): data does not match its digest"
    );
}

#[test]
fn self_check_refuses_a_missing_or_extra_event() {
    let b = Boot::new();
    let env = b.envelope();
    let log = b.log(|k, c| (k != Kind::Phase(Phase::ServicesReady)).then_some(c));
    assert_eq!(
        reason(run(log.as_bytes(), &env, None)),
        "measurement self-check: the log ends after 6 events, the manifest expects phase:services-ready next"
    );
    let mut log = b.log(|_, c| Some(c));
    log.append_azl(Kind::Phase(Phase::Shutdown), b"");
    assert_eq!(
        reason(run(log.as_bytes(), &env, None)),
        "measurement self-check: event 8 (phase:shutdown) is beyond the manifest's 7 events"
    );
    // An event on a PCR azl-edge does not use.
    let mut log = b.log(|_, c| Some(c));
    log.append(4, measure::EV_AZL, &[0; 32], b"x");
    assert_eq!(
        reason(run(log.as_bytes(), &env, None)),
        "measurement self-check: event 8 is on PCR 4, not one azl-edge measures"
    );
}

#[test]
fn self_check_compares_the_pcrs_and_the_tpm() {
    let b = Boot::new();
    let log = b.log(|_, c| Some(c));
    let env = b.envelope();
    let mut tpm = replayed(&log);
    tpm[1].1[0] ^= 1;
    let why = reason(run(log.as_bytes(), &env, Some(Ok(tpm))));
    assert!(
        why.starts_with("measurement self-check: the TPM's PCR 9 is ")
            && why.contains(", the log replays to "),
        "{why}"
    );
    let mut short = replayed(&log);
    short.pop();
    assert_eq!(
        reason(run(log.as_bytes(), &env, Some(Ok(short)))),
        "measurement self-check: the TPM did not return PCR 11"
    );
    assert_eq!(
        reason(run(
            log.as_bytes(),
            &env,
            Some(Err("TPM_RC_LOCALITY".into()))
        )),
        "measurement self-check: cannot read the TPM's PCRs: TPM_RC_LOCALITY"
    );
    // A reference whose PCR value disagrees with its own events.
    let sm = SignedManifest::from_bytes(&env).unwrap();
    let mut m = sm.manifest().unwrap();
    m.reference.as_mut().unwrap().pcrs[0].1 = [0xee; 32];
    let why = reason(run(log.as_bytes(), &b.sign(&m), None));
    assert!(
        why.starts_with("measurement self-check: PCR 8 is ")
            && why.ends_with(", the manifest says eeeeeeeeeeeeeeee…"),
        "{why}"
    );
}

#[test]
fn self_check_trusts_only_the_manifest_stage_1_verified() {
    let b = Boot::new();
    let log = b.log(|_, c| Some(c));
    let env = b.envelope();
    let e = check(&Inputs {
        log: log.as_bytes(),
        firmware_log: None,
        manifest: &env,
        manifest_sha256: &[0; 32],
        tpm: None,
    })
    .unwrap_err();
    assert_eq!(e, SelfCheckError::ManifestDigest);
    let mut m = b.manifest.clone();
    m.reference = None;
    assert_eq!(
        reason(run(log.as_bytes(), &b.sign(&m), None)),
        "measurement self-check: the signed manifest has no reference values"
    );
    assert!(reason(run(b"junk", &env, None)).starts_with("measurement self-check: event log: "));
}
