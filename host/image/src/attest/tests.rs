//! Attestation tests on REAL quotes: a private swtpm, an AK made with
//! tpm2_createprimary, the predicted events of a synthetic manifest
//! extended with tpm2_pcrextend, quotes from tpm2_quote. Every scenario
//! (tampering, replays, forgeries) is built from that one TPM session.
//! swtpm and tpm2-tools come from scripts/setup.sh; without them these tests fail.
use super::cli::{Inputs, VerifyArgs};
use azl_attest::reference::{expected_log, predict};
use azl_attest::swtpm::Swtpm;
use azl_attest::verify::{verify, Options, Outcome, Verdict};
use azl_formats::attest::{Report, Tier};
use azl_formats::envelope::Enveloped;
use azl_formats::eventlog::{self, EventLog};
use azl_formats::manifest::{Digest, Hex, Manifest, SignedManifest};
use azl_formats::measure::{self, Kind, EV_AZL, QUOTED_PCRS};
use azl_sign::testing::{sample_manifest, test_key};
use azl_sign::{self as sign, SigningKey};
use std::process::Command;
use std::sync::OnceLock;

const SERVICE_TABLE: &[u8] = b"AZSV\x01\x00 a compiled service table";

struct Fixture {
    public: [u8; 32],
    manifest: Manifest,
    signed: SignedManifest,
    other: Manifest,
    other_signed: SignedManifest,
    /// The reference with the service-table digest changed, re-signed.
    tampered: Manifest,
    log: Vec<u8>,
    nonce: Vec<u8>,
    pcrs: Vec<(u8, Digest)>,
    ak: Vec<u8>,
    ak2: Vec<u8>,
    unrestricted: Vec<u8>,
    /// (TPMS_ATTEST, TPMT_SIGNATURE)
    quote: (Vec<u8>, Vec<u8>),
    quote_8_9_10: (Vec<u8>, Vec<u8>),
    quote_split: (Vec<u8>, Vec<u8>),
    quote_ak2: (Vec<u8>, Vec<u8>),
    sign_forgery: (Vec<u8>, Vec<u8>),
    unrestricted_forgery: (Vec<u8>, Vec<u8>),
    /// tpm2_checkquote's verdict on `quote` (files from tpm2_quote).
    checkquote_ok: bool,
}

fn signed_manifest(
    key: &SigningKey,
    name: &str,
    root: u8,
    table: &[u8],
) -> (Manifest, SignedManifest) {
    let mut m = sample_manifest();
    m.image_name = name.into();
    m.rootfs.verity.root_hash = [root; 32];
    m.service_table_sha256 = eventlog::sha256(table);
    let id = m.identity_bytes().unwrap();
    m.reference = Some(predict(&id, &m.cmdline, &m.rootfs.verity.root_hash, table));
    let sm = sign::sign(&m, Some(key)).unwrap();
    (m, sm)
}

fn log_for(m: &Manifest, table: &[u8]) -> EventLog {
    expected_log(
        &m.identity_bytes().unwrap(),
        &m.cmdline,
        &m.rootfs.verity.root_hash,
        table,
    )
}

pub(super) fn tpm2b(b: &[u8]) -> Vec<u8> {
    let mut v = (b.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(b);
    v
}

/// A firmware-style log: SHA-1 + SHA-256 banks, the given (pcr, type, data)
/// events with both digests (zero for EV_NO_ACTION).
fn firmware_log(events: &[(u32, u32, &[u8])]) -> Vec<u8> {
    let with: Vec<(u32, u32, Digest, &[u8])> = events
        .iter()
        .map(|&(pcr, ty, data)| {
            let d = if ty == measure::EV_NO_ACTION {
                [0; 32]
            } else {
                eventlog::sha256(data)
            };
            (pcr, ty, d, data)
        })
        .collect();
    firmware_log_with(&with)
}

/// A firmware-style log of (pcr, type, SHA-256 digest, data) events; the
/// SHA-1 bank holds the digest's first 20 bytes.
pub(super) fn firmware_log_with(events: &[(u32, u32, Digest, &[u8])]) -> Vec<u8> {
    let mut fw = Vec::new();
    fw.extend_from_slice(&0u32.to_le_bytes());
    fw.extend_from_slice(&measure::EV_NO_ACTION.to_le_bytes());
    fw.extend_from_slice(&[0; 20]);
    fw.extend_from_slice(&37u32.to_le_bytes());
    fw.extend_from_slice(b"Spec ID Event03\0");
    fw.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 2]);
    fw.extend_from_slice(&[2, 0, 0, 0, 0x04, 0, 20, 0, 0x0b, 0, 32, 0, 0]);
    for &(pcr, ty, d, data) in events {
        fw.extend_from_slice(&pcr.to_le_bytes());
        fw.extend_from_slice(&ty.to_le_bytes());
        fw.extend_from_slice(&2u32.to_le_bytes());
        fw.extend_from_slice(&[0x04, 0]);
        fw.extend_from_slice(&d[..20]);
        fw.extend_from_slice(&[0x0b, 0]);
        fw.extend_from_slice(&d);
        fw.extend_from_slice(&(data.len() as u32).to_le_bytes());
        fw.extend_from_slice(data);
    }
    fw
}

