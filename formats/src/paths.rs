//! Every path both sides of azl-edge name: where imagegen puts a file in
//! the initramfs or root filesystem is where init looks for it, and the
//! mount points and run-time files the device uses are the ones the
//! verifier and the docs refer to. Nothing else in either program spells
//! these strings.

// --- Files the build writes, init reads -----------------------------------

/// The compiled [`crate::BootConfig`].
pub const BOOT_CONFIG: &str = "/etc/azl-edge/boot.cfg";
/// The compiled [`crate::ServiceTable`].
pub const SERVICE_TABLE: &str = "/etc/azl-edge/services.tbl";
/// The raw 32-byte Ed25519 public key stage 1 checks the manifest
/// signature with ([`crate::signature::verify`]); only in the initramfs of
/// a signed image.
pub const MANIFEST_PUBLIC_KEY: &str = "/etc/azl-edge/manifest.pub";
/// Loadable kernel modules, in the order init loads them, live below here.
pub const MODULES_DIR: &str = "/lib/modules";
/// PID 1 in the initramfs (the kernel runs it).
pub const INIT: &str = "/init";
/// init in a root filesystem: stage 1 execs it after switching root.
pub const ROOT_INIT: &str = "/sbin/init";
/// `initctl`, a link to init (it acts by the name it is called by).
pub const INITCTL: &str = "/sbin/initctl";

// --- Mount points ----------------------------------------------------------

/// Where stage 1 assembles the verified root (the dm-verity squashfs)
/// before switching to it; it becomes `/`.
pub const SYSROOT: &str = "/sysroot";
/// Mount point of the persistent data partition (ext4, read-write) in the
/// running system.
pub const DATA: &str = "/data";
/// [`DATA`] seen from stage 1, before the switch: `SYSROOT ‖ DATA`.
pub const SYSROOT_DATA: &str = "/sysroot/data";
/// Mount point of the boot partition (FAT: kernel, initramfs, firmware),
/// for the updater. Reserved: no image mounts it yet.
pub const BOOT: &str = "/boot";

// --- Run-time files on the device -------------------------------------------

/// Directory of azl-edge's run-time state (on the `/run` tmpfs, which
/// stage 1 moves into the new root).
pub const RUN_DIR: &str = "/run/azl-edge";
/// The TCG event log PID 1 writes next to every PCR extend.
pub const EVENT_LOG: &str = "/run/azl-edge/measurements.log";
/// The verified `SignedManifest` envelope of the running slot, copied by
/// stage 1 (`initctl attest` puts it in the report).
pub const MANIFEST_COPY: &str = "/run/azl-edge/manifest.bin";
/// Where the kernel exposes the firmware's event log, if there is one.
pub const FIRMWARE_EVENT_LOG: &str = "/sys/kernel/security/tpm0/binary_bios_measurements";
/// The kernel command line as the device booted it (see
/// [`crate::measure::measured_cmdline`]).
pub const PROC_CMDLINE: &str = "/proc/cmdline";
/// The control socket of the running init.
pub const CONTROL_SOCKET: &str = "/run/initctl.sock";

/// The same key under the name the update code uses.
pub const MANIFEST_PUB: &str = MANIFEST_PUBLIC_KEY;
/// Stage 1's copy of [`MANIFEST_PUBLIC_KEY`] for stage 2 (the initramfs is
/// gone after switch_root); `update install` verifies bundles with it.
pub const RUN_MANIFEST_PUB: &str = "/run/azl-edge/manifest.pub";
/// What stage 1 booted ([`crate::booted::Booted`]).
pub const BOOTED: &str = "/run/azl-edge/booted.bin";
/// During a trial boot, the health gate's progress (one line: the gate
/// pending, or its outcome), for `update status`.
pub const GATE_STATUS: &str = "/run/azl-edge/gate";
/// The quotes `initctl attest` answered during this boot, one line each
/// ([`crate::approval::answer_line`]): what binds an approval to this boot.
pub const ATTEST_ANSWERS: &str = "/run/azl-edge/attest-answers";
/// `update approve` leaves the approval it checked here for PID 1's gate,
/// which checks it again ([`crate::approval::check`]).
pub const APPROVAL: &str = "/run/azl-edge/approval.bin";

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn derived_paths_agree() {
        assert_eq!(SYSROOT_DATA, format!("{SYSROOT}{DATA}"));
        for p in [
            EVENT_LOG,
            MANIFEST_COPY,
            BOOTED,
            GATE_STATUS,
            RUN_MANIFEST_PUB,
            ATTEST_ANSWERS,
            APPROVAL,
        ] {
            assert_eq!(p.rsplit_once('/').map(|(d, _)| d), Some(RUN_DIR), "{p}");
        }
        assert_eq!(
            MANIFEST_PUBLIC_KEY.rsplit_once('/').map(|(d, _)| d),
            BOOT_CONFIG.rsplit_once('/').map(|(d, _)| d)
        );
    }

    #[test]
    fn all_absolute_and_distinct() {
        let all = [
            BOOT_CONFIG,
            SERVICE_TABLE,
            MANIFEST_PUBLIC_KEY,
            MODULES_DIR,
            INIT,
            ROOT_INIT,
            INITCTL,
            SYSROOT,
            DATA,
            SYSROOT_DATA,
            BOOT,
            RUN_DIR,
            EVENT_LOG,
            MANIFEST_COPY,
            FIRMWARE_EVENT_LOG,
            PROC_CMDLINE,
            CONTROL_SOCKET,
            RUN_MANIFEST_PUB,
            BOOTED,
            GATE_STATUS,
            ATTEST_ANSWERS,
            APPROVAL,
        ];
        for (i, p) in all.iter().enumerate() {
            assert!(p.starts_with('/') && !p.ends_with('/'), "{p}");
            assert!(!p.contains("//") && !p.contains("/./"), "{p}");
            assert!(!all[..i].contains(p), "{p} twice");
        }
    }
}
