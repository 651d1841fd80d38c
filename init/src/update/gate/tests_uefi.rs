//! The measurement self-check of a UEFI trial: the slot's reference
//! starts with the EFI stub's load-options event (PCR 9), which only the
//! firmware's log holds (with a TPM); PID 1's own log never does.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
use super::selfcheck::{check, Inputs, SelfCheckError};
use super::tests::{reason, Boot};
use azl_formats::efistub;
use azl_formats::eventlog::{self, EventLog};
use azl_formats::logcheck;
use azl_formats::manifest::{Digest, RefEvent, Reference};
use azl_formats::measure::{QUOTED_PCRS, VERIFIED_BOOT_SEQUENCE};

fn uefi_boot() -> Boot {
    let mut b = Boot::new();
    b.manifest.cmdline =
        azl_formats::efi::slot_cmdline(azl_formats::bootstate::Slot::B, "console=ttyAMA0 panic=-1");
    b
}

/// The manifest envelope of a UEFI build: the stub's event, then PID 1's.
fn uefi_envelope(b: &Boot) -> Vec<u8> {
    let mut events = vec![efistub::ref_event(&b.manifest.cmdline)];
    events.extend(VERIFIED_BOOT_SEQUENCE.iter().map(|&k| RefEvent {
        pcr: k.pcr(),
        tag: k.tag().to_string(),
        digest: eventlog::azl_event(k, &b.content(k)).0,
    }));
    let mut m = b.manifest.clone();
    m.reference = Some(Reference {
        pcrs: logcheck::replay_reference(&events),
        events,
    });
    b.sign(&m)
}

/// A firmware log: a PCR 0 event, the stub's event with `digest` on
/// `pcr`, then the firmware's ExitBootServices event on PCR 5.
fn firmware(pcr: u8, digest: &Digest) -> EventLog {
    let mut fw = EventLog::new();
    fw.append(0, 0x8000_0008, &[3; 32], b"platform firmware blob");
    fw.append(
        pcr,
        efistub::EV_EVENT_TAG,
        digest,
        &efistub::load_options_event_data(),
    );
    fw.append(5, 0x8000_0007, &[4; 32], b"Exit Boot Services Invocation");
    fw
}

/// What the TPM holds after the firmware's and PID 1's extends.
fn tpm_of(fw: &EventLog, own: &EventLog) -> Vec<(u8, Digest)> {
    let merged = eventlog::merge(fw.as_bytes(), own.as_bytes()).unwrap();
    eventlog::replay(&eventlog::parse(&merged).unwrap(), &QUOTED_PCRS)
}

fn run(
    own: &EventLog,
    fw: Option<&EventLog>,
    env: &[u8],
    tpm: Option<Vec<(u8, Digest)>>,
) -> Result<usize, SelfCheckError> {
    check(&Inputs {
        log: own.as_bytes(),
        firmware_log: fw.map(EventLog::as_bytes),
        manifest: env,
        manifest_sha256: &azl_formats::sha256(env),
        tpm: tpm.map(Ok),
    })
}

#[test]
fn a_measured_uefi_trial_passes_with_the_stubs_event_first() {
    let b = uefi_boot();
    let env = uefi_envelope(&b);
    let own = b.log(|_, c| Some(c));
    let fw = firmware(9, &efistub::load_options_digest(&b.manifest.cmdline));
    let tpm = tpm_of(&fw, &own);
    assert_eq!(run(&own, Some(&fw), &env, Some(tpm)).unwrap(), 8);
}

#[test]
fn a_uefi_trial_without_a_tpm_is_held_to_pid_1s_events() {
    // No TPM: no TCG2 protocol, the stub measures nothing, no firmware log.
    let b = uefi_boot();
    let env = uefi_envelope(&b);
    let own = b.log(|_, c| Some(c));
    assert_eq!(run(&own, None, &env, None).unwrap(), 7);
    // A TPM whose log is missing: its PCR 9 holds the stub's extend, the
    // replay does not: refused.
    let fw = firmware(9, &efistub::load_options_digest(&b.manifest.cmdline));
    let why = reason(run(&own, None, &env, Some(tpm_of(&fw, &own))));
    assert!(
        why.starts_with("measurement self-check: the TPM's PCR 9 is "),
        "{why}"
    );
}

#[test]
fn a_stub_event_with_another_digest_fails_the_trial() {
    let b = uefi_boot();
    let env = uefi_envelope(&b);
    let own = b.log(|_, c| Some(c));
    // The entry's load options were not the predicted ones.
    let fw = firmware(9, &efistub::load_options_digest("init=/bin/sh"));
    let why = reason(run(&own, Some(&fw), &env, Some(tpm_of(&fw, &own))));
    assert!(
        why.starts_with("measurement self-check: event 2 is efi-stub:load-options ")
            && why.contains("…, the manifest says "),
        "{why}"
    );
}

#[test]
fn a_stub_event_a_direct_boot_does_not_predict_fails_the_trial() {
    let b = uefi_boot();
    let direct = b.envelope();
    let own = b.log(|_, c| Some(c));
    let fw = firmware(9, &efistub::load_options_digest(&b.manifest.cmdline));
    let why = reason(run(&own, Some(&fw), &direct, Some(tpm_of(&fw, &own))));
    assert_eq!(
        why,
        "measurement self-check: event 2 is efi-stub:load-options, the manifest says phase:initramfs-entered"
    );
}

#[test]
fn a_tagged_event_on_another_pcr_fails_the_trial() {
    let b = uefi_boot();
    let env = uefi_envelope(&b);
    let own = b.log(|_, c| Some(c));
    let d = efistub::load_options_digest(&b.manifest.cmdline);
    for pcr in [8u8, 11] {
        let fw = firmware(pcr, &d);
        assert_eq!(
            reason(run(&own, Some(&fw), &env, Some(tpm_of(&fw, &own)))),
            format!(
                "measurement self-check: event 2 (PCR {pcr}): EV_EVENT_TAG, not the EFI stub's load-options event"
            )
        );
    }
}

#[test]
fn pid_1s_own_log_never_holds_the_stubs_event() {
    let b = uefi_boot();
    let env = uefi_envelope(&b);
    let mut own = EventLog::new();
    own.append(
        9,
        efistub::EV_EVENT_TAG,
        &efistub::load_options_digest(&b.manifest.cmdline),
        &efistub::load_options_event_data(),
    );
    for e in eventlog::parse(b.log(|_, c| Some(c)).as_bytes()).unwrap() {
        own.append(e.pcr as u8, e.event_type, &e.sha256, &e.data);
    }
    assert_eq!(
        reason(run(&own, None, &env, None)),
        "measurement self-check: event 1 (PCR 9): type 0x00000006, not EV_AZL"
    );
}