fn build() -> Result<Fixture, String> {
    let key = test_key();
    let (manifest, signed) = signed_manifest(&key, "demo", 0xab, SERVICE_TABLE);
    let (other, other_signed) = signed_manifest(&key, "other", 0xcd, b"another table");
    let mut tampered = manifest.clone();
    tampered.reference.as_mut().unwrap().events[5].digest[0] ^= 1;
    assert_eq!(
        tampered.reference.as_ref().unwrap().events[5].tag,
        "service-table"
    );

    let tpm = Swtpm::start()?;
    let ak = tpm.create_ak("ak")?;
    // A second, different AK (owner hierarchy: another primary seed).
    let ak2 = tpm.create_key(
        "ak2",
        "o",
        "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign",
    )?;
    let unrestricted = tpm.create_key(
        "plain",
        "o",
        "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign",
    )?;
    // Boot: extend exactly what PID 1 would, in order.
    let log = log_for(&manifest, SERVICE_TABLE);
    for e in eventlog::parse(log.as_bytes()).unwrap() {
        tpm.extend(e.pcr as u8, &e.sha256)?;
    }
    let pcrs = tpm.read_pcrs(&QUOTED_PCRS)?;
    let nonce: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
    let quote = tpm.quote("ak", "sha256:8,9,11", &nonce, "q")?;
    let checkquote_ok = Command::new("tpm2_checkquote")
        .current_dir(tpm.dir())
        .args([
            "-u", "ak.pub", "-m", "q.msg", "-s", "q.sig", "-f", "q.pcrs", "-g", "sha256", "-q",
        ])
        .arg(nonce.iter().map(|b| format!("{b:02x}")).collect::<String>())
        .output()
        .is_ok_and(|o| o.status.success());
    let quote_8_9_10 = tpm.quote("ak", "sha256:8,9,10", &nonce, "q10")?;
    let quote_split = tpm.quote("ak", "sha256:11+sha256:8,9", &nonce, "qsplit")?;
    let quote_ak2 = tpm.quote("ak2", "sha256:8,9,11", &nonce, "q2")?;
    // TPM2_Sign by the real AK over quote-like bytes: the TPM signs them
    // only because they do not start with TPM_GENERATED_VALUE.
    let mut fake = quote.0.clone();
    fake[0] = 0x00;
    let sig = tpm.sign("ak", &fake)?;
    let sign_forgery = (fake, sig);
    // The TPM refuses the same for the genuine magic.
    assert!(
        tpm.sign("ak", &quote.0).is_err(),
        "a restricted key signed TPM_GENERATED data"
    );
    // An unrestricted key signs anything, magic included.
    let sig = tpm.sign("plain", &quote.0)?;
    let unrestricted_forgery = (quote.0.clone(), sig);
    Ok(Fixture {
        public: key.public_key(),
        manifest,
        signed,
        other,
        other_signed,
        tampered,
        log: log.to_bytes(),
        nonce,
        pcrs,
        ak,
        ak2,
        unrestricted,
        quote,
        quote_8_9_10,
        quote_split,
        quote_ak2,
        sign_forgery,
        unrestricted_forgery,
        checkquote_ok,
    })
}

/// The one swtpm session every test uses. swtpm and tpm2-tools are
/// installed by scripts/setup.sh: without them the tests fail, naming them.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        assert!(
            Swtpm::available(),
            "swtpm or tpm2-tools not installed (scripts/setup.sh installs them)"
        );
        build().unwrap_or_else(|e| panic!("building the swtpm fixture: {e}"))
    })
}

impl Fixture {
    fn report(&self, quote: &(Vec<u8>, Vec<u8>), ak: &[u8]) -> Report {
        Report {
            tier: Tier::Tpm,
            nonce: self.nonce.clone(),
            ak_public: ak.to_vec(),
            quote: tpm2b(&quote.0),
            signature: quote.1.clone(),
            pcrs: self.pcrs.clone(),
            event_log: self.log.clone(),
            manifest: self.signed.to_bytes().unwrap(),
        }
    }

