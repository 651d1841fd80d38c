//! Restart policy as pure logic (no processes, no clock of its own), so it
//! can be tested exhaustively: whether an exit warrants a restart, the
//! exponential backoff, when a run counts as stable, and crash-loop
//! detection.
use azl_formats::{CrashLoopAction, RestartPolicy, Service};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How a service process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    pub fn success(self) -> bool {
        self == Exit::Code(0)
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit code {c}"),
            Exit::Signal(s) => {
                let name = nix::sys::signal::Signal::try_from(*s)
                    .map(|s| s.as_str())
                    .unwrap_or("?");
                write!(f, "killed by signal {s} ({name})")
            }
        }
    }
}

/// What to do after an unrequested exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Restart after this delay.
    Restart(Duration),
    /// Done: the policy does not restart this exit.
    Stay,
    /// Too many restarts within the window: escalate.
    CrashLoop,
}

/// Per-service restart bookkeeping.
#[derive(Debug, Default)]
pub struct RestartState {
    /// Consecutive failed runs that were not stable (drives the backoff).
    pub failures: u32,
    /// Restart times within the crash-loop window.
    recent: VecDeque<Instant>,
    /// All restarts since boot (for status).
    pub total: u32,
}

impl RestartState {
    /// Forget history (after a manual start).
    pub fn reset(&mut self) {
        self.failures = 0;
        self.recent.clear();
    }

    /// Decide what follows an exit at `now` of a run that lasted `ran`.
    pub fn on_exit(&mut self, svc: &Service, exit: Exit, ran: Duration, now: Instant) -> Decision {
        let restart = match svc.restart {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => !exit.success(),
            RestartPolicy::Never => false,
        };
        if !restart {
            return Decision::Stay;
        }
        let max_delay = Duration::from_millis(u64::from(svc.restart_delay_max_ms));
        // A run that lasted as long as the longest backoff counts as stable:
        // the next failure starts the backoff from the beginning.
        if ran >= max_delay.max(Duration::from_secs(1)) {
            self.failures = 0;
        }
        if !exit.success() {
            self.failures = self.failures.saturating_add(1);
        }
        let window = Duration::from_secs(u64::from(svc.crash_loop.window_s));
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            self.recent.pop_front();
        }
        self.recent.push_back(now);
        if self.recent.len() > usize::from(svc.crash_loop.max_restarts) {
            return Decision::CrashLoop;
        }
        self.total = self.total.saturating_add(1);
        Decision::Restart(backoff(svc, self.failures))
    }
}

/// Delay before restart number `failures` (1 = first failure):
/// `restart_delay_ms * 2^(failures-1)`, capped at `restart_delay_max_ms`.
/// A clean exit of an `always` service (failures = 0) waits the base delay.
pub fn backoff(svc: &Service, failures: u32) -> Duration {
    let base = u64::from(svc.restart_delay_ms);
    let max = u64::from(svc.restart_delay_max_ms).max(base);
    let shift = failures.saturating_sub(1).min(32);
    Duration::from_millis(base.saturating_mul(1u64 << shift).min(max))
}

/// Each service's `after` list as table indices, resolved once with a
/// name index: linear in the table size plus the total `after` entries
/// (looking each name up in the table per check was quadratic). A name
/// not in the table resolves to `None` (validation has refused such
/// tables; a `None` dependency is never satisfied).
pub fn resolve_after(services: &[Service]) -> Vec<Vec<Option<usize>>> {
    let index: std::collections::HashMap<&str, usize> = services
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    services
        .iter()
        .map(|s| {
            s.after
                .iter()
                .map(|a| index.get(a.as_str()).copied())
                .collect()
        })
        .collect()
}

/// What a crash loop leads to: the service is failed either way; the
/// note for status, and whether the board is to be rebooted.
pub fn crash_loop_outcome(action: CrashLoopAction) -> (&'static str, bool) {
    match action {
        CrashLoopAction::GiveUp => ("crash loop", false),
        CrashLoopAction::Reboot => ("crash loop, reboot", true),
    }
}

/// Is a dependency met: running and ready (for `ready = "notify"`, after it
/// said so), or finished successfully (a one-shot)?
pub fn dependency_met(running: bool, ready: bool, exited: Option<Exit>) -> bool {
    (running && ready) || exited.is_some_and(Exit::success)
}

