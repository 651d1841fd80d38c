//! The one measurement the Linux EFI stub makes on a UEFI azl-edge boot,
//! predicted by the build, accepted by the verifier and the device's
//! self-check (docs/pcr-map.md, "UEFI: the EFI stub's event").
//!
//! Before it converts the firmware's `LoadOptions` into the kernel command
//! line, the stub (Linux 6.1 `drivers/firmware/efi/libstub/
//! efi-stub-helper.c`, `efi_convert_cmdline` → `efi_measure_tagged_event`)
//! asks the firmware's EFI_TCG2_PROTOCOL to hash, extend and log the whole
//! `LoadOptions` buffer:
//!
//! ```text
//! PCR         9
//! event type  EV_EVENT_TAG (0x00000006)
//! digest      SHA-256(LoadOptions)   — the boot entry's OptionalData, as is
//! event data  TCG_PCClientTaggedEvent:
//!               taggedEventID       u32 LE = 0x8F3B22ED
//!               taggedEventDataSize u32 LE = 26
//!               taggedEventData     "LOADED_IMAGE::LoadOptions\0"
//! ```
//!
//! The digest covers the measured bytes, not the event data, so a verifier
//! cannot recompute it from the log: it must be predicted. An azl-edge
//! slot's `LoadOptions` is [`efi::options_data`] of the slot's command line
//! (the manifest's `cmdline`), so the build predicts it exactly. Without a
//! TPM the firmware has no TCG2 protocol and the stub measures nothing.
//!
//! The stub's other tagged event ("Linux initrd", 0x8F3B22EC) is made only
//! for an initrd loaded through the LINUX_EFI_INITRD_MEDIA_GUID device path;
//! azl-edge entries load it with `initrd=` (the command-line loader, not
//! measured), so that event is not expected and is refused like any other.
use crate::efi;
use crate::eventlog::Event;
use crate::manifest::{Digest, RefEvent};
use crate::measure::PCR_ROOT;
use alloc::string::ToString;
use alloc::vec::Vec;

/// TCG event type EV_EVENT_TAG.
pub const EV_EVENT_TAG: u32 = 0x0000_0006;
/// The PCR the stub measures into.
pub const PCR: u8 = PCR_ROOT;
/// The stub's tagged-event ID for the load options.
pub const LOAD_OPTIONS_TAG_ID: u32 = 0x8F3B_22ED;
/// The stub's tagged-event data for the load options (NUL included, as
/// the stub's `sizeof` counts it).
pub const LOAD_OPTIONS_DESCRIPTION: &[u8] = b"LOADED_IMAGE::LoadOptions\0";
const DESCRIPTION_LEN: u32 = LOAD_OPTIONS_DESCRIPTION.len() as u32;
/// The reference tag of the event (never an azl-edge tag: those have no
/// `efi-stub:` prefix).
pub const REF_TAG: &str = "efi-stub:load-options";

/// The event data the stub logs with its load-options measurement.
pub fn load_options_event_data() -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + LOAD_OPTIONS_DESCRIPTION.len());
    v.extend_from_slice(&LOAD_OPTIONS_TAG_ID.to_le_bytes());
    v.extend_from_slice(&DESCRIPTION_LEN.to_le_bytes());
    v.extend_from_slice(LOAD_OPTIONS_DESCRIPTION);
    v
}

/// Is `e` shaped as the stub's load-options event: PCR 9, EV_EVENT_TAG,
/// exactly that event data? (Its digest can only be compared with a
/// prediction.)
pub fn is_load_options_event(e: &Event) -> bool {
    e.pcr == u32::from(PCR) && e.event_type == EV_EVENT_TAG && e.data == load_options_event_data()
}

/// What the stub extends for a boot entry whose command line is
/// `cmdline`: SHA-256 of the entry's OptionalData.
pub fn load_options_digest(cmdline: &str) -> Digest {
    crate::sha256(&efi::options_data(cmdline))
}

/// The reference event of the stub's measurement for `cmdline`.
pub fn ref_event(cmdline: &str) -> RefEvent {
    RefEvent {
        pcr: PCR,
        tag: REF_TAG.to_string(),
        digest: load_options_digest(cmdline),
    }
}

/// Is `r` a reference event the EFI stub (not PID 1) makes?
pub fn is_ref_event(r: &RefEvent) -> bool {
    r.tag == REF_TAG
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::bootstate::Slot;
    use crate::eventlog::{self, EventLog};

    #[test]
    fn the_event_data_is_the_stubs_tagged_event() {
        let d = load_options_event_data();
        assert_eq!(d.len(), 34);
        assert_eq!(&d[..8], &[0xed, 0x22, 0x3b, 0x8f, 26, 0, 0, 0]);
        assert_eq!(&d[8..], b"LOADED_IMAGE::LoadOptions\0");
    }

    #[test]
    fn the_digest_is_over_the_entrys_optional_data() {
        let cmd = efi::slot_cmdline(Slot::A, "console=ttyAMA0");
        let want = crate::sha256(&efi::utf16le(&cmd));
        assert_eq!(load_options_digest(&cmd), want);
        let r = ref_event(&cmd);
        assert_eq!((r.pcr, r.tag.as_str(), r.digest), (9, REF_TAG, want));
        assert!(is_ref_event(&r));
    }

    #[test]
    fn only_that_shape_is_the_stubs_event() {
        let mut log = EventLog::new();
        let data = load_options_event_data();
        log.append(9, EV_EVENT_TAG, &[1; 32], &data);
        log.append(8, EV_EVENT_TAG, &[1; 32], &data);
        log.append(9, 0x0d, &[1; 32], &data);
        let mut initrd = data.clone();
        initrd[0] = 0xec;
        log.append(9, EV_EVENT_TAG, &[1; 32], &initrd);
        let events = eventlog::parse(log.as_bytes()).unwrap();
        let shapes: Vec<bool> = events.iter().map(is_load_options_event).collect();
        assert_eq!(shapes, [true, false, false, false]);
    }
}