    fn good(&self) -> Report {
        self.report(&self.quote, &self.ak)
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

#[track_caller]
pub(super) fn fails_with(out: &Outcome, want: &str) -> String {
    let text = out.to_string();
    match &out.verdict {
        Verdict::Failed(f) => assert!(
            f.reason.contains(want),
            "want failure {want:?}, got:\n{text}"
        ),
        _ => panic!("want failure {want:?}, got:\n{text}"),
    }
    assert!(
        !text.contains("ATTESTED:") || text.contains("NOT ATTESTED"),
        "{text}"
    );
    text
}

#[test]
fn genuine_quote_is_attested() {
    let f = fixture();
    assert!(f.checkquote_ok, "tpm2_checkquote rejects the fixture quote");
    // The TPM's PCRs are exactly the predicted reference values.
    assert_eq!(f.pcrs, f.manifest.reference.as_ref().unwrap().pcrs);
    let out = f.check(&f.good(), &f.manifest);
    let text = out.to_string();
    assert!(out.attested(), "{text}");
    assert_eq!(out.exit_code(), 0);
    assert!(
        text.ends_with("ATTESTED: demo 1.2.3 on board qemu-virt\n"),
        "{text}"
    );
    for step in [
        "ok  tier: TPM",
        "ok  AK matches the pinned AK",
        "ok  quote generated by a TPM",
        "ok  nonce matches",
        "ok  PCR selection is sha256:8,9,11",
        "ok  PCR values match the quoted digest",
        "ok  AK is an ECC P-256 restricted signing key",
        "ok  quote signature valid",
        "ok  event log: 0 firmware events",
        "ok  event log replays to the quoted PCRs 8, 9, 11",
        "ok  event log matches the signed reference (7 events, in order)",
        "ok  PCRs 8, 9, 11 equal the signed reference values",
    ] {
        assert!(text.contains(step), "missing {step:?} in:\n{text}");
    }
}

#[test]
fn other_images_manifest_is_rejected_naming_the_events() {
    let f = fixture();
    let out = f.check(&f.good(), &f.other);
    let other_ref = f.other.reference.as_ref().unwrap();
    let ours = f.manifest.reference.as_ref().unwrap();
    // First divergence in log order: the manifest event (PCR 8); the root
    // hash and service table on PCR 9 are listed after it.
    let text = fails_with(
        &out,
        &format!(
            "PCR 8 differs: expected manifest {}, got manifest {} (event 3)",
            Hex(&other_ref.events[2].digest),
            Hex(&ours.events[2].digest)
        ),
    );
    assert!(
        text.contains(&format!(
            "also: PCR 9 differs: expected verity-root-hash {}, got verity-root-hash {} (event 4)",
            Hex(&other_ref.events[3].digest),
            Hex(&ours.events[3].digest)
        )),
        "{text}"
    );
    assert!(
        text.contains("also: PCR 9 differs: expected service-table"),
        "{text}"
    );
    assert!(
        text.contains("the report claims (unverified) the device runs demo 1.2.3"),
        "{text}"
    );
    let _ = &f.other_signed;
}

#[test]
fn tampered_service_table_reference_fails() {
    let f = fixture();
    let out = f.check(&f.good(), &f.tampered);
    let want = f.tampered.reference.as_ref().unwrap().events[5].digest;
    let got = f.manifest.reference.as_ref().unwrap().events[5].digest;
    fails_with(
        &out,
        &format!(
            "PCR 9 differs: expected service-table {}, got service-table {} (event 6)",
            Hex(&want),
            Hex(&got)
        ),
    );
}

#[test]
fn stale_nonce_is_rejected() {
    let f = fixture();
    let mut fresh = f.nonce.clone();
    fresh[0] ^= 0xff;
    let out = verify(
        &f.good(),
        &f.manifest,
        &Options {
            nonce: &fresh,
            pinned_ak: Some(&f.ak),
            log_only: false,
        },
    );
    fails_with(&out, "stale or wrong nonce: the quote's extraData is");
    // The echo in the report is checked too.
    let mut r = f.good();
    r.nonce[1] ^= 1;
    fails_with(
        &f.check(&r, &f.manifest),
        "stale or wrong nonce: the report echoes",
    );
    // Too short a nonce is refused outright.
    let out = verify(
        &f.good(),
        &f.manifest,
        &Options {
            nonce: &f.nonce[..4],
            pinned_ak: Some(&f.ak),
            log_only: false,
        },
    );
    fails_with(&out, "nonce is 4 bytes");
}

#[test]
fn other_pcr_selections_are_rejected() {
    let f = fixture();
    let out = f.check(&f.report(&f.quote_8_9_10, &f.ak), &f.manifest);
    fails_with(
        &out,
        "PCR selection sha256:8,9,10 differs from the pinned selection sha256:8,9,11",
    );
    let out = f.check(&f.report(&f.quote_split, &f.ak), &f.manifest);
    fails_with(
        &out,
        "PCR selection sha256:11 + sha256:8,9 differs from the pinned selection sha256:8,9,11",
    );
    // The report's values in another order.
    let mut r = f.good();
    r.pcrs.swap(0, 1);
    fails_with(
        &f.check(&r, &f.manifest),
        "the report's PCR values are for PCRs [9, 8, 11], not [8, 9, 11]",
    );
    // Values that are not the quoted ones.
    let mut r = f.good();
    r.pcrs[2].1[0] ^= 1;
    fails_with(
        &f.check(&r, &f.manifest),
        "PCR values do not match the quoted digest",
    );
}

#[test]
fn edited_event_log_is_rejected() {
    let f = fixture();
    let events = eventlog::parse(&f.log).unwrap();
    // Digest changed (and data with it, consistently): the replay breaks.
    let mut r = f.good();
    let mut log = EventLog::new();
    for e in &events {
        if e.number == 4 {
            log.append_azl(Kind::RootHash, &[0x11; 32]);
        } else {
            log.append(e.pcr as u8, e.event_type, &e.sha256, &e.data);
        }
    }
    r.event_log = log.to_bytes();
    fails_with(
        &f.check(&r, &f.manifest),
        "event log does not replay to the quoted PCR 9",
    );
    // Digest bytes edited in place: no longer the data's digest.
    let mut r = f.good();
    let at = events[3].offset + 4 + 4 + 4 + 2;
    r.event_log[at] ^= 0x40;
    fails_with(
        &f.check(&r, &f.manifest),
        "event 4: data does not match its digest",
    );
    // Data edited in place.
    let mut r = f.good();
    let last = r.event_log.len() - 1;
    r.event_log[last - 40] ^= 1;
    let out = f.check(&r, &f.manifest);
    fails_with(&out, "data does not match its digest");
    // An event dropped.
    let mut r = f.good();
    let mut log = EventLog::new();
    for e in events.iter().filter(|e| e.number != 6) {
        log.append(e.pcr as u8, e.event_type, &e.sha256, &e.data);
    }
    r.event_log = log.to_bytes();
    fails_with(
        &f.check(&r, &f.manifest),
        "event log does not replay to the quoted PCR 9",
    );
    // Truncated log.
    let mut r = f.good();
    r.event_log.truncate(r.event_log.len() - 3);
    fails_with(&f.check(&r, &f.manifest), "event log: at byte");
}

#[test]
fn rewritten_event_type_is_rejected() {
    let f = fixture();
    let events = eventlog::parse(&f.log).unwrap();
    for new_type in [measure::EV_NO_ACTION, 0x8000_0001, 0x0000_0005] {
        let mut r = f.good();
        let at = events[1].offset + 4;
        r.event_log[at..at + 4].copy_from_slice(&new_type.to_le_bytes());
        fails_with(
            &f.check(&r, &f.manifest),
            &format!("event 2: type rewritten/unknown (0x{new_type:08x} on PCR 8, expected EV_AZL 0x0000000d"),
        );
    }
    // A firmware event on a quoted PCR is refused the same way; one after
    // ours on another PCR is refused for its position.
    let mut log = EventLog::from_bytes(&f.log).unwrap();
    log.append(4, 0x8000_0003, &[1; 32], b"late");
    let mut r = f.good();
    r.event_log = log.to_bytes();
    fails_with(
        &f.check(&r, &f.manifest),
        "event 8 (PCR 4) follows the azl-edge events",
    );
    // Unknown azl tag with a correct digest.
    let mut log = EventLog::new();
    for e in &events {
        if e.number == 1 {
            let data = b"azl-edge:phase:bogus\0".to_vec();
            log.append(11, EV_AZL, &eventlog::sha256(&data), &data);
        } else {
            log.append(e.pcr as u8, e.event_type, &e.sha256, &e.data);
        }
    }
    let mut r = f.good();
    r.event_log = log.to_bytes();
    fails_with(
        &f.check(&r, &f.manifest),
        "event 1: data is not an azl-edge event",
    );
}

#[test]
fn firmware_events_before_ours_are_accepted() {
    let f = fixture();
    // A firmware log (SHA-1 + SHA-256 banks) on PCRs 0-7, merged first.
    let fw = firmware_log(&[(0, 0x8000_0008, b"fw!"), (7, 0x8000_0001, b"fw!")]);
    assert_eq!(eventlog::parse(&fw).unwrap().len(), 2);
    let mut r = f.good();
    r.event_log = eventlog::merge(&fw, &f.log).unwrap();
    let out = f.check(&r, &f.manifest);
    assert!(out.attested(), "{out}");
    assert!(
        out.to_string().contains("ok  event log: 2 firmware events"),
        "{out}"
    );
}

#[test]
fn quote_signed_by_another_ak_is_rejected() {
    let f = fixture();
    // The report names the pinned AK but the quote was signed by another.
    let out = f.check(&f.report(&f.quote_ak2, &f.ak), &f.manifest);
    fails_with(&out, "quote signature invalid for the pinned AK");
    // The report names the other AK: not the pinned one.
    let out = f.check(&f.report(&f.quote_ak2, &f.ak2), &f.manifest);
    fails_with(&out, "AK is not the pinned AK");
    // No AK pinned at all: refused, there is no accept-any mode.
    let out = verify(
        &f.good(),
        &f.manifest,
        &Options {
            nonce: &f.nonce,
            pinned_ak: None,
            log_only: false,
        },
    );
    fails_with(&out, "AK not pinned");
}

#[test]
fn tpm2_sign_output_is_not_a_quote() {
    let f = fixture();
    // Valid signature by the pinned AK, but not TPM-generated.
    let out = f.check(&f.report(&f.sign_forgery, &f.ak), &f.manifest);
    fails_with(
        &out,
        "not generated by a TPM: TPM2_Sign output passed off as a quote (magic 0x00544347",
    );
    // An unrestricted key can sign TPM_GENERATED bytes: refused by its
    // attributes, even when pinned.
    let r = f.report(&f.unrestricted_forgery, &f.unrestricted);
    let out = verify(
        &r,
        &f.manifest,
        &Options {
            nonce: &f.nonce,
            pinned_ak: Some(&f.unrestricted),
            log_only: false,
        },
    );
    fails_with(
        &out,
        "AK is not a restricted signing key bound to its TPM (attributes 0x00040072, missing restricted)",
    );
}

#[test]
fn software_only_needs_log_only_and_is_never_attested() {
    let f = fixture();
    let r = Report {
        tier: Tier::SoftwareOnly,
        nonce: f.nonce.clone(),
        ak_public: Vec::new(),
        quote: Vec::new(),
        signature: Vec::new(),
        pcrs: Vec::new(),
        event_log: f.log.clone(),
        manifest: f.signed.to_bytes().unwrap(),
    };
    let out = f.check(&r, &f.manifest);
    fails_with(&out, "report is software-only: no TPM vouches for it");
    let log_only = |r: &Report, m: &Manifest| {
        verify(
            r,
            m,
            &Options {
                nonce: &[],
                pinned_ak: None,
                log_only: true,
            },
        )
    };
    let out = log_only(&r, &f.manifest);
    let text = out.to_string();
    assert!(matches!(out.verdict, Verdict::LogMatches(_)), "{text}");
    assert_eq!(out.exit_code(), 3);
    assert!(
        text.contains("NOT ATTESTED: the event log matches the signed reference of demo 1.2.3"),
        "{text}"
    );
    assert!(!text.contains("\nATTESTED"), "{text}");
    // --log-only still checks the log against the reference.
    fails_with(&log_only(&r, &f.other), "PCR 8 differs: expected manifest");
    let mut bad = r.clone();
    let last = eventlog::parse(&bad.event_log).unwrap()[6].offset;
    bad.event_log[last + 14] ^= 1;
    fails_with(
        &log_only(&bad, &f.manifest),
        "data does not match its digest",
    );
    // A TPM report with --log-only is not attested either.
    let out = log_only(&f.good(), &f.manifest);
    assert!(matches!(out.verdict, Verdict::LogMatches(_)), "{out}");
}

#[test]
fn hostile_reports_never_panic_and_never_pass() {
    let f = fixture();
    let good = f.good();
    // Every single-byte flip of a security-relevant field fails.
    type Field = fn(&mut Report) -> &mut Vec<u8>;
    let fields: [(&str, Field); 5] = [
        ("quote", |r| &mut r.quote),
        ("signature", |r| &mut r.signature),
        ("ak_public", |r| &mut r.ak_public),
        ("event_log", |r| &mut r.event_log),
        ("nonce", |r| &mut r.nonce),
    ];
    for (name, field) in fields {
        let len = field(&mut good.clone()).len();
        for i in 0..len {
            // The Spec ID header's platformClass/version bytes carry no
            // security meaning and are not checked.
            if name == "event_log" && (48..56).contains(&i) {
                continue;
            }
            for x in [0x01u8, 0x80] {
                let mut r = good.clone();
                field(&mut r)[i] ^= x;
                let out = f.check(&r, &f.manifest);
                assert!(!out.attested(), "{name} byte {i} ^ {x:#x} still attested");
            }
        }
        // Truncation at every length.
        for cut in 0..len {
            let mut r = good.clone();
            field(&mut r).truncate(cut);
            assert!(!f.check(&r, &f.manifest).attested(), "{name} cut at {cut}");
        }
    }
    for i in 0..good.pcrs.len() {
        for b in 0..32 {
            let mut r = good.clone();
            r.pcrs[i].1[b] ^= 1;
            assert!(!f.check(&r, &f.manifest).attested());
        }
    }
    // The whole envelope: truncated and flipped bytes decode or not, but
    // never panic and never attest unless the flip hit the informational
    // manifest copy or the unchecked header bytes.
    let bytes = good.to_bytes().unwrap();
    for cut in 0..bytes.len() {
        if let Ok(r) = Report::from_bytes(&bytes[..cut]) {
            let _ = f.check(&r, &f.manifest);
        }
    }
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x80;
        if let Ok(r) = Report::from_bytes(&b) {
            let out = f.check(&r, &f.manifest);
            if out.attested() {
                assert_eq!(
                    (&r.quote, &r.signature, &r.ak_public, &r.pcrs, &r.nonce),
                    (
                        &good.quote,
                        &good.signature,
                        &good.ak_public,
                        &good.pcrs,
                        &good.nonce
                    )
                );
            }
        }
    }
}

/// Through the files, as `imagegen attest verify` reads them.
#[test]
fn files_and_manifest_signature() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    std::fs::write(p("report.bin"), f.good().to_bytes().unwrap()).unwrap();
    std::fs::write(p("manifest.bin"), f.signed.to_bytes().unwrap()).unwrap();
    std::fs::write(p("manifest.pub"), f.public).unwrap();
    std::fs::write(p("ak.pub"), &f.ak).unwrap();
    let hex: String = f.nonce.iter().map(|b| format!("{b:02x}")).collect();
    let args = VerifyArgs {
        report: p("report.bin"),
        manifest: dir.path().to_path_buf(),
        nonce: Some(hex.clone()),
        ak: Some(p("ak.pub")),
        ..Default::default()
    };
    let out = Inputs::load(&args).unwrap().check();
    assert!(out.attested(), "{out}");
    assert!(
        out.to_string().starts_with("ok  reference manifest "),
        "{out}"
    );
    // The manifest.bin file itself, key found next to it.
    let out = Inputs::load(&VerifyArgs {
        manifest: p("manifest.bin"),
        ..args.clone()
    })
    .unwrap()
    .check();
    assert!(out.attested(), "{out}");
    // A manifest signed by another key fails on its signature.
    std::fs::write(p("other.pub"), test_key().public_key()).unwrap();
    let out = Inputs::load(&VerifyArgs {
        key: Some(p("other.pub")),
        ..args.clone()
    })
    .unwrap()
    .check();
    fails_with(&out, "signature: key id mismatch");
    // An altered manifest fails on its signature.
    let mut sm = f.signed.clone();
    let n = sm.manifest.len();
    sm.manifest[n - 40] ^= 1;
    std::fs::write(p("manifest.bin"), sm.to_bytes().unwrap()).unwrap();
    let out = Inputs::load(&args).unwrap().check();
    fails_with(&out, "signature: bad signature");
    // An unsigned manifest is no reference.
    std::fs::write(
        p("manifest.bin"),
        sign::sign(&f.manifest, None).unwrap().to_bytes().unwrap(),
    )
    .unwrap();
    fails_with(
        &Inputs::load(&args).unwrap().check(),
        "signature: manifest is unsigned",
    );
    // --nonce is required without --log-only; bad hex is an input error.
    assert!(Inputs::load(&VerifyArgs {
        nonce: None,
        ..args.clone()
    })
    .is_err());
    assert!(Inputs::load(&VerifyArgs {
        nonce: Some("xyz".into()),
        ..args.clone()
    })
    .is_err());
    let _ = &f.other_signed;
}