/// The first of a service's resolved `after` entries that is not met
/// (its position in the list), or `None` when it may start.
pub fn first_unmet(deps: &[Option<usize>], met: impl Fn(usize) -> bool) -> Option<usize> {
    deps.iter().position(|d| !d.is_some_and(&met))
}

/// Shutdown order: while one service is stopping, wait; otherwise stop the
/// last one in table order that still has a process (reverse start order).
pub fn next_to_stop(stopping: impl Iterator<Item = bool>, alive: &[bool]) -> Option<usize> {
    let mut stopping = stopping;
    if stopping.any(|s| s) {
        return None;
    }
    alive.iter().rposition(|a| *a)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::unreachable)]
mod tests {
    use super::*;
    use azl_formats::{CrashLoop, CrashLoopAction, Readiness};

    fn svc(restart: RestartPolicy) -> Service {
        Service {
            name: azl_formats::name("t").unwrap(),
            exec: vec!["/x".into()],
            env: vec![],
            uid: 0,
            gid: 0,
            workdir: None,
            restart,
            restart_delay_ms: 100,
            restart_delay_max_ms: 1000,
            crash_loop: CrashLoop {
                max_restarts: 3,
                window_s: 10,
                action: CrashLoopAction::GiveUp,
            },
            after: vec![],
            memory_max: None,
            ready: Readiness::Started,
            stop_timeout_ms: None,
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let s = svc(RestartPolicy::Always);
        let d: Vec<u128> = (0..7).map(|f| backoff(&s, f).as_millis()).collect();
        assert_eq!(d, [100, 100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff(&s, u32::MAX).as_millis(), 1000);
    }

    #[test]
    fn policies() {
        let t0 = Instant::now();
        let short = Duration::from_millis(10);
        let mut st = RestartState::default();
        assert_eq!(
            st.on_exit(&svc(RestartPolicy::Never), Exit::Code(1), short, t0),
            Decision::Stay
        );
        assert_eq!(
            st.on_exit(&svc(RestartPolicy::OnFailure), Exit::Code(0), short, t0),
            Decision::Stay
        );
        assert!(matches!(
            st.on_exit(&svc(RestartPolicy::OnFailure), Exit::Signal(9), short, t0),
            Decision::Restart(_)
        ));
        let mut st = RestartState::default();
        assert_eq!(
            st.on_exit(&svc(RestartPolicy::Always), Exit::Code(0), short, t0),
            Decision::Restart(Duration::from_millis(100))
        );
    }

    #[test]
    fn growing_delays_then_crash_loop() {
        let s = svc(RestartPolicy::Always);
        let mut st = RestartState::default();
        let t0 = Instant::now();
        let short = Duration::from_millis(5);
        let mut delays = vec![];
        for i in 0..4u64 {
            match st.on_exit(&s, Exit::Code(1), short, t0 + Duration::from_millis(i)) {
                Decision::Restart(d) => delays.push(d.as_millis()),
                Decision::CrashLoop => delays.push(0),
                Decision::Stay => unreachable!(),
            }
        }
        assert_eq!(
            delays,
            [100, 200, 400, 0],
            "4th restart within 10 s exceeds max_restarts=3"
        );
    }

    #[test]
    fn window_forgets_old_restarts_and_stable_runs_reset_backoff() {
        let s = svc(RestartPolicy::Always);
        let mut st = RestartState::default();
        let t0 = Instant::now();
        let short = Duration::from_millis(5);
        for i in 0..3u64 {
            assert!(matches!(
                st.on_exit(&s, Exit::Code(1), short, t0 + Duration::from_secs(i)),
                Decision::Restart(_)
            ));
        }
        // 20 s later the old restarts are outside the 10 s window.
        let later = t0 + Duration::from_secs(20);
        assert_eq!(
            st.on_exit(&s, Exit::Code(1), short, later),
            Decision::Restart(Duration::from_millis(800))
        );
        // A long, stable run resets the backoff.
        let d = st.on_exit(
            &s,
            Exit::Code(1),
            Duration::from_secs(5),
            later + Duration::from_secs(5),
        );
        assert_eq!(d, Decision::Restart(Duration::from_millis(100)));
    }

    #[test]
    fn after_resolution_is_linear_for_100k_services() {
        // A 100k-long `after` chain plus a fan-in on the first service.
        let names: Vec<String> = (0..100_000).map(|i| format!("s{i}")).collect();
        let services: Vec<Service> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let mut s = svc(RestartPolicy::Never);
                s.name = azl_formats::name(n).unwrap();
                if i > 0 {
                    s.after = vec![
                        azl_formats::name(&names[i - 1]).unwrap(),
                        azl_formats::name("s0").unwrap(),
                    ];
                }
                s
            })
            .collect();
        let start = std::time::Instant::now();
        let table = azl_formats::ServiceTable {
            services: services.clone(),
        };
        assert_eq!(table.validate(), Ok(()));
        let deps = resolve_after(&services);
        assert_eq!(deps.len(), 100_000);
        assert_eq!(deps[0], Vec::<Option<usize>>::new());
        assert_eq!(deps[99_999], vec![Some(99_998), Some(0)]);
        // Quadratic resolution took tens of seconds here; generous bound.
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
        let mut bad = services[1].clone();
        bad.after = vec![azl_formats::name("missing").unwrap()];
        assert_eq!(resolve_after(&[bad]), vec![vec![None]]);
    }

