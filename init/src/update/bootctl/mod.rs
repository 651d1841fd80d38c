//! Boot control: one interface ([`BootControl`]) for everything stage 1
//! and the updater need from the platform — read and write the A/B boot
//! state, and tell the firmware or bootloader which slot boots next — with
//! one backend per boot method. The transitions themselves
//! (`azl_formats::bootstate`) are pure; the functions here apply them
//! through a backend so the order "decide, write durably, then act" is the
//! same everywhere. Backends: [`initramfs_select`]; UEFI BootNext/BootOrder,
//! Raspberry Pi tryboot and the U-Boot env fit behind the same trait
//! (docs/update.md).
pub mod efivars;
pub mod initramfs_select;
pub mod store;
pub mod uefi;

use crate::verify::partition::{self, PartitionError};
use azl_formats::bootstate::{BootState, CopyError, Loaded, Slot, TransitionError};
use azl_formats::BootControl as Kind;
use std::fmt;
use std::time::Duration;

/// A boot method's view of the A/B state.
pub trait BootControl {
    /// The backend's name (`initramfs-select`).
    fn name(&self) -> &'static str;
    /// Where the state lives, for messages (`/dev/vda4`).
    fn location(&self) -> String;
    /// Both copies of the boot state as stored.
    fn read(&mut self) -> Result<Loaded, BootCtlError>;
    /// Replace the state in force with `next`, durably, before returning.
    fn write(&mut self, next: &BootState) -> Result<(), BootCtlError>;
    /// Make the firmware/bootloader start `slot` next: once (`once`, a
    /// trial: UEFI BootNext, Pi tryboot, U-Boot bootcount) or from now on
    /// (UEFI BootOrder, U-Boot `boot_slot`). Called after the state is
    /// written. initramfs-select: nothing to do.
    fn arm(&mut self, slot: Slot, once: bool) -> Result<(), BootCtlError>;
    /// The slot whose kernel the firmware started, on boot methods with a
    /// kernel per slot (UEFI: `azl.slot=` on /proc/cmdline); `None`: one
    /// kernel for both, or unknown.
    fn started(&self) -> Option<Slot> {
        None
    }
    /// Stage 1, after the slot is chosen: bring the firmware's view in
    /// line with the boot state (UEFI: entries, BootOrder, a re-armed
    /// BootNext). initramfs-select: nothing to do.
    fn sync(&mut self, _plan: &SyncPlan) -> Result<(), BootCtlError> {
        Ok(())
    }
    /// The firmware's boot variables as they are now, on boot methods
    /// that have them (UEFI), for `update status`; `None` elsewhere.
    fn firmware_vars(&self) -> Option<Result<FirmwareVars, BootCtlError>> {
        None
    }
    /// Does an update carry this boot method's kernel files?
    fn takes_boot_files(&self) -> bool {
        false
    }
    /// Put `slot`'s kernel files where the firmware starts them from
    /// (verified by the caller against the signed header), durably.
    fn install_boot_files(&mut self, _slot: Slot, _files: &BootFiles) -> Result<(), BootCtlError> {
        Err(BootCtlError::NoBootFiles(self.name()))
    }
}

/// UEFI's boot variables ([`BootControl::firmware_vars`]): the entry the
/// firmware started, the one-shot next entry, the order, and each slot's
/// entry (`None`: it has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmwareVars {
    pub current: Option<u16>,
    pub next: Option<u16>,
    pub order: Vec<u16>,
    pub entries: Vec<(Slot, Option<u16>)>,
}

/// What stage 1 tells the backend after choosing ([`BootControl::sync`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncPlan {
    /// The committed slot after the choice (BootOrder's first).
    pub committed: Slot,
    /// This boot is a trial.
    pub trial: bool,
    /// A pending trial to arm again (`BootChoice::rearm`).
    pub rearm: Option<Slot>,
    /// Each slot with content and the command line its verified manifest
    /// records (its entry's load options).
    pub cmdlines: Vec<(Slot, String)>,
}

/// A slot's kernel files from a bundle (UEFI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootFiles {
    pub kernel: Vec<u8>,
    pub initramfs: Vec<u8>,
    pub cmdline: String,
}

