//! Stage 1's choice of the root slot from the boot state: the pending
//! trial (its try used up and written *before* booting), else the
//! committed slot, else the other good one. The chosen slot's manifest
//! must verify, be at or above the floor and be the one the state
//! recorded; a slot that fails is recorded as refused and the choice is
//! made again. A blank state (first boot) becomes the factory state of the
//! verified `root-a`; a corrupt pair is rebuilt from the slots' verified
//! manifests (recovery). What was booted goes to [`paths::BOOTED`].
//!
//! The floor in force is max(boot state floor, TPM NV floor)
//! ([`super::floor`]). A boot state whose floor is below the NV floor was
//! restored from an old copy or forged: it is not trusted and is rebuilt
//! as in recovery, with no slot below the NV floor a candidate. After the
//! slot is chosen, an NV floor below the state's (a power cut between a
//! commit's state write and its NV raise) is raised to it.
use super::bootctl::{self, BootControl, BootCtlError};
use super::floor::{self, FloorStore, Nv};
use azl_formats::booted::Booted;
use azl_formats::bootstate::{text, BootState, Slot, SlotInfo, SlotState};
use azl_formats::envelope::Enveloped;
use azl_formats::manifest::{Digest, Hex};
use azl_formats::paths;
use std::fmt;

/// What stage 1 learnt from a slot's verified manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotManifest {
    pub security_version: u32,
    pub version: String,
    pub digest: Digest,
    /// The kernel command line the manifest records (UEFI: the slot's
    /// boot entry's load options).
    pub cmdline: String,
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick {
    pub slot: Slot,
    pub trial: bool,
    pub manifest: SlotManifest,
    /// Why the state was rebuilt (corrupt pair), if it was.
    pub recovery: Option<String>,
}

impl Pick {
    pub fn booted(&self) -> Booted {
        Booted {
            slot: self.slot,
            trial: self.trial,
            manifest_sha256: self.manifest.digest,
            security_version: self.manifest.security_version,
            recovery: self.recovery.as_deref().map(text),
        }
    }
}

#[derive(Debug)]
pub enum SelectError {
    State(BootCtlError),
    /// No slot may boot; the state (as written) says why for each.
    NothingBootable {
        detail: String,
    },
    /// First boot: the factory slot does not verify.
    Factory {
        slot: Slot,
        why: String,
    },
    /// Recovery: no slot verifies (at or above the TPM NV floor).
    NoSlotVerifies {
        /// Why the state was rebuilt.
        why: String,
        detail: String,
    },
}

impl fmt::Display for SelectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::State(e) => write!(f, "{e}"),
            Self::NothingBootable { detail } => {
                write!(f, "boot state allows no slot to boot: {detail}")
            }
            Self::Factory { slot, why } => write!(
                f,
                "first boot: the factory slot {slot} does not verify, no boot state written: {why}"
            ),
            Self::NoSlotVerifies { why, detail } => {
                write!(f, "no slot verifies for recovery ({why}): {detail}")
            }
        }
    }
}

fn describe(s: &BootState) -> String {
    let slots: Vec<String> = Slot::ALL
        .iter()
        .map(|&sl| {
            let i = s.slot(sl);
            let why = if i.reason.is_empty() {
                String::new()
            } else {
                format!(" ({})", i.reason)
            };
            format!("{sl} {:?} v{}{why}", i.state, i.security_version)
        })
        .collect();
    format!("floor {}; {}", s.floor, slots.join("; "))
}

/// Decide which slot boots, with the kernel's TPM (if any) for the NV
/// floor. `probe(slot)` finds the slot and verifies its manifest
/// (signature, board, position), returning what it holds.
pub fn pick(
    ctl: &mut dyn BootControl,
    probe: &mut dyn FnMut(Slot) -> Result<SlotManifest, String>,
) -> Result<Pick, SelectError> {
    pick_with(ctl, floor::device().as_mut(), probe)
}

fn log_nv(nv: &Nv) {
    match nv {
        Nv::Absent => log::info!("update: no TPM: the anti-rollback floor is the boot state's only"),
        Nv::At { .. } | Nv::Undefined => log::info!("update: TPM NV floor: {}", nv.describe()),
        Nv::Failed(e) => log::error!(
            "!!! update: TPM NV floor unavailable: {e}; this boot is protected by the boot state's floor only"
        ),
    }
}

