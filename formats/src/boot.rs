//! The boot configuration init reads first (`/etc/azl-edge/boot.cfg`):
//! identity, the kernel modules to load (in order), the watchdog, and the
//! timings of emergency and shutdown. imagegen compiles it from the image
//! config and the board file.
use crate::envelope::Enveloped;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootConfig {
    /// Image name and version, as in the image config.
    pub image_name: String,
    pub image_version: String,
    /// Board this image was built for.
    pub board: String,
    /// Hostname to set.
    pub hostname: String,
    /// Absolute paths of `.ko` files to load with `finit_module`, in
    /// dependency order (dependencies first).
    pub modules: Vec<String>,
    /// The hardware watchdog to open and pet, if the board has one.
    pub watchdog: Option<Watchdog>,
    /// After a fatal boot error: seconds in the emergency state before reboot.
    pub emergency_reboot_delay_s: u32,
    /// Default time a service gets between SIGTERM and SIGKILL at shutdown.
    pub shutdown_grace_ms: u32,
    /// Where the root filesystem comes from. `None`: everything is in the
    /// initramfs (development images). `Some`: stage 1 in the initramfs
    /// verifies and mounts the root slot, then switches root.
    pub root: Option<RootSpec>,
}

/// The verified root filesystem stage 1 assembles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootSpec {
    /// GPT name of the root slot partition (`root-a`).
    pub partition: String,
    /// GPT name of the persistent data partition (ext4, mounted on /data).
    pub data_partition: Option<String>,
    /// How long to wait for the partitions to appear.
    pub wait_s: u32,
    /// Accept an unsigned manifest (`imagegen build --insecure-unsigned`).
    pub allow_unsigned: bool,
    /// How the slot to boot is chosen and recorded (docs/update.md).
    pub boot_control: BootControl,
    /// How a trial boot of this slot is judged and committed. Stage 2
    /// reads it from the slot being tried, so the new image's own policy
    /// governs its trial.
    pub update: UpdatePolicy,
}

/// Who commits a trial boot that passed the health gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommitPolicy {
    /// init commits it itself once every gate passed.
    Local,
    /// init runs the gates but leaves the commit to `update commit`.
    Manual,
    /// After every local gate passed, init waits up to `deadline_s` for an
    /// approval signed by `verifier_key` ([`crate::approval`]) naming this
    /// trial; it commits when a valid one arrives (`update approve`), and
    /// fails the trial at the deadline.
    Attested {
        /// Raw Ed25519 public key of the remote verifier.
        verifier_key: [u8; 32],
        /// Seconds from the moment the local gates passed.
        deadline_s: u32,
    },
}

impl CommitPolicy {
    /// The word the image config's `[update] commit` uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Manual => "manual",
            Self::Attested { .. } => "attested",
        }
    }
}

/// The health gate of a trial boot (docs/update.md, "Trial and commit").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdatePolicy {
    pub commit: CommitPolicy,
    /// Every service must be ready within this many seconds of kernel start.
    pub ready_deadline_s: u32,
    /// Then no service may exit or restart for this many seconds.
    pub hold_s: u32,
    /// Then this command (argv, `[0]` absolute) must exit 0.
    pub health_check: Option<HealthCheck>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub exec: Vec<String>,
    /// Killed and failed after this many seconds.
    pub timeout_s: u32,
}

/// Defaults and bounds of [`UpdatePolicy`], shared by the build's checks
/// and the docs.
pub mod update_limits {
    pub const READY_DEADLINE_DEFAULT_S: u32 = 60;
    pub const HOLD_DEFAULT_S: u32 = 30;
    pub const HEALTH_CHECK_TIMEOUT_DEFAULT_S: u32 = 30;
    /// Every duration of the policy is at most an hour: a trial that takes
    /// longer is indistinguishable from a hung one.
    pub const MAX_S: u32 = 3600;
    /// The ready deadline and the health check timeout are at least 1 s;
    /// the hold may be 0.
    pub const MIN_DEADLINE_S: u32 = 1;
    /// The service name a health check runs (and is limit-checked) under.
    pub const HEALTH_CHECK_NAME: &str = "health-check";
    /// Policy `attested`: how long the gate waits for an approval after
    /// the local gates passed (default; at least [`MIN_DEADLINE_S`], at
    /// most [`MAX_S`]).
    pub const APPROVAL_DEADLINE_DEFAULT_S: u32 = 600;
}

impl Default for UpdatePolicy {
    fn default() -> Self {
        UpdatePolicy {
            commit: CommitPolicy::Local,
            ready_deadline_s: update_limits::READY_DEADLINE_DEFAULT_S,
            hold_s: update_limits::HOLD_DEFAULT_S,
            health_check: None,
        }
    }
}

impl HealthCheck {
    /// The health check as the one-off service init spawns (root, `/`,
    /// no restart), so [`crate::limits::check_service`] applies to it
    /// exactly as to a service.
    pub fn as_service(&self) -> crate::Service {
        crate::Service {
            name: crate::name(update_limits::HEALTH_CHECK_NAME).unwrap_or_default(),
            exec: self.exec.clone(),
            env: Vec::new(),
            uid: 0,
            gid: 0,
            workdir: None,
            restart: crate::RestartPolicy::Never,
            restart_delay_ms: 0,
            restart_delay_max_ms: 0,
            crash_loop: crate::CrashLoop {
                max_restarts: 0,
                window_s: 1,
                action: crate::CrashLoopAction::GiveUp,
            },
            after: Vec::new(),
            memory_max: None,
            ready: crate::Readiness::Started,
            stop_timeout_ms: None,
        }
    }
}