#[derive(Debug)]
pub enum BootCtlError {
    Io {
        dev: String,
        offset: u64,
        err: std::io::Error,
    },
    TooSmall {
        dev: String,
        size: u64,
    },
    /// Both copies are blank: the state was never written.
    Blank {
        dev: String,
    },
    /// No copy is valid and at least one is not blank.
    Corrupt {
        dev: String,
        copies: [CopyError; 2],
    },
    Encode(postcard::Error),
    Transition(TransitionError),
    Partition(PartitionError),
    /// The boot config has no boot-state backend.
    NoBackend,
    /// An EFI variable could not be read or written.
    Efi(efivars::VarError),
    /// The slot has no boot entry to arm.
    NoEntry(Slot),
    /// Every Boot#### number is taken.
    NoFreeEntry,
    /// Writing the ESP.
    Esp {
        path: String,
        err: std::io::Error,
    },
    /// The backend does not install kernel files.
    NoBootFiles(&'static str),
    /// The UEFI backend on a system not booted by UEFI.
    NotUefi(String),
}

impl fmt::Display for BootCtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { dev, offset, err } => {
                write!(f, "boot state on {dev} at offset {offset}: {err}")
            }
            Self::TooSmall { dev, size } => write!(
                f,
                "boot state partition {dev} is {size} bytes, it needs {}",
                azl_formats::bootstate::MIN_PARTITION_SIZE
            ),
            Self::Blank { dev } => write!(f, "boot state on {dev} was never written"),
            Self::Corrupt { dev, copies: [a, b] } => write!(
                f,
                "boot state on {dev} is unreadable: copy 0 {a}; copy 1 {b}"
            ),
            Self::Encode(e) => write!(f, "cannot encode the boot state: {e}"),
            Self::Transition(e) => write!(f, "{e}"),
            Self::Partition(e) => write!(f, "boot state: {e}"),
            Self::NoBackend => f.write_str(
                "this image has no A/B boot state (boot control \"fixed\"): updates are not possible",
            ),
            Self::Efi(e) => write!(f, "{e}"),
            Self::NoEntry(s) => write!(
                f,
                "{s} has no UEFI boot entry (\"{}\") to arm",
                azl_formats::efi::description(*s)
            ),
            Self::NoFreeEntry => f.write_str("no free Boot#### number for a boot entry"),
            Self::Esp { path, err } => write!(f, "ESP: {path}: {err}"),
            Self::NoBootFiles(b) => write!(f, "the {b} backend does not install kernel files"),
            Self::NotUefi(why) => write!(f, "UEFI boot control: {why}"),
        }
    }
}

/// Bytes of a file or block device.
pub fn device_size(file: &std::fs::File) -> std::io::Result<u64> {
    use std::io::{Seek, SeekFrom};
    let mut f = file;
    let size = f.seek(SeekFrom::End(0))?;
    f.seek(SeekFrom::Start(0))?;
    Ok(size)
}

/// Open the backend the boot config names, finding its partition through
/// the GPT lookup stage 1 uses.
pub fn open(kind: &Kind, wait: Duration) -> Result<Box<dyn BootControl>, BootCtlError> {
    match kind {
        Kind::Fixed => Err(BootCtlError::NoBackend),
        Kind::InitramfsSelect { state_partition } => {
            let part = partition::find(state_partition, wait).map_err(BootCtlError::Partition)?;
            Ok(Box::new(initramfs_select::InitramfsSelect::open(
                &part.dev,
            )?))
        }
        Kind::Uefi {
            state_partition,
            esp_partition,
        } => {
            let part = partition::find(state_partition, wait).map_err(BootCtlError::Partition)?;
            let esp = partition::find(esp_partition, wait).map_err(BootCtlError::Partition)?;
            mount_efivarfs()?;
            let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
            Ok(Box::new(uefi::Uefi::new(
                store::StateStore::open(&part.dev)?,
                efivars::EfiVars::new(azl_formats::efi::EFIVARFS),
                azl_formats::efi::HardDrive {
                    partition_number: esp.number,
                    start_lba: esp.offset / 512,
                    size_lba: esp.size_bytes / 512,
                    part_guid: esp.part_guid,
                },
                uefi::Esp::Device {
                    dev: esp.dev.clone(),
                    mountpoint: std::path::PathBuf::from(ESP_MOUNT),
                },
                azl_formats::efi::started_slot(&cmdline),
            )))
        }
    }
}

/// Where the UEFI backend mounts the ESP while it writes a slot's files.
pub const ESP_MOUNT: &str = "/run/azl-edge/esp";