/// [`pick`] with the NV floor from `nv`.
pub fn pick_with(
    ctl: &mut dyn BootControl,
    nv: &mut dyn FloorStore,
    probe: &mut dyn FnMut(Slot) -> Result<SlotManifest, String>,
) -> Result<Pick, SelectError> {
    let nv_now = nv.read(true);
    log_nv(&nv_now);
    let nv_floor = nv_now.floor();
    let (mut state, recovery) = match bootctl::state(ctl) {
        Ok(s) if s.floor < nv_floor => {
            let why = format!(
                "the boot state's floor {} is below the TPM NV floor {nv_floor} (restored from an old copy or forged)",
                s.floor
            );
            let s = rebuild(ctl, probe, &why, nv_floor)?;
            (s, Some(why))
        }
        Ok(s) => (s, None),
        Err(BootCtlError::Blank { dev }) if nv_floor > 0 => {
            let why = format!(
                "boot state on {dev} was never written, but the TPM NV floor is {nv_floor}"
            );
            let s = rebuild(ctl, probe, &why, nv_floor)?;
            (s, Some(why))
        }
        Err(BootCtlError::Blank { dev }) => {
            let m = probe(Slot::A).map_err(|why| SelectError::Factory { slot: Slot::A, why })?;
            let s = BootState::factory(m.security_version, &m.version, m.digest);
            ctl.write(&s).map_err(SelectError::State)?;
            log::info!(
                "boot state: first boot, factory state written to {dev} ({} committed, security version {})",
                Slot::A,
                m.security_version
            );
            (s, None)
        }
        Err(e @ BootCtlError::Corrupt { .. }) => {
            let why = e.to_string();
            let s = rebuild(ctl, probe, &why, nv_floor)?;
            (s, Some(why))
        }
        Err(e) => return Err(SelectError::State(e)),
    };
    // Each refusal marks a slot bad, so two rounds cover both slots.
    for _ in 0..3 {
        let floor = state.floor.max(nv_floor);
        let choice = state.choose_started(floor, ctl.started()).ok_or_else(|| {
            SelectError::NothingBootable {
                detail: describe(&state),
            }
        })?;
        if let Some(next) = &choice.write {
            ctl.write(next).map_err(SelectError::State)?;
            state = next.clone();
        }
        let recorded = state.slot(choice.slot).manifest_sha256;
        let refusal = match probe(choice.slot) {
            Err(why) => why,
            Ok(m) if m.security_version < floor => format!(
                "its manifest has security version {}, below the floor {floor}",
                m.security_version
            ),
            Ok(m) if m.digest != recorded => format!(
                "manifest {} is not the one the boot state recorded ({})",
                Hex(m.digest.get(..8).unwrap_or_default()),
                Hex(recorded.get(..8).unwrap_or_default())
            ),
            Ok(manifest) => {
                catch_up(nv, &nv_now, state.floor);
                sync_firmware(ctl, &state, &choice, &manifest, probe);
                return Ok(Pick {
                    slot: choice.slot,
                    trial: choice.trial,
                    manifest,
                    recovery,
                });
            }
        };
        log::error!("boot state: refusing {}: {refusal}", choice.slot);
        state = if choice.trial {
            state
                .fail_trial(choice.slot, &refusal)
                .unwrap_or_else(|_| state.refuse(choice.slot, &refusal))
        } else {
            state.refuse(choice.slot, &refusal)
        };
        ctl.write(&state).map_err(SelectError::State)?;
    }
    Err(SelectError::NothingBootable {
        detail: describe(&state),
    })
}