    #[test]
    fn after_ordering_waits_for_notify_readiness() {
        // a (notify) <- b (after a) <- c (after a, b); d after a one-shot e.
        let deps = [
            vec![],
            vec![Some(0)],
            vec![Some(0), Some(1)],
            vec![Some(4)],
            vec![],
        ];
        // (running, ready, exited) per service.
        let mut st = [(false, false, None); 5];
        let startable = |st: &[(bool, bool, Option<Exit>); 5]| -> Vec<usize> {
            (0..5)
                .filter(|&i| {
                    !st[i].0
                        && st[i].2.is_none()
                        && first_unmet(&deps[i], |j| dependency_met(st[j].0, st[j].1, st[j].2))
                            .is_none()
                })
                .collect()
        };
        assert_eq!(startable(&st), [0, 4]);
        st[0] = (true, false, None); // a started, has not notified yet
        st[4] = (true, true, None); // e running (simple readiness)
        assert_eq!(startable(&st), [3]);
        st[3] = (true, true, None);
        st[0].1 = true; // a notified
        assert_eq!(startable(&st), [1]);
        st[1] = (true, true, None);
        assert_eq!(startable(&st), [2]);
        // A failed one-shot never satisfies; a successful one does.
        assert!(!dependency_met(false, false, Some(Exit::Code(1))));
        assert!(!dependency_met(false, false, Some(Exit::Signal(9))));
        assert!(dependency_met(false, false, Some(Exit::Code(0))));
        // Unknown dependency: never met; the unmet position is reported.
        assert_eq!(first_unmet(&[Some(0), None], |_| true), Some(1));
    }

    #[test]
    fn shutdown_stops_one_at_a_time_in_reverse_order() {
        let alive = [true, false, true, true];
        assert_eq!(next_to_stop([false; 4].into_iter(), &alive), Some(3));
        assert_eq!(
            next_to_stop([false, false, false, true].into_iter(), &alive),
            None
        );
        assert_eq!(
            next_to_stop([false; 4].into_iter(), &[true, false, true, false]),
            Some(2)
        );
        assert_eq!(next_to_stop([false; 4].into_iter(), &[false; 4]), None);
    }

    #[test]
    fn crash_loop_gives_up_or_reboots_as_configured() {
        let t0 = Instant::now();
        let mut s = svc(RestartPolicy::Always);
        s.crash_loop.max_restarts = 1;
        let mut st = RestartState::default();
        let short = Duration::from_millis(1);
        assert!(matches!(
            st.on_exit(&s, Exit::Code(1), short, t0),
            Decision::Restart(_)
        ));
        assert_eq!(
            st.on_exit(&s, Exit::Code(1), short, t0 + Duration::from_secs(1)),
            Decision::CrashLoop
        );
        assert_eq!(
            crash_loop_outcome(CrashLoopAction::GiveUp),
            ("crash loop", false)
        );
        assert_eq!(
            crash_loop_outcome(CrashLoopAction::Reboot),
            ("crash loop, reboot", true)
        );
    }
}
