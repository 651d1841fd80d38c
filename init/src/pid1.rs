//! PID 1: the boot sequence (mount → modules → identity → watchdog →
//! services) and the main loop that reaps, supervises, answers initctl,
//! pets the watchdog and carries out shutdown. Nothing here may panic or
//! return: fatal errors go to the emergency state.
use crate::cgroup::Cgroups;
use crate::control::Control;
use crate::measure::{self, Measurer};
use crate::poller::{Poller, Token};
use crate::protocol::Request;
use crate::shutdown::Kind;
use crate::signals::Action;
use crate::supervise::{Escalation, Supervisor};
use crate::watchdog::Watchdog;
use crate::{config, emergency, identity, logger, modules, mount, root, signals};
use azl_formats::measure::{Kind as MKind, Phase};
use std::time::{Duration, Instant};

/// How often stage 2 asks dm-verity whether it has seen corruption.
const HEALTH_INTERVAL: Duration = Duration::from_secs(2);
/// Emergency delay until the board config says otherwise.
const DEFAULT_EMERGENCY_DELAY_S: u32 = 10;

pub fn run() -> ! {
    logger::install();
    emergency::install_panic_hook(DEFAULT_EMERGENCY_DELAY_S);
    log::info!("azl-edge init {} starting", env!("CARGO_PKG_VERSION"));
    if let Err(e) = mount::early_mounts() {
        emergency::enter(&e, DEFAULT_EMERGENCY_DELAY_S, None);
    }
    logger::attach_kmsg();
    let cfg = match config::boot_config() {
        Ok(c) => c,
        Err(e) => emergency::enter(&e, DEFAULT_EMERGENCY_DELAY_S, None),
    };
    let delay = cfg.emergency_reboot_delay_s;
    emergency::install_panic_hook(delay);
    log::info!(
        "image {} {} for board {}",
        cfg.image_name,
        cfg.image_version,
        cfg.board
    );
    let in_initramfs = root::in_initramfs();
    // Stage 2 of a verified boot (exec'd by stage 1 from the root): the
    // hostname, loopback, modules and first measurements are done already.
    let stage2 = cfg.root.is_some() && !in_initramfs;
    let mut measurer = Measurer::start();
    if !stage2 {
        identity::set_hostname(&cfg.hostname);
        identity::bring_up_loopback();
        measurer.measure(MKind::Phase(Phase::InitramfsEntered), &[]);
        measurer.measure(MKind::Cmdline, &measure::cmdline());
        modules::load_all(&cfg.modules);
    }

    let mut watchdog = match &cfg.watchdog {
        None => None,
        Some(w) => match Watchdog::open(w) {
            Ok(wd) => Some(wd),
            Err(e) if w.required => emergency::enter(&e, delay, None),
            Err(e) => {
                log::warn!("{e}; continuing without a watchdog");
                None
            }
        },
    };
    if let Some(spec) = cfg.root.as_ref().filter(|_| in_initramfs) {
        stage1(spec, &cfg.board, delay, watchdog.as_mut(), &mut measurer);
    }
    let sigfd = match signals::setup() {
        Ok(fd) => fd,
        Err(e) => emergency::enter(
            &format!("cannot set up signals: {}", e.desc()),
            delay,
            watchdog.as_mut(),
        ),
    };
    let poller = match Poller::new() {
        Ok(p) => p,
        Err(e) => emergency::enter(
            &format!("cannot create epoll: {}", e.desc()),
            delay,
            watchdog.as_mut(),
        ),
    };
    poller.add(&sigfd, Token::Signal);
    let table = match config::service_table() {
        Ok((t, bytes)) => {
            measurer.measure(MKind::ServiceTable, &bytes);
            t
        }
        Err(e) => emergency::enter(&e, delay, watchdog.as_mut()),
    };
    let mut control = match Control::bind(azl_formats::paths::CONTROL_SOCKET, &poller) {
        Ok(c) => Some(c),
        Err(e) => {
            log::error!(
                "control socket {}: {e}; initctl will not work",
                azl_formats::paths::CONTROL_SOCKET
            );
            None
        }
    };
    log::info!("{} services in table", table.services.len());
    let grace = Duration::from_millis(u64::from(cfg.shutdown_grace_ms));
    let mut sup = Supervisor::new(table, Cgroups::init(), grace);
    let mut shutting_down: Option<Kind> = None;
    let mut shutdown_measured = false;
    // Stage 2 of a verified boot: watch dm-verity for corruption.
    // The control device is opened once; each check is one ioctl.
    let health = cfg
        .root
        .as_ref()
        .and_then(|_| match crate::verity::DeviceMapper::open() {
            Ok(dm) => Some(dm),
            Err(e) => {
                log::error!("verity health checks disabled: {e}");
                None
            }
        });
    let mut next_health = health.as_ref().map(|_| Instant::now());

    loop {
        let now = Instant::now();
        sup.tick(&poller, now);
        if sup.take_ready() {
            measurer.measure(MKind::Phase(Phase::ServicesReady), &[]);
        }
        if let Some(Escalation::Reboot(why)) = sup.take_escalation() {
            log::warn!("reboot requested: {why}");
            begin_shutdown(&mut sup, &mut shutting_down, Kind::Reboot, now);
        }
        if shutting_down.is_some() && !shutdown_measured {
            shutdown_measured = true;
            measurer.measure(MKind::Phase(Phase::Shutdown), &[]);
        }
        if let Some(kind) = shutting_down {
            if sup.all_stopped() {
                crate::shutdown::finish(kind);
            }
        }
        if let Some(c) = control.as_mut() {
            c.expire(&poller, now);
        }
        if let Some(at) = next_health.filter(|at| now >= *at) {
            if let Err(e) = health.as_ref().map_or(Ok(()), root::check_health) {
                emergency::enter(
                    &format!("root filesystem is corrupted: {e}"),
                    delay,
                    watchdog.as_mut(),
                );
            }
            next_health = Some(at + HEALTH_INTERVAL);
        }
        let wd_next = watchdog.as_mut().map(|w| w.service(now));
        measurer.flush();
        let deadline = [
            sup.next_deadline(),
            wd_next,
            control.as_ref().and_then(Control::next_deadline),
        ]
        .into_iter()
        .flatten()
        .min();
        for token in poller.wait(deadline) {
            let now = Instant::now();
            match token {
                Token::Signal => {
                    for action in signals::read(&sigfd) {
                        match action {
                            Action::Reap => {
                                for (pid, exit) in signals::reap() {
                                    if !sup.on_exit(pid, exit, &poller, now) {
                                        log::debug!("reaped orphan {pid} ({exit})");
                                    }
                                }
                            }
                            Action::Poweroff => {
                                begin_shutdown(&mut sup, &mut shutting_down, Kind::Poweroff, now)
                            }
                            Action::Reboot => {
                                begin_shutdown(&mut sup, &mut shutting_down, Kind::Reboot, now)
                            }
                            Action::Ignore => {}
                        }
                    }
                }
                Token::Listener => {
                    if let Some(c) = control.as_mut() {
                        c.on_listener(&poller);
                    }
                }
                Token::Conn(slot) => {
                    let pending = control.as_mut().and_then(|c| c.on_conn(slot, &poller));
                    if let Some(p) = pending {
                        let result = match &p.request {
                            Request::Status => Ok(sup.status(now)),
                            Request::Version => {
                                Ok(format!("azl-edge init {}", env!("CARGO_PKG_VERSION")))
                            }
                            Request::Start(s) => sup.start(s, &poller, now),
                            Request::Stop(s) => sup.stop(s, now),
                            Request::Restart(s) => sup.restart(s, &poller, now),
                            Request::Reboot => {
                                begin_shutdown(&mut sup, &mut shutting_down, Kind::Reboot, now);
                                Ok("rebooting".into())
                            }
                            Request::Poweroff => {
                                begin_shutdown(&mut sup, &mut shutting_down, Kind::Poweroff, now);
                                Ok("powering off".into())
                            }
                            Request::WatchdogTest => match watchdog.as_ref() {
                                None => Err("no watchdog is armed on this device".into()),
                                Some(_) => {
                                    Ok("main loop stopping; the watchdog must reset the board"
                                        .into())
                                }
                            },
                        };
                        let wedge = matches!(p.request, Request::WatchdogTest) && result.is_ok();
                        p.answer(result);
                        if wedge {
                            wedge_for_watchdog_test();
                        }
                    }
                }
                Token::Output(i) => sup.on_output(i, &poller),
                Token::Notify(i) => sup.on_notify(i, &poller),
                Token::Exec(i) => sup.on_exec(i, &poller),
            }
        }
    }
}