/// `Inputs::load` on another thread; fails if it takes 5 s (a FIFO used
/// to block it forever).
fn load_within_5s(args: VerifyArgs) -> Result<(), String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(Inputs::load(&args).map(drop));
    });
    rx.recv_timeout(std::time::Duration::from_secs(5))
        .expect("Inputs::load blocked for 5 s")
}

/// Regression: the report, AK, manifest and key files were read with
/// `fs::read` (no file-type check, no cap): a FIFO hung the verifier,
/// `/dev/zero` grew it until abort. Each is now refused within moments,
/// the message naming the path and the reason.
#[test]
fn fifo_dev_zero_and_oversized_inputs_are_refused() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    std::fs::write(p("report.bin"), f.good().to_bytes().unwrap()).unwrap();
    std::fs::write(p("manifest.bin"), f.signed.to_bytes().unwrap()).unwrap();
    std::fs::write(p("manifest.pub"), f.public).unwrap();
    std::fs::write(p("ak.pub"), &f.ak).unwrap();
    assert!(Command::new("mkfifo")
        .arg(p("fifo"))
        .status()
        .unwrap()
        .success());
    let big = |n: &str, len: u64| {
        let file = std::fs::File::create(p(n)).unwrap();
        file.set_len(len).unwrap();
        p(n)
    };
    let hex: String = f.nonce.iter().map(|b| format!("{b:02x}")).collect();
    let good = VerifyArgs {
        report: p("report.bin"),
        manifest: p("manifest.bin"),
        nonce: Some(hex),
        ak: Some(p("ak.pub")),
        ..Default::default()
    };
    load_within_5s(good.clone()).unwrap();
    let zero = std::path::PathBuf::from("/dev/zero");
    let fifo = p("fifo");
    let cases: Vec<(&str, VerifyArgs, std::path::PathBuf, &str)> = vec![
        (
            "report FIFO",
            VerifyArgs {
                report: fifo.clone(),
                ..good.clone()
            },
            fifo.clone(),
            "is a FIFO, not a regular file",
        ),
        (
            "report /dev/zero",
            VerifyArgs {
                report: zero.clone(),
                ..good.clone()
            },
            zero.clone(),
            "is a character device, not a regular file",
        ),
        (
            "report over 16 MiB",
            VerifyArgs {
                report: big("big.report", azl_attest::input::REPORT_MAX + 1),
                ..good.clone()
            },
            p("big.report"),
            "larger than the 16777216 bytes allowed",
        ),
        (
            "AK FIFO",
            VerifyArgs {
                ak: Some(fifo.clone()),
                ..good.clone()
            },
            fifo.clone(),
            "is a FIFO, not a regular file",
        ),
        (
            "AK /dev/zero",
            VerifyArgs {
                ak: Some(zero.clone()),
                ..good.clone()
            },
            zero.clone(),
            "is a character device, not a regular file",
        ),
        (
            "AK over 4 KiB",
            VerifyArgs {
                ak: Some(big("big.ak", azl_attest::input::AK_MAX + 1)),
                ..good.clone()
            },
            p("big.ak"),
            "larger than the 4096 bytes allowed",
        ),
        (
            "key FIFO",
            VerifyArgs {
                key: Some(fifo.clone()),
                ..good.clone()
            },
            fifo.clone(),
            "is a FIFO, not a regular file",
        ),
        (
            "key /dev/zero",
            VerifyArgs {
                key: Some(zero.clone()),
                ..good.clone()
            },
            zero.clone(),
            "is a character device, not a regular file",
        ),
        (
            "manifest FIFO",
            VerifyArgs {
                manifest: fifo.clone(),
                ..good.clone()
            },
            fifo.clone(),
            "is a FIFO",
        ),
        (
            "manifest /dev/zero",
            VerifyArgs {
                manifest: zero.clone(),
                ..good.clone()
            },
            zero.clone(),
            "is a character device",
        ),
    ];
    for (what, args, path, want) in cases {
        let t = std::time::Instant::now();
        let err = load_within_5s(args).expect_err(what);
        assert!(
            err.contains(&path.display().to_string()) && err.contains(want),
            "{what}: {err}"
        );
        assert!(t.elapsed() < std::time::Duration::from_secs(2), "{what}");
    }
    // An oversized manifest.bin (beyond the 64 KiB manifest region).
    let mut huge = f.signed.to_bytes().unwrap();
    huge.resize(azl_attest::input::MANIFEST_MAX as usize + 1, 0);
    std::fs::write(p("manifest.bin"), huge).unwrap();
    let err = load_within_5s(good).unwrap_err();
    assert!(
        err.contains("manifest.bin") && err.contains("larger than the 65536 bytes allowed"),
        "{err}"
    );
}

