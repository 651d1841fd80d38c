//! The verifier on a UEFI boot, with REAL quotes: a private swtpm where
//! the Linux EFI stub's load-options measurement (PCR 9) is extended before
//! PID 1's events, as on a device started from its boot entry; the report's
//! log is the firmware's (a PCR 0 event, the stub's event, the firmware's
//! ExitBootServices event on PCR 5) merged in front of PID 1's. Exactly
//! that one stub event, where and as the signed reference predicts it, is
//! accepted; everything else stays refused.
use super::tests::{fails_with, firmware_log_with, tpm2b};
use azl_attest::reference::{expected_log, predict, predict_uefi};
use azl_attest::swtpm::Swtpm;
use azl_attest::verify::{verify, Options, Outcome, Verdict};
use azl_formats::attest::{Report, Tier};
use azl_formats::bootstate::Slot;
use azl_formats::efi;
use azl_formats::efistub;
use azl_formats::eventlog::{self, EventLog};
use azl_formats::logcheck;
use azl_formats::manifest::{Digest, Hex, Manifest};
use azl_formats::measure::QUOTED_PCRS;
use azl_sign::testing::sample_manifest;
use std::sync::OnceLock;

const TABLE: &[u8] = b"AZSV\x01\x00 the uefi image's table";
const EV_EFI_ACTION: u32 = 0x8000_0007;
const EV_POST_CODE: u32 = 0x0000_0001;

struct Fixture {
    /// Reference predicted for a UEFI boot (the stub's event first).
    uefi: Manifest,
    /// The same image predicted as a direct boot (no stub event).
    direct: Manifest,
    /// PID 1's log of the boot.
    ours: Vec<u8>,
    nonce: Vec<u8>,
    pcrs: Vec<(u8, Digest)>,
    ak: Vec<u8>,
    quote: (Vec<u8>, Vec<u8>),
}

fn stub_digest(m: &Manifest) -> Digest {
    efistub::load_options_digest(&m.cmdline)
}

/// The firmware's log with `stub` as its PCR-9 record (pcr, type, data).
fn firmware(stub: (u32, u32, &[u8]), digest: Digest) -> Vec<u8> {
    let ebs = b"Exit Boot Services Invocation";
    firmware_log_with(&[
        (0, EV_POST_CODE, eventlog::sha256(b"fw"), b"fw"),
        (stub.0, stub.1, digest, stub.2),
        (5, EV_EFI_ACTION, eventlog::sha256(ebs), ebs),
    ])
}

fn the_stub(m: &Manifest) -> Vec<u8> {
    let data = efistub::load_options_event_data();
    firmware((9, efistub::EV_EVENT_TAG, &data), stub_digest(m))
}

fn build() -> Result<Fixture, String> {
    let mut m = sample_manifest();
    m.cmdline = efi::slot_cmdline(Slot::A, "console=ttyAMA0 panic=-1");
    m.service_table_sha256 = eventlog::sha256(TABLE);
    let id = m.identity_bytes().map_err(|e| e.to_string())?;
    let root = m.rootfs.verity.root_hash;
    let mut uefi = m.clone();
    uefi.reference = Some(predict_uefi(&id, &m.cmdline, &root, TABLE));
    let mut direct = m.clone();
    direct.reference = Some(predict(&id, &m.cmdline, &root, TABLE));

    let tpm = Swtpm::start()?;
    let ak = tpm.create_ak("ak")?;
    // Boot: the stub extends PCR 9 with the entry's load options, then
    // PID 1 measures its events.
    tpm.extend(efistub::PCR, &stub_digest(&uefi))?;
    let ours = expected_log(&id, &m.cmdline, &root, TABLE);
    for e in eventlog::parse(ours.as_bytes()).map_err(|e| e.to_string())? {
        tpm.extend(e.pcr as u8, &e.sha256)?;
    }
    let pcrs = tpm.read_pcrs(&QUOTED_PCRS)?;
    let nonce: Vec<u8> = (0..16u8).map(|i| i ^ 0xa5).collect();
    let quote = tpm.quote("ak", "sha256:8,9,11", &nonce, "q")?;
    Ok(Fixture {
        uefi,
        direct,
        ours: ours.to_bytes(),
        nonce,
        pcrs,
        ak,
        quote,
    })
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        assert!(
            Swtpm::available(),
            "swtpm or tpm2-tools not installed (scripts/setup.sh installs them)"
        );
        build().unwrap_or_else(|e| panic!("building the UEFI swtpm fixture: {e}"))
    })
}

