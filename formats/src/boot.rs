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
    /// 2: `RootSpec::boot_control` added.
    const VERSION: u16 = 2;
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
        let mut v2 = b;
        v2[4] = 1;
        assert!(matches!(
            BootConfig::from_bytes(&v2),
            Err(crate::FormatError::UnsupportedVersion { found: 1, .. })
        ));
    }
}