/// The nonce is read by the contract's rule (`nonce::parse_hex`, as
/// initctl reads it): an optional `0x`, 8..=64 bytes; every refusal says why.
#[test]
fn nonce_follows_the_formats_rule() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    std::fs::write(p("report.bin"), f.good().to_bytes().unwrap()).unwrap();
    std::fs::write(p("manifest.bin"), f.signed.to_bytes().unwrap()).unwrap();
    std::fs::write(p("manifest.pub"), f.public).unwrap();
    std::fs::write(p("ak.pub"), &f.ak).unwrap();
    let hex: String = f.nonce.iter().map(|b| format!("{b:02X}")).collect();
    let args = |nonce: &str| VerifyArgs {
        report: p("report.bin"),
        manifest: p("manifest.bin"),
        nonce: Some(nonce.into()),
        ak: Some(p("ak.pub")),
        ..Default::default()
    };
    let out = Inputs::load(&args(&format!(" 0x{hex}\n"))).unwrap().check();
    assert!(out.attested(), "{out}");
    for (nonce, want) in [
        ("00112233445566", "nonce is 7 bytes; use at least 8"),
        ("0x", "nonce is empty"),
        ("001122334455667", "odd number of hex digits (15)"),
        ("00112233445566zz", "'z' at offset 14 is not a hex digit"),
    ] {
        let err = Inputs::load(&args(nonce)).err().unwrap();
        assert!(
            err.starts_with("--nonce ") && err.contains(want),
            "{nonce}: {err}"
        );
    }
    let long = "ab".repeat(65);
    let err = Inputs::load(&args(&long)).err().unwrap();
    assert!(err.contains("nonce is 65 bytes; at most 64"), "{err}");
}