/// Bring the firmware's boot entries in line with the state (a no-op on
/// initramfs-select). A failure is logged, never fatal: the state is the
/// record, and the chosen slot boots either way.
fn sync_firmware(
    ctl: &mut dyn BootControl,
    state: &BootState,
    choice: &azl_formats::bootstate::BootChoice,
    booted: &SlotManifest,
    probe: &mut dyn FnMut(Slot) -> Result<SlotManifest, String>,
) {
    // Only boot methods with a kernel per slot have entries to keep.
    if !ctl.takes_boot_files() {
        return;
    }
    let mut cmdlines = vec![(choice.slot, booted.cmdline.clone())];
    let other = choice.slot.other();
    if state.slot(other).bootable() {
        match probe(other) {
            Ok(m) => cmdlines.push((other, m.cmdline)),
            Err(e) => log::warn!(
                "boot entries: {other} does not verify ({e}); its entry is left as it is"
            ),
        }
    }
    let plan = bootctl::SyncPlan {
        committed: state.active,
        trial: choice.trial,
        rearm: choice.rearm,
        cmdlines,
    };
    if let Err(e) = ctl.sync(&plan) {
        log::error!("!!! boot entries ({}): {e}", ctl.name());
    }
}

/// The state's floor is above the NV floor (a commit's NV raise was cut
/// off, or the index is new): raise the NV floor to it. The floor was
/// just checked against the slot being booted, so this never locks it out.
fn catch_up(nv: &mut dyn FloorStore, now: &Nv, floor: u32) {
    let below = match now {
        Nv::At { floor: f, .. } => *f < floor.min(azl_formats::nvfloor::MAX),
        Nv::Undefined => true,
        Nv::Absent | Nv::Failed(_) => false,
    };
    if !below {
        return;
    }
    match nv.raise(floor) {
        Nv::Failed(e) => log::error!(
            "!!! update: cannot raise the TPM NV floor to the boot state's {floor}: {e}"
        ),
        after => log::info!(
            "update: TPM NV floor raised from {} to the boot state's: {}",
            now.floor(),
            after.describe()
        ),
    }
}

/// A corrupt pair: boot the verifying slot with the highest security
/// version, recorded as committed; the other slot is recorded as it
/// verified (good) or empty. The floor becomes the chosen version. A
/// slot below `nv_floor` (the TPM's) is no candidate: it is recorded bad.
fn rebuild(
    ctl: &mut dyn BootControl,
    probe: &mut dyn FnMut(Slot) -> Result<SlotManifest, String>,
    why: &str,
    nv_floor: u32,
) -> Result<BootState, SelectError> {
    log::error!("!!! RECOVERY: {why}; rebuilding it from the slots' verified manifests");
    let mut found: Vec<(Slot, SlotManifest)> = Vec::new();
    let mut below: Vec<(Slot, SlotManifest, String)> = Vec::new();
    let mut failures = Vec::new();
    for s in Slot::ALL {
        match probe(s) {
            Ok(m) if m.security_version < nv_floor => {
                let r = format!(
                    "security version {} is below the TPM NV floor {nv_floor}",
                    m.security_version
                );
                log::error!("boot state: refusing {s}: {r}");
                failures.push(format!("{s}: {r}"));
                below.push((s, m, r));
            }
            Ok(m) => found.push((s, m)),
            Err(e) => failures.push(format!("{s}: {e}")),
        }
    }
    // Highest version wins; slot A on a tie.
    let best = found
        .iter()
        .enumerate()
        .max_by_key(|(i, (_, m))| (m.security_version, usize::MAX - i))
        .map(|(_, x)| x.clone())
        .ok_or_else(|| SelectError::NoSlotVerifies {
            why: why.to_string(),
            detail: failures.join("; "),
        })?;
    let (slot, m) = best;
    let mut s = BootState::factory(m.security_version, &m.version, m.digest);
    let mut slots = [SlotInfo::empty(), SlotInfo::empty()];
    for (sl, sm) in &found {
        let (state, reason) = if sm.security_version >= m.security_version {
            (SlotState::Good, "")
        } else {
            (
                SlotState::Bad,
                "recovery: below the security version of the slot booted",
            )
        };
        if let Some(dst) = slots.get_mut(azl_formats::bootstate::slot_index(*sl)) {
            *dst = SlotInfo {
                state,
                security_version: sm.security_version,
                version: text(&sm.version),
                manifest_sha256: sm.digest,
                reason: text(reason),
            };
        }
    }
    for (sl, sm, reason) in &below {
        if let Some(dst) = slots.get_mut(azl_formats::bootstate::slot_index(*sl)) {
            *dst = SlotInfo {
                state: SlotState::Bad,
                security_version: sm.security_version,
                version: text(&sm.version),
                manifest_sha256: sm.digest,
                reason: text(reason),
            };
        }
    }
    s.slots = slots;
    s.active = slot;
    ctl.write(&s).map_err(SelectError::State)?;
    log::error!(
        "!!! RECOVERY: booting {slot} (security version {}), floor {}",
        m.security_version,
        s.floor
    );
    Ok(s)
}