impl Fixture {
    fn report(&self, firmware: &[u8]) -> Report {
        Report {
            tier: Tier::Tpm,
            nonce: self.nonce.clone(),
            ak_public: self.ak.clone(),
            quote: tpm2b(&self.quote.0),
            signature: self.quote.1.clone(),
            pcrs: self.pcrs.clone(),
            event_log: eventlog::merge(firmware, &self.ours).unwrap(),
            manifest: Vec::new(),
        }
    }

    fn good(&self) -> Report {
        self.report(&the_stub(&self.uefi))
    }

    fn check(&self, r: &Report, m: &Manifest) -> Outcome {
        verify(
            r,
            m,
            &Options {
                nonce: &self.nonce,
                pinned_ak: Some(&self.ak),
                log_only: false,
            },
        )
    }
}

#[test]
fn a_uefi_boot_with_the_predicted_stub_event_is_attested() {
    let f = fixture();
    assert_eq!(f.pcrs, f.uefi.reference.as_ref().unwrap().pcrs);
    let out = f.check(&f.good(), &f.uefi);
    let text = out.to_string();
    assert!(out.attested(), "{text}");
    for step in [
        "ok  event log: 2 firmware events (PCRs outside 8, 9, 11), 7 azl-edge events",
        "--  event log: 1 EFI stub event (EV_EVENT_TAG \"LOADED_IMAGE::LoadOptions\", PCR 9)",
        "ok  event log replays to the quoted PCRs 8, 9, 11",
        "ok  event log matches the signed reference (8 events, in order)",
        "ok  PCRs 8, 9, 11 equal the signed reference values",
    ] {
        assert!(text.contains(step), "missing {step:?} in:\n{text}");
    }
}

#[test]
fn a_stub_event_the_reference_does_not_predict_is_refused() {
    let f = fixture();
    let want = &f.direct.reference.as_ref().unwrap().events[0];
    fails_with(
        &f.check(&f.good(), &f.direct),
        &format!(
            "PCR 11 differs: expected phase:initramfs-entered {}, got efi-stub:load-options {} (event 2, on PCR 9)",
            Hex(&want.digest),
            Hex(&stub_digest(&f.uefi))
        ),
    );
}

#[test]
fn a_stub_event_with_another_digest_is_refused() {
    let f = fixture();
    // The reference predicts other load options than the entry had.
    let mut m = f.uefi.clone();
    let r = m.reference.as_mut().unwrap();
    r.events[0] = efistub::ref_event("initrd=\\EFI\\azl\\a\\initrd init=/bin/sh");
    r.pcrs = logcheck::replay_reference(&r.events);
    let want = r.events[0].digest;
    fails_with(
        &f.check(&f.good(), &m),
        &format!(
            "PCR 9 differs: expected efi-stub:load-options {}, got efi-stub:load-options {} (event 2)",
            Hex(&want),
            Hex(&stub_digest(&f.uefi))
        ),
    );
    // The log's digest edited (the data is not covered: only the replay
    // can tell).
    let fw = firmware(
        (
            9,
            efistub::EV_EVENT_TAG,
            &efistub::load_options_event_data(),
        ),
        [0x5a; 32],
    );
    fails_with(
        &f.check(&f.report(&fw), &f.uefi),
        "event log does not replay to the quoted PCR 9",
    );
}