/// Our log, alone and merged after a multi-bank firmware log, as the
/// reference tool `tpm2_eventlog` reads it: same events, digests and PCRs.
#[test]
fn tpm2_eventlog_reads_our_log() {
    // tpm2_eventlog comes with tpm2-tools (scripts/setup.sh); missing, the
    // Command::output below fails the test.
    let m = sample_manifest();
    let log = log_for(&m, SERVICE_TABLE);
    // A firmware log with SHA-1 + SHA-256 banks and a StartupLocality event.
    let fw = firmware_log(&[
        (0, measure::EV_NO_ACTION, b"StartupLocality\0\x03"),
        (0, 0x0000_0008, b"\x01\x02\x03\x04"), // EV_S_CRTM_VERSION
        (7, 0x0000_0004, b"\0\0\0\0"),         // EV_SEPARATOR
    ]);
    let merged = eventlog::merge(&fw, log.as_bytes()).unwrap();

    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [("ours.bin", log.to_bytes()), ("merged.bin", merged)] {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let out = Command::new("tpm2_eventlog").arg(&path).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let events = eventlog::parse(&bytes).unwrap();
        // Same event numbering, PCR indices and SHA-256 digests.
        let nums: Vec<u32> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("- EventNum: "))
            .map(|n| n.parse().unwrap())
            .collect();
        let want: Vec<u32> = std::iter::once(0)
            .chain(events.iter().map(|e| e.number))
            .collect();
        assert_eq!(nums, want, "{name}:\n{text}");
        for e in &events {
            let d = Hex(&e.sha256).to_string();
            if e.event_type != measure::EV_NO_ACTION {
                assert!(
                    text.contains(&format!("Digest: \"{d}\"")),
                    "{name}: event {} {d}:\n{text}",
                    e.number
                );
            }
        }
        let azl = events.iter().filter(|e| e.event_type == EV_AZL).count();
        assert_eq!(text.matches("EventType: EV_IPL").count(), azl, "{name}");
        // tpm2_eventlog's replay agrees with ours. Not on PCRs with an
        // EV_NO_ACTION event: tpm2-tools 5.4 (Debian 12) extends those too,
        // against the PFP spec (tpm2-tools issue #3224, fixed by PR #3230;
        // StartupLocality by PR #3242); our replay follows the spec.
        for (pcr, value) in eventlog::replay(&events, &[0, 7, 8, 9, 11]) {
            let on_pcr = |e: &&eventlog::Event| e.pcr == u32::from(pcr);
            if !events.iter().any(|e| on_pcr(&e))
                || events
                    .iter()
                    .filter(on_pcr)
                    .any(|e| e.event_type == measure::EV_NO_ACTION)
            {
                continue;
            }
            let line = format!("{pcr:<3}: 0x{}", Hex(&value));
            assert!(text.contains(&line), "{name}: PCR {pcr} {line:?}:\n{text}");
        }
    }
}