/// Keep what was booted for stage 2 and `update`.
pub fn record(pick: &Pick) -> Result<(), String> {
    let bytes = pick.booted().to_bytes().map_err(|e| e.to_string())?;
    std::fs::create_dir_all("/run/azl-edge")
        .and_then(|()| std::fs::write(paths::BOOTED, bytes))
        .map_err(|e| format!("{}: {e}", paths::BOOTED))
}

/// What stage 1 recorded, if this boot went through the boot state.
pub fn booted(path: &str) -> Result<Booted, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    Booted::from_bytes(&bytes).map_err(|e| format!("{path}: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::update::bootctl::initramfs_select::InitramfsSelect;
    use crate::update::bootctl::tests::temp_store;
    use crate::update::floor::tests::MemFloor;
    use crate::update::floor::NoTpm;

    /// Without a TPM (as every test below except the NV ones).
    fn pick(
        ctl: &mut dyn BootControl,
        probe: &mut dyn FnMut(Slot) -> Result<SlotManifest, String>,
    ) -> Result<Pick, SelectError> {
        pick_with(ctl, &mut NoTpm, probe)
    }

    fn m(sv: u32, d: u8) -> SlotManifest {
        SlotManifest {
            security_version: sv,
            version: format!("v{sv}"),
            digest: [d; 32],
            cmdline: format!("console=ttyAMA0 v{sv}"),
        }
    }

    fn installed_b(ctl: &mut InitramfsSelect) {
        bootctl::begin_install(ctl, Slot::B).unwrap();
        bootctl::mark_trial(ctl, Slot::B, 5, "v5", [0xb; 32]).unwrap();
    }

    /// A per-kernel boot method stand-in: the state in a file, a fixed
    /// started slot, and the sync plans stage 1 handed it.
    struct PerKernel {
        inner: InitramfsSelect,
        started: Option<Slot>,
        plans: Vec<bootctl::SyncPlan>,
    }

    impl BootControl for PerKernel {
        fn name(&self) -> &'static str {
            "per-kernel"
        }
        fn location(&self) -> String {
            self.inner.location()
        }
        fn read(&mut self) -> Result<azl_formats::bootstate::Loaded, BootCtlError> {
            self.inner.read()
        }
        fn write(&mut self, next: &BootState) -> Result<(), BootCtlError> {
            self.inner.write(next)
        }
        fn arm(&mut self, _: Slot, _: bool) -> Result<(), BootCtlError> {
            Ok(())
        }
        fn started(&self) -> Option<Slot> {
            self.started
        }
        fn sync(&mut self, plan: &bootctl::SyncPlan) -> Result<(), BootCtlError> {
            self.plans.push(plan.clone());
            Ok(())
        }
        fn takes_boot_files(&self) -> bool {
            true
        }
    }

    /// Rule (a) through stage 1: the committed slot's kernel started while
    /// B's trial is pending: A boots, the trial stays pending and is handed
    /// to the backend to arm again; then B's kernel starts: the trial runs.
    #[test]
    fn a_pending_trial_survives_a_boot_of_the_other_kernel_and_is_rearmed() {
        let dir = tempfile::tempdir().unwrap();
        let mut inner = InitramfsSelect::open(&temp_store(dir.path())).unwrap();
        inner
            .write(&BootState::factory(3, "v3", [0xa; 32]))
            .unwrap();
        installed_b(&mut inner);
        let mut ctl = PerKernel {
            inner,
            started: Some(Slot::A),
            plans: Vec::new(),
        };
        let mut probe = |s: Slot| Ok(if s == Slot::A { m(3, 0xa) } else { m(5, 0xb) });
        let p = pick(&mut ctl, &mut probe).unwrap();
        assert_eq!((p.slot, p.trial), (Slot::A, false));
        let s = bootctl::state(&mut ctl).unwrap();
        assert_eq!(s.trial, Some(Slot::B), "the trial is still pending");
        assert_eq!(s.slot(Slot::B).state, SlotState::Installed);
        let plan = ctl.plans.last().unwrap();
        assert_eq!(
            (plan.committed, plan.trial, plan.rearm),
            (Slot::A, false, Some(Slot::B))
        );
        // Both slots' entries get their manifests' command lines.
        assert_eq!(
            plan.cmdlines,
            vec![(Slot::A, m(3, 0xa).cmdline), (Slot::B, m(5, 0xb).cmdline)]
        );
        ctl.started = Some(Slot::B);
        let p = pick(&mut ctl, &mut probe).unwrap();
        assert_eq!((p.slot, p.trial), (Slot::B, true));
        let plan = ctl.plans.last().unwrap();
        assert_eq!(
            (plan.committed, plan.trial, plan.rearm),
            (Slot::A, true, None)
        );
    }

    #[test]
    fn first_boot_writes_the_factory_state_of_root_a_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut ctl = InitramfsSelect::open(&temp_store(dir.path())).unwrap();
        let mut probes = Vec::new();
        let p = pick(&mut ctl, &mut |s| {
            probes.push(s);
            Ok(m(3, 0xa))
        })
        .unwrap();
        assert_eq!(
            (p.slot, p.trial, p.recovery.clone()),
            (Slot::A, false, None)
        );
        let s = bootctl::state(&mut ctl).unwrap();
        assert_eq!(s, BootState::factory(3, "v3", [0xa; 32]));
        let seq = ctl.read().unwrap().seq();
        pick(&mut ctl, &mut |_| Ok(m(3, 0xa))).unwrap();
        assert_eq!(
            ctl.read().unwrap().seq(),
            seq,
            "nothing written on a plain boot"
        );
        // A factory slot that does not verify writes nothing.
        let dir2 = tempfile::tempdir().unwrap();
        let mut c2 = InitramfsSelect::open(&temp_store(dir2.path())).unwrap();
        let e = pick(&mut c2, &mut |_| Err("bad signature".into())).unwrap_err();
        assert!(matches!(e, SelectError::Factory { .. }), "{e}");
        assert!(matches!(
            bootctl::state(&mut c2),
            Err(BootCtlError::Blank { .. })
        ));
    }

    #[test]
    fn the_trial_is_used_up_before_the_slot_is_probed() {
        let dir = tempfile::tempdir().unwrap();
        let path = temp_store(dir.path());
        let mut ctl = InitramfsSelect::open(&path).unwrap();
        ctl.write(&BootState::factory(3, "v3", [0xa; 32])).unwrap();
        installed_b(&mut ctl);
        let mut seen = None;
        let p = pick(&mut ctl, &mut |s| {
            let mut other = InitramfsSelect::open(&path).unwrap();
            seen = Some(bootctl::state(&mut other).unwrap().slot(s).state);
            Ok(m(5, 0xb))
        })
        .unwrap();
        assert_eq!((p.slot, p.trial), (Slot::B, true));
        assert_eq!(seen, Some(SlotState::Trying));
        // The next boot without a commit falls back to A.
        let p = pick(&mut ctl, &mut |_| Ok(m(3, 0xa))).unwrap();
        assert_eq!((p.slot, p.trial), (Slot::A, false));
        let s = bootctl::state(&mut ctl).unwrap();
        assert_eq!(s.slot(Slot::B).state, SlotState::Bad);
    }

    #[test]
    fn a_hung_trial_or_a_failed_gate_boots_the_committed_slot_next() {
        // Hang/reset before any gate decided (the watchdog fired): the
        // next boot records "did not commit" and boots A.
        let dir = tempfile::tempdir().unwrap();
        let mut ctl = InitramfsSelect::open(&temp_store(dir.path())).unwrap();
        ctl.write(&BootState::factory(3, "v3", [0xa; 32])).unwrap();
        installed_b(&mut ctl);
        let p = pick(&mut ctl, &mut |_| Ok(m(5, 0xb))).unwrap();
        assert_eq!((p.slot, p.trial), (Slot::B, true));
        let p = pick(&mut ctl, &mut |_| Ok(m(3, 0xa))).unwrap();
        assert_eq!((p.slot, p.trial), (Slot::A, false));
        let s = bootctl::state(&mut ctl).unwrap();
        assert_eq!(s.slot(Slot::B).state, SlotState::Bad);
        assert!(s.slot(Slot::B).reason.contains("did not commit"), "{s:?}");
        assert_eq!(s.floor, 3, "a failed trial never raises the floor");
        // The health gate failed the trial: its reason is kept, A boots.
        let dir = tempfile::tempdir().unwrap();
        let mut ctl = InitramfsSelect::open(&temp_store(dir.path())).unwrap();
        ctl.write(&BootState::factory(3, "v3", [0xa; 32])).unwrap();
        installed_b(&mut ctl);
        pick(&mut ctl, &mut |_| Ok(m(5, 0xb))).unwrap();
        let why = "service \"web\" not ready within 60 s";
        bootctl::fail(&mut ctl, Slot::B, why).unwrap();
        let p = pick(&mut ctl, &mut |_| Ok(m(3, 0xa))).unwrap();
        assert_eq!((p.slot, p.trial), (Slot::A, false));
        let s = bootctl::state(&mut ctl).unwrap();
        assert_eq!(s.slot(Slot::B).state, SlotState::Bad);
        assert_eq!(s.slot(Slot::B).reason.as_str(), why);
    }

    #[test]
    fn a_trial_with_another_manifest_than_recorded_is_failed() {
        let dir = tempfile::tempdir().unwrap();
        let mut ctl = InitramfsSelect::open(&temp_store(dir.path())).unwrap();
        ctl.write(&BootState::factory(3, "v3", [0xa; 32])).unwrap();
        installed_b(&mut ctl);
        let p = pick(&mut ctl, &mut |s| match s {
            Slot::A => Ok(m(3, 0xa)),
            Slot::B => Ok(m(5, 0xee)),
        })
        .unwrap();
        assert_eq!((p.slot, p.trial), (Slot::A, false));
        let s = bootctl::state(&mut ctl).unwrap();
        assert_eq!(s.slot(Slot::B).state, SlotState::Bad);
        assert!(s
            .slot(Slot::B)
            .reason
            .contains("not the one the boot state recorded"));
    }

    #[test]
    fn a_slot_below_the_floor_is_refused_even_if_the_record_says_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let mut ctl = InitramfsSelect::open(&temp_store(dir.path())).unwrap();
        let mut s = BootState::factory(3, "v3", [0xa; 32]);
        s.slots[1] = SlotInfo {
            state: SlotState::Good,
            security_version: 4,
            manifest_sha256: [0xb; 32],
            ..SlotInfo::empty()
        };
        ctl.write(&s).unwrap();
        // Slot A's manifest now says version 2 (the record says 3).
        let p = pick(&mut ctl, &mut |s| match s {
            Slot::A => Ok(m(2, 0xa)),
            Slot::B => Ok(m(4, 0xb)),
        })
        .unwrap();
        assert_eq!(p.slot, Slot::B);
        let after = bootctl::state(&mut ctl).unwrap();
        assert_eq!(after.active, Slot::B);
        assert!(after.slot(Slot::A).reason.contains("below the floor 3"));
        // And when no slot is left, boot is refused with the reasons.
        let e = pick(&mut ctl, &mut |_| Err("gone".into())).unwrap_err();
        assert!(e.to_string().contains("gone"), "{e}");
    }

    #[test]
    fn a_corrupt_pair_boots_the_highest_verifying_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = temp_store(dir.path());
        let mut raw = std::fs::read(&path).unwrap();
        raw[0] = 0xff;
        std::fs::write(&path, &raw).unwrap();
        let mut ctl = InitramfsSelect::open(&path).unwrap();
        let p = pick(&mut ctl, &mut |s| match s {
            Slot::A => Ok(m(3, 0xa)),
            Slot::B => Ok(m(6, 0xb)),
        })
        .unwrap();
        assert_eq!((p.slot, p.trial), (Slot::B, false));
        assert!(p.recovery.unwrap().contains("unreadable"));
        let s = bootctl::state(&mut ctl).unwrap();
        assert_eq!((s.active, s.floor), (Slot::B, 6));
        assert_eq!(s.slot(Slot::A).state, SlotState::Bad);
        // Neither verifies: no boot.
        std::fs::write(&path, &raw).unwrap();
        let e = pick(&mut ctl, &mut |_| Err("no manifest".into())).unwrap_err();
        assert!(matches!(e, SelectError::NoSlotVerifies { .. }), "{e}");
    }

    /// v1 (A) committed, v2 (B) installed and committed: the state and the
    /// NV floor at 2. Returns the state bytes from before v2's install.
    fn committed_v2(ctl: &mut InitramfsSelect, path: &str, nv: &mut MemFloor) -> Vec<u8> {
        pick_with(ctl, nv, &mut |_| Ok(m(1, 0xa))).unwrap();
        assert_eq!(nv.bits, 0b1, "first boot raises NV to the factory floor");
        let old = std::fs::read(path).unwrap();
        bootctl::begin_install(ctl, Slot::B).unwrap();
        bootctl::mark_trial(ctl, Slot::B, 2, "v2", [0xb; 32]).unwrap();
        let p = pick_with(ctl, nv, &mut |s| match s {
            Slot::A => Ok(m(1, 0xa)),
            Slot::B => Ok(m(2, 0xb)),
        })
        .unwrap();
        assert_eq!((p.slot, p.trial), (Slot::B, true));
        assert_eq!(nv.bits, 0b1, "a trial never raises the NV floor");
        bootctl::commit_with(ctl, Slot::B, nv).unwrap();
        assert_eq!(nv.bits, 0b11, "commit raises the NV floor");
        old
    }

    #[test]
    fn a_restored_old_state_cannot_lower_the_nv_floor() {
        let dir = tempfile::tempdir().unwrap();
        let path = temp_store(dir.path());
        let mut ctl = InitramfsSelect::open(&path).unwrap();
        let mut nv = MemFloor::default();
        let old = committed_v2(&mut ctl, &path, &mut nv);
        // Someone with the disk writes the old state back: A committed
        // and good, floor 1, B empty.
        std::fs::write(&path, &old).unwrap();
        let mut ctl = InitramfsSelect::open(&path).unwrap();
        assert_eq!(bootctl::state(&mut ctl).unwrap().floor, 1);
        let p = pick_with(&mut ctl, &mut nv, &mut |s| match s {
            Slot::A => Ok(m(1, 0xa)),
            Slot::B => Ok(m(2, 0xb)),
        })
        .unwrap();
        assert_eq!((p.slot, p.trial), (Slot::B, false));
        assert!(p.recovery.unwrap().contains("below the TPM NV floor 2"));
        let s = bootctl::state(&mut ctl).unwrap();
        assert_eq!((s.active, s.floor), (Slot::B, 2));
        assert_eq!(s.slot(Slot::A).state, SlotState::Bad);
        assert_eq!(
            s.slot(Slot::A).reason.as_str(),
            "security version 1 is below the TPM NV floor 2"
        );
        assert_eq!(nv.bits, 0b11, "the NV floor is untouched");
        // An old state that names v1 good in the *other* slot while only
        // v1 is on the disk: nothing boots rather than v1.
        std::fs::write(&path, &old).unwrap();
        let mut ctl = InitramfsSelect::open(&path).unwrap();
        let e = pick_with(&mut ctl, &mut nv, &mut |s| match s {
            Slot::A => Ok(m(1, 0xa)),
            Slot::B => Ok(m(1, 0xc)),
        })
        .unwrap_err();
        assert!(matches!(e, SelectError::NoSlotVerifies { .. }), "{e}");
        assert!(e.to_string().contains("below the TPM NV floor 2"), "{e}");
    }

    #[test]
    fn a_forged_state_at_the_nv_floor_still_refuses_an_old_manifest() {
        // The state's floor equals the NV floor and calls A good at
        // version 2, but A's signed manifest says 1.
        let dir = tempfile::tempdir().unwrap();
        let mut ctl = InitramfsSelect::open(&temp_store(dir.path())).unwrap();
        let mut s = BootState::factory(2, "v2", [0xa; 32]);
        s.slots[1] = SlotInfo {
            state: SlotState::Good,
            security_version: 2,
            manifest_sha256: [0xb; 32],
            ..SlotInfo::empty()
        };
        ctl.write(&s).unwrap();
        let mut nv = MemFloor {
            bits: 0b11,
            ..MemFloor::default()
        };
        let p = pick_with(&mut ctl, &mut nv, &mut |s| match s {
            Slot::A => Ok(m(1, 0xa)),
            Slot::B => Ok(m(2, 0xb)),
        })
        .unwrap();
        assert_eq!(p.slot, Slot::B);
        let after = bootctl::state(&mut ctl).unwrap();
        assert!(after.slot(Slot::A).reason.contains("below the floor 2"));
    }

    #[test]
    fn the_nv_floor_catches_up_after_a_power_cut_at_commit() {
        // The state was committed at floor 3, the NV raise never ran.
        let dir = tempfile::tempdir().unwrap();
        let mut ctl = InitramfsSelect::open(&temp_store(dir.path())).unwrap();
        ctl.write(&BootState::factory(3, "v3", [0xa; 32])).unwrap();
        let mut nv = MemFloor {
            bits: 0b1,
            ..MemFloor::default()
        };
        let p = pick_with(&mut ctl, &mut nv, &mut |_| Ok(m(3, 0xa))).unwrap();
        assert_eq!((p.slot, p.recovery), (Slot::A, None));
        assert_eq!(nv.raises, vec![3]);
        assert_eq!(nv.bits, 0b111);
        // Nothing to do the next time.
        pick_with(&mut ctl, &mut nv, &mut |_| Ok(m(3, 0xa))).unwrap();
        assert_eq!(nv.raises, vec![3]);
    }

    #[test]
    fn a_failing_tpm_falls_back_to_the_state_floor() {
        let dir = tempfile::tempdir().unwrap();
        let mut ctl = InitramfsSelect::open(&temp_store(dir.path())).unwrap();
        ctl.write(&BootState::factory(3, "v3", [0xa; 32])).unwrap();
        let mut nv = MemFloor {
            fail: true,
            ..MemFloor::default()
        };
        let p = pick_with(&mut ctl, &mut nv, &mut |_| Ok(m(3, 0xa))).unwrap();
        assert_eq!(p.slot, Slot::A);
        assert!(nv.raises.is_empty(), "no raise against a failing TPM");
        // The state's floor still holds.
        let e = pick_with(&mut ctl, &mut nv, &mut |_| Ok(m(2, 0xa))).unwrap_err();
        assert!(e.to_string().contains("below the floor 3"), "{e}");
        // And a commit with a failing TPM still commits.
        let dir = tempfile::tempdir().unwrap();
        let mut ctl = InitramfsSelect::open(&temp_store(dir.path())).unwrap();
        ctl.write(&BootState::factory(3, "v3", [0xa; 32])).unwrap();
        installed_b(&mut ctl);
        pick_with(&mut ctl, &mut nv, &mut |_| Ok(m(5, 0xb))).unwrap();
        let s = bootctl::commit_with(&mut ctl, Slot::B, &mut nv).unwrap();
        assert_eq!((s.active, s.floor), (Slot::B, 5));
    }

    #[test]
    fn a_wiped_state_with_an_nv_floor_is_rebuilt_not_factory() {
        // Blank state, old image in A, v2 in B, NV floor 2: B boots.
        let dir = tempfile::tempdir().unwrap();
        let mut ctl = InitramfsSelect::open(&temp_store(dir.path())).unwrap();
        let mut nv = MemFloor {
            bits: 0b11,
            ..MemFloor::default()
        };
        let p = pick_with(&mut ctl, &mut nv, &mut |s| match s {
            Slot::A => Ok(m(1, 0xa)),
            Slot::B => Ok(m(2, 0xb)),
        })
        .unwrap();
        assert_eq!(p.slot, Slot::B);
        assert!(p.recovery.unwrap().contains("never written"));
        let s = bootctl::state(&mut ctl).unwrap();
        assert_eq!((s.active, s.floor), (Slot::B, 2));
        assert_eq!(s.slot(Slot::A).state, SlotState::Bad);
    }
}
