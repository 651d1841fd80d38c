//! The main loop of PID 1 after boot: one epoll wait at a time, between
//! which it ticks the supervisor, notes readiness, escalations and shutdown
//! progress, drives a trial boot's health gate, checks the verified root's
//! health and pets the watchdog.
use super::poller::Token;
use super::requests;
use super::sequence::System;
use super::shutdown::{self, Kind};
use super::signals::{self, Action};
use super::ShutdownState;
use crate::boot::emergency;
use crate::initctl::server::Control;
use crate::supervise::Escalation;
use crate::verify::health;
use azl_formats::measure::{Kind as MKind, Phase};
use std::time::{Duration, Instant};

/// How often stage 2 asks dm-verity whether it has seen corruption.
const HEALTH_INTERVAL: Duration = Duration::from_secs(2);

pub(super) fn run(mut s: System) -> ! {
    let mut down = ShutdownState::default();
    let mut next_health = s.health.as_ref().map(|_| Instant::now());
    loop {
        let now = Instant::now();
        s.sup.tick(&s.poller, now);
        if s.sup.take_ready() {
            s.measurer.measure(MKind::Phase(Phase::ServicesReady), &[]);
        }
        if let Some(Escalation::Reboot(why)) = s.sup.take_escalation() {
            log::warn!("reboot requested: {why}");
            down.begin(&mut s.sup, Kind::Reboot, now);
        }
        // The trial's health gate, until the system goes down (a reboot
        // before the commit makes the next boot record "did not commit").
        if let Some(g) = s.gate.as_mut().filter(|_| down.kind.is_none()) {
            if g.poll(now, &s.sup, &mut s.measurer, &s.poller) {
                down.begin(&mut s.sup, Kind::Reboot, now);
            }
        }
        if down.kind.is_some() && !down.measured {
            down.measured = true;
            s.measurer.measure(MKind::Phase(Phase::Shutdown), &[]);
        }
        if let Some(kind) = down.kind {
            if s.sup.all_stopped() {
                shutdown::finish(kind);
            }
        }
        if let Some(c) = s.control.as_mut() {
            c.expire(&s.poller, now);
        }
        if let Some(at) = next_health.filter(|at| now >= *at) {
            if let Err(e) = s.health.as_ref().map_or(Ok(()), health::check_health) {
                emergency::enter(
                    &format!("root filesystem is corrupted: {e}"),
                    s.delay,
                    s.watchdog.as_mut(),
                );
            }
            next_health = Some(at + HEALTH_INTERVAL);
        }
        let wd_next = s.watchdog.as_mut().map(|w| w.service(now));
        s.measurer.flush();
        let deadline = [
            s.sup.next_deadline(),
            wd_next,
            s.control.as_ref().and_then(Control::next_deadline),
            s.gate.as_ref().and_then(|g| g.next_deadline()),
        ]
        .into_iter()
        .flatten()
        .min();
        for token in s.poller.wait(deadline) {
            dispatch(&mut s, &mut down, token, Instant::now());
        }
    }
}

/// Handle one ready fd.
fn dispatch(s: &mut System, down: &mut ShutdownState, token: Token, now: Instant) {
    match token {
        Token::Signal => {
            for action in signals::read(&s.sigfd) {
                match action {
                    Action::Reap => {
                        for (pid, exit) in signals::reap() {
                            if s.sup.on_exit(pid, exit, &s.poller, now) {
                                continue;
                            }
                            let gate = s.gate.as_mut();
                            if !gate.is_some_and(|g| g.on_exit(pid, exit, &s.poller)) {
                                log::debug!("reaped orphan {pid} ({exit})");
                            }
                        }
                    }
                    Action::Poweroff => down.begin(&mut s.sup, Kind::Poweroff, now),
                    Action::Reboot => down.begin(&mut s.sup, Kind::Reboot, now),
                    Action::Ignore => {}
                }
            }
        }
        Token::Listener => {
            if let Some(c) = s.control.as_mut() {
                c.on_listener(&s.poller);
            }
        }
        Token::Conn(slot) => {
            let pending = s.control.as_mut().and_then(|c| c.on_conn(slot, &s.poller));
            if let Some(p) = pending {
                requests::handle(s, down, p, now);
            }
        }
        Token::Output(i) => s.sup.on_output(i, &s.poller),
        Token::Notify(i) => s.sup.on_notify(i, &s.poller),
        Token::Exec(i) => s.sup.on_exec(i, &s.poller),
        Token::Check => {
            if let Some(g) = s.gate.as_mut() {
                g.on_output(&s.poller);
            }
        }
    }
}