/// `--approve KEY -o FILE`: an ATTESTED report gets an approval the
/// device's rule accepts (its manifest, its AK, the verified nonce); any
/// failed verification writes nothing, and an existing file is left alone.
#[test]
fn approve_only_after_attested() {
    use super::cli::{verify_cmd, EXIT_ATTESTED, EXIT_FAILED};
    use azl_formats::approval::{self, Answer, ApprovalError, Expect};
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    std::fs::write(p("report.bin"), f.good().to_bytes().unwrap()).unwrap();
    std::fs::write(p("manifest.bin"), f.signed.to_bytes().unwrap()).unwrap();
    std::fs::write(p("manifest.pub"), f.public).unwrap();
    std::fs::write(p("ak.pub"), &f.ak).unwrap();
    let verifier = sign::generate_key_files(&p("verifier.key"), false).unwrap();
    let hex: String = f.nonce.iter().map(|b| format!("{b:02x}")).collect();
    let args = VerifyArgs {
        report: p("report.bin"),
        manifest: p("manifest.bin"),
        nonce: Some(hex),
        ak: Some(p("ak.pub")),
        approve: Some((p("verifier.key"), p("approval.bin"))),
        ..Default::default()
    };
    assert_eq!(verify_cmd(&args), EXIT_ATTESTED);
    let bytes = std::fs::read(p("approval.bin")).unwrap();
    let answered = [Answer {
        nonce: f.nonce.clone(),
        ak_sha256: eventlog::sha256(&f.ak),
    }];
    let manifest_sha256 = eventlog::sha256(&f.signed.to_bytes().unwrap());
    let expect = Expect {
        verifier_key: &verifier.public_key,
        manifest_sha256: &manifest_sha256,
        answered: &answered,
    };
    let body = approval::check(&bytes, &expect).unwrap();
    assert_eq!(body.nonce, f.nonce);
    // Another trial's manifest refuses it.
    let other_sha = eventlog::sha256(&f.other_signed.to_bytes().unwrap());
    assert!(matches!(
        approval::check(
            &bytes,
            &Expect {
                manifest_sha256: &other_sha,
                ..expect
            }
        ),
        Err(ApprovalError::Manifest { .. })
    ));
    // Fail-closed: a wrong nonce (verification fails) writes nothing.
    let wrong = VerifyArgs {
        nonce: Some("00".repeat(16)),
        approve: Some((p("verifier.key"), p("refused.bin"))),
        ..args.clone()
    };
    assert_eq!(verify_cmd(&wrong), EXIT_FAILED);
    assert!(!p("refused.bin").exists());
    // Against another manifest: nothing written either.
    std::fs::write(p("other.bin"), f.other_signed.to_bytes().unwrap()).unwrap();
    let other = VerifyArgs {
        manifest: p("other.bin"),
        approve: Some((p("verifier.key"), p("refused.bin"))),
        ..args.clone()
    };
    assert_ne!(verify_cmd(&other), EXIT_ATTESTED);
    assert!(!p("refused.bin").exists());
    // An unusable approval key is an input error before any verdict.
    let badkey = VerifyArgs {
        approve: Some((p("verifier.key.pub"), p("refused.bin"))),
        ..args.clone()
    };
    assert_eq!(verify_cmd(&badkey), super::cli::EXIT_ERROR);
    assert!(!p("refused.bin").exists());
}