/// Stage 1 (initramfs): assemble the verified root and switch to it.
/// Returns never: exec of the root's init, or the emergency state.
fn stage1(
    spec: &azl_formats::RootSpec,
    board: &str,
    delay: u32,
    watchdog: Option<&mut Watchdog>,
    measurer: &mut Measurer,
) -> ! {
    let err = match root::assemble(spec, board, measurer) {
        Ok(_verified) => {
            measurer.measure(MKind::Phase(Phase::RootSwitched), &[]);
            measurer.flush();
            root::switch_root()
        }
        Err(e) => e,
    };
    emergency::enter(&err, delay, watchdog)
}

fn begin_shutdown(sup: &mut Supervisor, state: &mut Option<Kind>, kind: Kind, now: Instant) {
    if state.is_none() {
        log::info!(
            "shutdown: {} requested; stopping services",
            if kind == Kind::Poweroff {
                "power off"
            } else {
                "reboot"
            }
        );
        *state = Some(kind);
        sup.begin_shutdown(now);
    }
}

/// `initctl watchdog-test`: stop running the main loop (as a wedged init
/// would). Only the hardware watchdog can end this.
fn wedge_for_watchdog_test() -> ! {
    log::warn!("watchdog test: main loop stopped, no more watchdog pets");
    nix::unistd::sync();
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