/// efivarfs on /sys/firmware/efi/efivars (once; stage 1 mounts it, the
/// root's init finds it there after the switch or mounts it again).
fn mount_efivarfs() -> Result<(), BootCtlError> {
    use nix::mount::{mount, MsFlags};
    let dir = azl_formats::efi::EFIVARFS;
    if !std::path::Path::new("/sys/firmware/efi").is_dir() {
        return Err(BootCtlError::NotUefi(
            "/sys/firmware/efi is absent: the kernel was not started by UEFI firmware".into(),
        ));
    }
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    if mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(dir))
    {
        return Ok(());
    }
    mount(
        Some("efivarfs"),
        dir,
        Some("efivarfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|e| BootCtlError::NotUefi(format!("mounting efivarfs on {dir}: {e}")))
}

/// The state in force; blank or corrupt is an error that says which.
pub fn state(ctl: &mut dyn BootControl) -> Result<BootState, BootCtlError> {
    let loaded = ctl.read()?;
    if let Some(s) = loaded.state() {
        return Ok(s.clone());
    }
    let dev = ctl.location();
    match loaded.copies {
        [Err(CopyError::Blank), Err(CopyError::Blank)] => Err(BootCtlError::Blank { dev }),
        [Err(a), Err(b)] => Err(BootCtlError::Corrupt {
            dev,
            copies: [a, b],
        }),
        // A valid copy always yields a state; kept total without panicking.
        _ => Err(BootCtlError::Blank { dev }),
    }
}

fn apply(
    ctl: &mut dyn BootControl,
    step: impl FnOnce(&BootState) -> Result<BootState, TransitionError>,
) -> Result<BootState, BootCtlError> {
    let now = state(ctl)?;
    let next = step(&now).map_err(BootCtlError::Transition)?;
    ctl.write(&next)?;
    Ok(next)
}

/// Mark `target` as being written (never bootable) before its first byte
/// changes.
pub fn begin_install(ctl: &mut dyn BootControl, target: Slot) -> Result<BootState, BootCtlError> {
    apply(ctl, |s| s.begin_install(target))
}

/// `target` is written and re-verified: give it its one trial boot.
pub fn mark_trial(
    ctl: &mut dyn BootControl,
    target: Slot,
    security_version: u32,
    version: &str,
    manifest_sha256: azl_formats::manifest::Digest,
) -> Result<BootState, BootCtlError> {
    let next = apply(ctl, |s| {
        s.finish_install(target, security_version, version, manifest_sha256)
    })?;
    ctl.arm(target, true)?;
    Ok(next)
}

/// The running trial `booted` passed its gates: make it the committed
/// slot and raise the floor — in the boot state, then in the TPM NV index
/// (the kernel's TPM, if any). This is what the health/attestation gate
/// calls.
pub fn commit(ctl: &mut dyn BootControl, booted: Slot) -> Result<BootState, BootCtlError> {
    commit_with(ctl, booted, crate::update::floor::device().as_mut())
}

/// [`commit`] with the NV floor in `nv`. The state is written (and the
/// slot armed) first; then the NV floor is raised to the state's floor.
/// A failure to raise it does not undo the commit: it is logged, and
/// stage 1 raises the NV floor from the state at the next boot.
pub fn commit_with(
    ctl: &mut dyn BootControl,
    booted: Slot,
    nv: &mut dyn crate::update::floor::FloorStore,
) -> Result<BootState, BootCtlError> {
    use crate::update::floor::Nv;
    let next = apply(ctl, |s| s.commit(booted))?;
    ctl.arm(booted, false)?;
    match nv.raise(next.floor) {
        Nv::Absent => {}
        Nv::Failed(e) => log::error!(
            "!!! update: {booted} is committed, but the TPM NV floor was not raised to {}: {e}; the next boot retries from the boot state",
            next.floor
        ),
        after => log::info!("update: TPM NV floor: {}", after.describe()),
    }
    Ok(next)
}

/// The running trial `booted` failed a gate: never boot it again.
pub fn fail(
    ctl: &mut dyn BootControl,
    booted: Slot,
    reason: &str,
) -> Result<BootState, BootCtlError> {
    let next = apply(ctl, |s| s.fail_trial(booted, reason))?;
    ctl.arm(next.active, false)?;
    Ok(next)
}

/// `update rollback` on the running slot `booted`.
pub fn rollback(ctl: &mut dyn BootControl, booted: Slot) -> Result<BootState, BootCtlError> {
    let next = apply(ctl, |s| s.rollback(booted))?;
    ctl.arm(next.active, false)?;
    Ok(next)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
pub mod tests {
    use super::initramfs_select::InitramfsSelect;
    use super::*;
    use azl_formats::bootstate::{SlotState, COPY_OFFSETS, COPY_SIZE, MIN_PARTITION_SIZE};

    /// A boot-state "partition" in a temp file.
    pub fn temp_store(dir: &std::path::Path) -> String {
        let p = dir.join("bootstate");
        let f = std::fs::File::create(&p).unwrap();
        f.set_len(MIN_PARTITION_SIZE + 4096).unwrap();
        p.to_str().unwrap().to_string()
    }

    #[test]
    fn writes_alternate_copies_and_survive_a_torn_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = temp_store(dir.path());
        let mut ctl = InitramfsSelect::open(&path).unwrap();
        assert!(matches!(state(&mut ctl), Err(BootCtlError::Blank { .. })));
        let f = BootState::factory(1, "1.0", [1; 32]);
        ctl.write(&f).unwrap();
        let s1 = begin_install(&mut ctl, Slot::B).unwrap();
        assert_eq!(state(&mut ctl).unwrap(), s1);
        // Both copies hold a state now (the older one is the factory state).
        let raw = std::fs::read(&path).unwrap();
        let l = Loaded::from_copies(
            &raw[..COPY_SIZE],
            &raw[COPY_OFFSETS[1] as usize..][..COPY_SIZE],
        );
        assert!(l.copies.iter().all(|c| c.is_ok()));
        // Tear the next write: the previous state is still in force.
        let s2 = s1.finish_install(Slot::B, 2, "2.0", [2; 32]).unwrap();
        let (i, bytes) = ctl.read().unwrap().next_write(&s2).unwrap();
        let mut torn = raw.clone();
        let at = COPY_OFFSETS[i] as usize;
        torn[at..at + 100].copy_from_slice(&bytes[..100]);
        std::fs::write(&path, &torn).unwrap();
        assert_eq!(state(&mut ctl).unwrap(), s1);
        let s = mark_trial(&mut ctl, Slot::B, 2, "2.0", [2; 32]).unwrap();
        assert_eq!(s.slot(Slot::B).state, SlotState::Installed);
        assert_eq!(state(&mut ctl).unwrap(), s);
    }

    #[test]
    fn corrupt_pair_is_reported_as_corrupt_not_blank() {
        let dir = tempfile::tempdir().unwrap();
        let path = temp_store(dir.path());
        let mut raw = std::fs::read(&path).unwrap();
        raw[5] = 0x55;
        std::fs::write(&path, &raw).unwrap();
        let mut ctl = InitramfsSelect::open(&path).unwrap();
        let e = state(&mut ctl).unwrap_err();
        assert!(matches!(e, BootCtlError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("copy 0 bad magic"), "{e}");
    }

    #[test]
    fn too_small_partition_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("small");
        std::fs::write(&p, [0u8; 4096]).unwrap();
        let e = InitramfsSelect::open(p.to_str().unwrap()).err().unwrap();
        assert!(
            matches!(e, BootCtlError::TooSmall { size: 4096, .. }),
            "{e}"
        );
    }

    #[test]
    fn commit_and_rollback_go_through_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = temp_store(dir.path());
        let mut ctl = InitramfsSelect::open(&path).unwrap();
        ctl.write(&BootState::factory(1, "1.0", [1; 32])).unwrap();
        begin_install(&mut ctl, Slot::B).unwrap();
        mark_trial(&mut ctl, Slot::B, 3, "2.0", [2; 32]).unwrap();
        // Commit before the trial boot started: refused, state unchanged.
        let before = state(&mut ctl).unwrap();
        assert!(matches!(
            commit(&mut ctl, Slot::B),
            Err(BootCtlError::Transition(TransitionError::WrongState { .. }))
        ));
        assert_eq!(state(&mut ctl).unwrap(), before);
        let trying = before.choose(0).unwrap().write.unwrap();
        ctl.write(&trying).unwrap();
        let done = commit(&mut ctl, Slot::B).unwrap();
        assert_eq!((done.active, done.floor), (Slot::B, 3));
        assert!(matches!(
            rollback(&mut ctl, Slot::B),
            Err(BootCtlError::Transition(TransitionError::BelowFloor { .. }))
        ));
    }
}