#[test]
fn a_tagged_event_on_another_pcr_or_of_another_kind_is_refused() {
    let f = fixture();
    let data = efistub::load_options_event_data();
    let d = stub_digest(&f.uefi);
    for pcr in [8u32, 11] {
        let fw = firmware((pcr, efistub::EV_EVENT_TAG, &data), d);
        fails_with(
            &f.check(&f.report(&fw), &f.uefi),
            &format!("event 2: EV_EVENT_TAG (0x00000006) on PCR {pcr} is not the EFI stub's load-options event"),
        );
    }
    // The stub's "Linux initrd" event (not made for `initrd=`), same digest.
    let mut initrd = data.clone();
    initrd[..4].copy_from_slice(&0x8F3B_22ECu32.to_le_bytes());
    initrd.truncate(8);
    initrd[4..8].copy_from_slice(&13u32.to_le_bytes());
    initrd.extend_from_slice(b"Linux initrd\0");
    let fw = firmware((9, efistub::EV_EVENT_TAG, &initrd), d);
    fails_with(
        &f.check(&f.report(&fw), &f.uefi),
        "event 2: EV_EVENT_TAG (0x00000006) on PCR 9 is not the EFI stub's load-options event",
    );
    // The stub's event relabelled: EV_NO_ACTION would hide it from the
    // replay, EV_AZL would claim it as PID 1's.
    let fw = firmware((9, 3, &data), d);
    fails_with(
        &f.check(&f.report(&fw), &f.uefi),
        "event 2: type rewritten/unknown (0x00000003 on PCR 9",
    );
    let fw = firmware((9, 0x0d, &data), d);
    fails_with(
        &f.check(&f.report(&fw), &f.uefi),
        "event 2: data is not an azl-edge event",
    );
}

#[test]
fn the_stub_event_missing_twice_or_after_ours_is_refused() {
    let f = fixture();
    // Missing: PCR 9 no longer replays to the quote.
    let fw = firmware_log_with(&[(0, EV_POST_CODE, eventlog::sha256(b"fw"), b"fw")]);
    fails_with(
        &f.check(&f.report(&fw), &f.uefi),
        "event log does not replay to the quoted PCR 9",
    );
    // After PID 1's events (in ours): the replay order breaks it too, and
    // the reference would have it first.
    let mut late = EventLog::from_bytes(&f.ours).unwrap();
    late.append(
        9,
        efistub::EV_EVENT_TAG,
        &stub_digest(&f.uefi),
        &efistub::load_options_event_data(),
    );
    let mut r = f.good();
    r.event_log = eventlog::merge(&fw, late.as_bytes()).unwrap();
    let out = f.check(&r, &f.uefi);
    assert!(!out.attested(), "{out}");
    // Twice: the second one is extra.
    let data = efistub::load_options_event_data();
    let twice = firmware_log_with(&[
        (9, efistub::EV_EVENT_TAG, stub_digest(&f.uefi), &data),
        (9, efistub::EV_EVENT_TAG, stub_digest(&f.uefi), &data),
    ]);
    let out = f.check(&f.report(&twice), &f.uefi);
    assert!(matches!(out.verdict, Verdict::Failed(_)), "{out}");
}

#[test]
fn a_uefi_log_without_a_tpm_does_not_match_the_measured_reference() {
    // --log-only on a software-only UEFI report: the stub measured
    // nothing, the reference of a measured boot expects its event first.
    let f = fixture();
    let r = Report {
        tier: Tier::SoftwareOnly,
        nonce: f.nonce.clone(),
        ak_public: Vec::new(),
        quote: Vec::new(),
        signature: Vec::new(),
        pcrs: Vec::new(),
        event_log: f.ours.clone(),
        manifest: Vec::new(),
    };
    let out = verify(
        &r,
        &f.uefi,
        &Options {
            nonce: &[],
            pinned_ak: None,
            log_only: true,
        },
    );
    fails_with(&out, "PCR 9 differs: expected efi-stub:load-options");
}