/// The boot-control backend: where the A/B boot state lives and who picks
/// the slot. New backends (UEFI BootNext/BootOrder, Raspberry Pi tryboot,
/// U-Boot env) are new variants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BootControl {
    /// One slot: always boot [`RootSpec::partition`]; no boot state, no updates.
    Fixed,
    /// One kernel + initramfs for both slots; stage 1 picks the root slot
    /// from the boot state kept in the GPT partition named here.
    InitramfsSelect { state_partition: String },
    /// UEFI: one boot entry per slot, each with its own kernel, initramfs
    /// and command line on the ESP (`formats::efi`); `BootNext` arms a
    /// trial, `BootOrder` the committed slot. The boot state in
    /// `state_partition` stays the record of versions, digests, floor and
    /// failures; the variables only say which kernel the firmware starts.
    Uefi {
        state_partition: String,
        /// GPT name of the EFI System Partition (the `boot` partition).
        esp_partition: String,
    },
}

impl BootControl {
    /// The partition holding the A/B boot state, if the backend has one.
    pub fn state_partition(&self) -> Option<&str> {
        match self {
            Self::Fixed => None,
            Self::InitramfsSelect { state_partition }
            | Self::Uefi {
                state_partition, ..
            } => Some(state_partition),
        }
    }

    /// Does this backend install kernel, initramfs and cmdline payloads?
    pub fn updates_kernel(&self) -> bool {
        matches!(self, Self::Uefi { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watchdog {
    /// Device node, normally `/dev/watchdog`.
    pub device: String,
    /// Timeout to program; init pets at a third of it.
    pub timeout_s: u32,
    /// Missing device is fatal (true) or a warning (false).
    pub required: bool,
}

impl Enveloped for BootConfig {
    const MAGIC: [u8; 4] = *b"AZBC";
    /// 2: `RootSpec::boot_control` added. 3: `RootSpec::update` added.
    /// 4: `CommitPolicy::Attested` added. 5: `BootControl::Uefi` added.
    const VERSION: u16 = 5;
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    #[test]
    fn roundtrip() {
        let c = BootConfig {
            image_name: "demo".into(),
            image_version: "1.0.0".into(),
            board: "qemu-virt".into(),
            hostname: "edge".into(),
            modules: vec!["/lib/modules/virtio_blk.ko".to_string()],
            watchdog: Some(Watchdog {
                device: "/dev/watchdog".into(),
                timeout_s: 10,
                required: false,
            }),
            emergency_reboot_delay_s: 10,
            shutdown_grace_ms: 5000,
            root: Some(RootSpec {
                partition: "root-a".into(),
                data_partition: Some("data".into()),
                wait_s: 10,
                allow_unsigned: false,
                boot_control: BootControl::InitramfsSelect {
                    state_partition: "bootstate".into(),
                },
                update: UpdatePolicy {
                    commit: CommitPolicy::Attested {
                        verifier_key: [0x5a; 32],
                        deadline_s: 40,
                    },
                    ready_deadline_s: 90,
                    hold_s: 0,
                    health_check: Some(HealthCheck {
                        exec: vec!["/bin/check".to_string(), "--quick".to_string()],
                        timeout_s: 5,
                    }),
                },
            }),
        };
        let b = c.to_bytes().unwrap();
        assert_eq!(&b[..4], b"AZBC");
        assert_eq!(BootConfig::from_bytes(&b).unwrap(), c);
        // Truncation anywhere is an error, never a panic.
        for n in 0..b.len() {
            assert!(BootConfig::from_bytes(&b[..n]).is_err());
        }
        let mut extra = b.clone();
        extra.push(0);
        assert!(BootConfig::from_bytes(&extra).is_err());
        let mut v4 = b;
        v4[4] = 4;
        assert!(matches!(
            BootConfig::from_bytes(&v4),
            Err(crate::FormatError::UnsupportedVersion { found: 4, .. })
        ));
        let mut uefi = c.clone();
        if let Some(r) = uefi.root.as_mut() {
            r.boot_control = BootControl::Uefi {
                state_partition: "bootstate".into(),
                esp_partition: "boot".into(),
            };
        }
        let b = uefi.to_bytes().unwrap();
        assert_eq!(BootConfig::from_bytes(&b).unwrap(), uefi);
        let bc = uefi.root.unwrap().boot_control;
        assert_eq!(bc.state_partition(), Some("bootstate"));
        assert!(bc.updates_kernel());
        assert!(!BootControl::Fixed.updates_kernel());
    }

    #[test]
    fn update_policy_defaults_and_health_check_limits() {
        let d = UpdatePolicy::default();
        assert_eq!(d.commit, CommitPolicy::Local);
        assert_eq!((d.ready_deadline_s, d.hold_s), (60, 30));
        assert!(d.health_check.is_none());
        let hc = HealthCheck {
            exec: vec!["/bin/check".to_string()],
            timeout_s: 30,
        };
        let svc = hc.as_service();
        assert_eq!(svc.name.as_str(), update_limits::HEALTH_CHECK_NAME);
        assert!(crate::limits::check_service(&svc).is_ok());
        let too_many = HealthCheck {
            exec: (0..64).map(|i| alloc::format!("/a{i}")).collect(),
            timeout_s: 1,
        };
        assert!(crate::limits::check_service(&too_many.as_service()).is_err());
    }
}
