//! The boot sequence, in the order the folders of this crate name it:
//! `boot` (logging, pseudo filesystems, config, identity, modules,
//! watchdog), then in the initramfs stage 1 — `verify` the root slot,
//! `measure` it, `mount` it and switch to it — and in the root (stage 2)
//! the service table, signals, the control socket, the `supervise`or and,
//! on a trial boot, the update's health gate.
use super::poller::{Poller, Token};
use super::signals;
use crate::boot::watchdog::Watchdog;
use crate::boot::{config, emergency, identity, logger, modules, mounts};
use crate::initctl::server::Control;
use crate::measure::{self, Measurer};
use crate::mount::switch;
use crate::supervise::cgroup::Cgroups;
use crate::supervise::Supervisor;
use crate::update::bootctl::{self, BootControl};
use crate::update::{gate, select};
use crate::verify::{manifest as vmanifest, partition, root, verity::DeviceMapper};
use azl_formats::bootstate::Slot;
use azl_formats::measure::{Kind as MKind, Phase};
use nix::sys::signalfd::SignalFd;
use std::time::Duration;

/// Emergency delay until the board config says otherwise.
const DEFAULT_EMERGENCY_DELAY_S: u32 = 10;

/// Everything the event loop runs with, once boot is done.
pub(super) struct System {
    pub delay: u32,
    pub watchdog: Option<Watchdog>,
    pub measurer: Measurer,
    pub sigfd: SignalFd,
    pub poller: Poller,
    pub sup: Supervisor,
    pub control: Option<Control>,
    /// The device-mapper control device, when stage 2 watches verity.
    pub health: Option<DeviceMapper>,
    /// The health gate, on the trial boot of a slot.
    pub gate: Option<gate::Driver>,
}

/// Bring the system up to the point where services are supervised. In the
/// initramfs of a verified boot this never returns (it execs the root).
pub(super) fn boot() -> System {
    logger::install();
    emergency::install_panic_hook(DEFAULT_EMERGENCY_DELAY_S);
    log::info!("azl-edge init {} starting", env!("CARGO_PKG_VERSION"));
    if let Err(e) = mounts::early_mounts() {
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
    let in_initramfs = switch::in_initramfs();
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
    let control = match Control::bind(azl_formats::paths::CONTROL_SOCKET, &poller) {
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
    let sup = Supervisor::new(table, Cgroups::init(), grace);
    // Stage 2 of a verified boot: watch dm-verity for corruption.
    // The control device is opened once; each check is one ioctl.
    let health = cfg.root.as_ref().and_then(|_| match DeviceMapper::open() {
        Ok(dm) => Some(dm),
        Err(e) => {
            log::error!("verity health checks disabled: {e}");
            None
        }
    });
    // A trial boot is judged by the policy in this (the new) slot's own
    // boot config.
    let gate = cfg
        .root
        .as_ref()
        .filter(|_| stage2)
        .and_then(gate::Driver::start);
    System {
        delay,
        watchdog,
        measurer,
        sigfd,
        poller,
        sup,
        control,
        health,
        gate,
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
    let (partname, mut ctl, pick) = match choose_slot(spec, board) {
        Ok(x) => x,
        Err(e) => emergency::enter(&e, delay, watchdog),
    };
    match root::assemble(spec, &partname, board, measurer) {
        Ok(verified) => {
            if let Some(p) = &pick {
                if verified.digest() != p.manifest.digest {
                    let why = format!(
                        "{partname}: the manifest changed between the slot choice and the mount"
                    );
                    if let Some(c) = ctl.as_mut() {
                        fail_pick(c.as_mut(), p, &why);
                    }
                    emergency::enter(&why, delay, watchdog);
                }
                if let Err(e) = select::record(p) {
                    log::error!("cannot record the booted slot: {e}; `update` will not work");
                }
            }
            keep_public_key();
            measurer.measure(MKind::Phase(Phase::RootSwitched), &[]);
            measurer.flush();
            let err = switch::switch_root();
            emergency::enter(&err, delay, watchdog)
        }
        Err(e) => {
            if let (Some(c), Some(p)) = (ctl.as_mut(), &pick) {
                fail_pick(c.as_mut(), p, &e.to_string());
            }
            emergency::enter(&e, delay, watchdog)
        }
    }
}

/// The slot to boot: from the boot state (initramfs-select), or the one
/// slot of a `fixed` image.
#[allow(clippy::type_complexity)]
fn choose_slot(
    spec: &azl_formats::RootSpec,
    board: &str,
) -> Result<(String, Option<Box<dyn BootControl>>, Option<select::Pick>), String> {
    if spec.boot_control == azl_formats::BootControl::Fixed {
        return Ok((spec.partition.clone(), None, None));
    }
    let wait = Duration::from_secs(u64::from(spec.wait_s));
    let mut ctl = bootctl::open(&spec.boot_control, wait).map_err(|e| e.to_string())?;
    let mut probe = |slot: Slot| -> Result<select::SlotManifest, String> {
        let name = slot.partition();
        let part = partition::find(name, wait).map_err(|e| e.to_string())?;
        let v =
            vmanifest::load(&part, name, board, spec.allow_unsigned).map_err(|e| e.to_string())?;
        Ok(select::SlotManifest {
            security_version: v.manifest.security_version,
            version: v.manifest.image_version.clone(),
            digest: v.digest(),
            cmdline: v.manifest.cmdline.clone(),
        })
    };
    let pick = select::pick(ctl.as_mut(), &mut probe).map_err(|e| e.to_string())?;
    log::info!(
        "boot state ({}): booting {}{} (security version {})",
        ctl.name(),
        pick.slot,
        if pick.trial { " as its one trial" } else { "" },
        pick.manifest.security_version
    );
    Ok((pick.slot.partition().to_string(), Some(ctl), Some(pick)))
}

/// A chosen trial slot failed to assemble: record why (the state says
/// `Trying` already, so the next boot falls back even if this write fails).
fn fail_pick(ctl: &mut dyn BootControl, pick: &select::Pick, why: &str) {
    if pick.trial {
        if let Err(e) = bootctl::fail(ctl, pick.slot, why) {
            log::error!("cannot record the failed trial of {}: {e}", pick.slot);
        }
    }
}

/// Stage 2 (and `update install`) verify with the initramfs' key.
fn keep_public_key() {
    let from = azl_formats::paths::MANIFEST_PUB;
    let to = azl_formats::paths::RUN_MANIFEST_PUB;
    if std::path::Path::new(from).exists() {
        if let Err(e) = std::fs::create_dir_all("/run/azl-edge")
            .and_then(|()| std::fs::copy(from, to).map(|_| ()))
        {
            log::error!("cannot copy {from} to {to}: {e}; `update install` will refuse bundles");
        }
    }
}
