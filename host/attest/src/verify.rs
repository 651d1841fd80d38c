//! The fail-closed verifier: every check of `imagegen attest verify`, in
//! order, stopping at the first failure. See `docs/attestation.md` for the
//! attack each check stops.
use super::tpm::{self, EccPublic, EcdsaSignature, PcrSelection, Quote, TpmError, TPM_ALG_SHA256};
use azl_formats::ak;
use azl_formats::attest::{Report, Tier};
use azl_formats::efistub;
use azl_formats::envelope::Enveloped;
use azl_formats::eventlog::{self, Event};
use azl_formats::logcheck::{self, event_tag, EventFault, LogFault};
use azl_formats::manifest::{Digest, Hex, Manifest, RefEvent, SignedManifest};
use azl_formats::measure::{EV_AZL, QUOTED_PCRS};
use azl_formats::nonce;
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};
use std::fmt;

/// Most reference divergences listed after the first (as `also:` lines);
/// the rest are counted in one line, so a hostile log of a million events
/// gives a short answer, not one line per event.
pub const MAX_LISTED_DIVERGENCES: usize = 16;

/// What the verifier is told besides the report and the manifest.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// The nonce this verifier sent the device (ignored with `log_only`).
    pub nonce: &'a [u8],
    /// TPM2B_PUBLIC of the AK enrolled for the device. `None` fails.
    pub pinned_ak: Option<&'a [u8]>,
    /// Check only the event log against the reference (no TPM checks);
    /// the result is never "attested".
    pub log_only: bool,
}

/// One line of the verifier's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A check that passed.
    Ok(String),
    /// Something the reader must know that is not a pass.
    Note(String),
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Line::Ok(s) => write!(f, "ok  {s}"),
            Line::Note(s) => write!(f, "--  {s}"),
        }
    }
}

/// The first failing check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reason: String,
    /// More context (further divergences, what the device claims to run).
    pub details: Vec<String>,
}

impl Failure {
    fn new(reason: impl Into<String>) -> Failure {
        Failure {
            reason: reason.into(),
            details: Vec::new(),
        }
    }
}

/// What was attested (or merely checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub image: String,
    pub version: String,
    pub board: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every check passed: a TPM vouches that this image booted.
    Attested(Identity),
    /// `--log-only`: the event log matches the reference, but nothing
    /// vouches for the log. NOT attested.
    LogMatches(Identity),
    Failed(Failure),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub lines: Vec<Line>,
    pub verdict: Verdict,
}

impl Outcome {
    pub fn attested(&self) -> bool {
        matches!(self.verdict, Verdict::Attested(_))
    }

    /// The failure, if a check failed.
    pub fn failure(&self) -> Option<&Failure> {
        match &self.verdict {
            Verdict::Failed(f) => Some(f),
            _ => None,
        }
    }

    /// Exit code of `imagegen attest verify`: 0 attested, 1 a check
    /// failed, 3 `--log-only` found the log consistent (not attested).
    pub fn exit_code(&self) -> u8 {
        match self.verdict {
            Verdict::Attested(_) => 0,
            Verdict::Failed(_) => 1,
            Verdict::LogMatches(_) => 3,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for l in &self.lines {
            writeln!(f, "{l}")?;
        }
        match &self.verdict {
            Verdict::Attested(i) => writeln!(
                f,
                "ATTESTED: {} {} on board {}",
                i.image, i.version, i.board
            ),
            Verdict::LogMatches(i) => writeln!(
                f,
                "NOT ATTESTED: the event log matches the signed reference of {} {} on board {}, \
                 but no TPM quote vouches for it (--log-only)",
                i.image, i.version, i.board
            ),
            Verdict::Failed(fail) => {
                writeln!(f, "FAIL {}", fail.reason)?;
                for d in &fail.details {
                    writeln!(f, "     {d}")?;
                }
                writeln!(f, "NOT ATTESTED: {}", fail.reason)
            }
        }
    }
}

/// Short fingerprint of bytes for messages: the first 8 bytes of sha256.
fn fingerprint(bytes: &[u8]) -> String {
    let d = eventlog::sha256(bytes);
    Hex(&d[..8]).to_string()
}

fn pcr_list(pcrs: impl IntoIterator<Item = u8>) -> String {
    pcrs.into_iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

struct Run {
    lines: Vec<Line>,
}

impl Run {
    fn ok(&mut self, s: impl Into<String>) {
        self.lines.push(Line::Ok(s.into()));
    }

    fn note(&mut self, s: impl Into<String>) {
        self.lines.push(Line::Note(s.into()));
    }
}

/// Run every check on `report` against `manifest` (whose signature the
/// caller has verified), in order; stops at the first failure.
pub fn verify(report: &Report, manifest: &Manifest, opts: &Options<'_>) -> Outcome {
    let mut run = Run { lines: Vec::new() };
    let verdict = match checks(&mut run, report, manifest, opts) {
        Ok(v) => v,
        Err(mut fail) => {
            if let Some(hint) = claimed_image(report, manifest) {
                fail.details.push(hint);
            }
            Verdict::Failed(fail)
        }
    };
    Outcome {
        lines: run.lines,
        verdict,
    }
}

/// When the device's (unverified) manifest names another image than the
/// reference, say so: it explains most reference mismatches.
fn claimed_image(report: &Report, manifest: &Manifest) -> Option<String> {
    if report.manifest.is_empty() {
        return None;
    }
    let m = SignedManifest::from_bytes(&report.manifest)
        .ok()?
        .manifest()
        .ok()?;
    let same = (
        m.image_name.as_str(),
        m.image_version.as_str(),
        m.board.as_str(),
    ) == (
        manifest.image_name.as_str(),
        manifest.image_version.as_str(),
        manifest.board.as_str(),
    );
    (!same).then(|| {
        format!(
            "note: the report claims (unverified) the device runs {} {} on board {}",
            m.image_name, m.image_version, m.board
        )
    })
}

fn checks(
    run: &mut Run,
    report: &Report,
    manifest: &Manifest,
    opts: &Options<'_>,
) -> Result<Verdict, Failure> {
    let identity = Identity {
        image: manifest.image_name.clone(),
        version: manifest.image_version.clone(),
        board: manifest.board.clone(),
    };
    // 1. Trust tier.
    match (report.tier, opts.log_only) {
        (Tier::SoftwareOnly, false) => {
            return Err(Failure::new(
                "report is software-only: no TPM vouches for it \
                 (--log-only checks its event log against the reference, without attesting)",
            ))
        }
        (Tier::SoftwareOnly, true) => run.note(
            "report is software-only: checking the event log only; the result is NOT attested",
        ),
        (Tier::Tpm, true) => {
            run.note("--log-only: the TPM quote is not checked; the result is NOT attested")
        }
        (Tier::Tpm, false) => run.ok("tier: TPM (the report carries a quote)"),
    }

    let log = if opts.log_only {
        check_log(run, report, false)?
    } else {
        // 2. The AK is the one enrolled for this device.
        let pinned = opts.pinned_ak.ok_or_else(|| {
            Failure::new(
                "AK not pinned: pass --ak with the AK enrolled for this device \
                 (imagegen attest enroll); any key can sign a quote, so an unpinned one proves nothing",
            )
        })?;
        if report.ak_public != pinned {
            return Err(Failure::new(format!(
                "AK is not the pinned AK (report's AK {}, pinned {})",
                fingerprint(&report.ak_public),
                fingerprint(pinned)
            )));
        }
        run.ok(format!(
            "AK matches the pinned AK (sha256 {}…)",
            fingerprint(pinned)
        ));
        // 3. The quote: made by a TPM, a quote, for our nonce, over our PCRs.
        let quote = check_quote(run, report, opts.nonce)?;
        // 4. Signed by the AK, which is a restricted signing key in a TPM.
        check_signature(run, report, &quote)?;
        // 5. The log is intact and replays to the quoted PCRs.
        check_log(run, report, true)?
    };
    // 6. The log is what the signed reference predicts.
    check_reference(run, manifest, &log)?;
    Ok(if opts.log_only {
        Verdict::LogMatches(identity)
    } else {
        Verdict::Attested(identity)
    })
}

fn check_quote<'a>(run: &mut Run, report: &'a Report, nonce: &[u8]) -> Result<Quote<'a>, Failure> {
    let quote = Quote::parse_tpm2b(&report.quote).map_err(|e| match e {
        TpmError::NotGenerated(magic) => Failure::new(format!(
            "not generated by a TPM: TPM2_Sign output passed off as a quote \
             (magic 0x{magic:08x}, expected TPM_GENERATED_VALUE 0xff544347)"
        )),
        TpmError::NotQuote(ty) => Failure::new(format!(
            "attestation is not a quote: type 0x{ty:04x}, expected TPM_ST_ATTEST_QUOTE 0x8018"
        )),
        other => Failure::new(format!("quote: malformed TPM2B_ATTEST: {other}")),
    })?;
    run.ok("quote generated by a TPM (magic TPM_GENERATED_VALUE, type TPM_ST_ATTEST_QUOTE)");

    if nonce.len() < nonce::MIN_LEN {
        return Err(Failure::new(format!(
            "nonce is {} bytes; use at least {} fresh random bytes",
            nonce.len(),
            nonce::MIN_LEN
        )));
    }
    if quote.extra_data != nonce {
        return Err(Failure::new(format!(
            "stale or wrong nonce: the quote's extraData is {}, expected {}",
            Hex(quote.extra_data),
            Hex(nonce)
        )));
    }
    if report.nonce != nonce {
        return Err(Failure::new(format!(
            "stale or wrong nonce: the report echoes {}, expected {}",
            Hex(&report.nonce),
            Hex(nonce)
        )));
    }
    run.ok("nonce matches");

    let pinned = [PcrSelection {
        hash: TPM_ALG_SHA256,
        pcrs: QUOTED_PCRS.iter().map(|&p| u32::from(p)).collect(),
    }];
    if quote.pcr_select != pinned {
        return Err(Failure::new(format!(
            "PCR selection {} differs from the pinned selection {}",
            tpm::selection_string(&quote.pcr_select),
            tpm::selection_string(&pinned)
        )));
    }
    run.ok(format!(
        "PCR selection is {}",
        tpm::selection_string(&pinned)
    ));

    let indices: Vec<u8> = report.pcrs.iter().map(|(i, _)| *i).collect();
    if indices != QUOTED_PCRS {
        return Err(Failure::new(format!(
            "the report's PCR values are for PCRs [{}], not [{}] in selection order",
            pcr_list(indices),
            pcr_list(QUOTED_PCRS)
        )));
    }
    let concat: Vec<u8> = report.pcrs.iter().flat_map(|(_, v)| *v).collect();
    let digest = eventlog::sha256(&concat);
    if quote.pcr_digest != digest {
        return Err(Failure::new(format!(
            "PCR values do not match the quoted digest (quote {}, sha256 of the report's values {})",
            Hex(quote.pcr_digest),
            Hex(&digest)
        )));
    }
    run.ok("PCR values match the quoted digest");
    Ok(quote)
}

fn check_signature(run: &mut Run, report: &Report, quote: &Quote<'_>) -> Result<(), Failure> {
    let ak = EccPublic::parse_tpm2b(&report.ak_public)
        .map_err(|e| Failure::new(format!("AK public (TPM2B_PUBLIC): {e}")))?;
    ak::check(&ak.params()).map_err(|e| Failure::new(e.to_string()))?;
    run.ok("AK is an ECC P-256 restricted signing key (fixedTPM, restricted, sign)");
    let sig = EcdsaSignature::parse(&report.signature)
        .map_err(|e| Failure::new(format!("quote signature (TPMT_SIGNATURE): {e}")))?;
    if sig.hash != TPM_ALG_SHA256 {
        return Err(Failure::new(format!(
            "quote signature uses {}, not sha256",
            tpm::hash_name(sig.hash)
        )));
    }
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, ak.sec1().as_slice())
        .verify(quote.attest, &sig.fixed)
        .map_err(|_| Failure::new("quote signature invalid for the pinned AK"))?;
    run.ok("quote signature valid (ECDSA P-256/SHA-256 by the pinned AK)");
    Ok(())
}

/// A checked log: its events, the positions of the measured ones (the
/// events on PCRs 8, 9, 11: PID 1's and the EFI stub's; firmware events on
/// other PCRs only come before PID 1's) and the replay.
struct CheckedLog {
    events: Vec<Event>,
    replayed: Vec<(u8, Digest)>,
}

impl CheckedLog {
    /// The measured events (the split [`check_log`] checked; were it to
    /// fail now, the empty list would still fail the reference).
    fn measured(&self) -> Vec<&Event> {
        logcheck::measured_events(&self.events)
            .map(|m| m.events)
            .unwrap_or_default()
    }
}

fn event_failure(e: &Event, fault: &EventFault) -> Failure {
    let n = e.number;
    Failure::new(match fault {
        EventFault::Type(ty) => format!(
            "event {n}: type rewritten/unknown (0x{ty:08x} on PCR {}, expected EV_AZL 0x{EV_AZL:08x}; \
             the type is not covered by the digest)",
            e.pcr
        ),
        EventFault::NotAzl => format!(
            "event {n}: data is not an azl-edge event (no \"azl-edge:<known tag>\\0\" prefix)"
        ),
        EventFault::Digest { actual } => format!(
            "event {n}: data does not match its digest (log says {}, data hashes to {})",
            Hex(&e.sha256),
            Hex(actual)
        ),
        EventFault::NotStubEvent => format!(
            "event {n}: EV_EVENT_TAG (0x{:08x}) on PCR {} is not the EFI stub's load-options \
             event (the only tagged event accepted: PCR {}, tagged event 0x{:08x} \"LOADED_IMAGE::LoadOptions\")",
            efistub::EV_EVENT_TAG,
            e.pcr,
            efistub::PCR,
            efistub::LOAD_OPTIONS_TAG_ID
        ),
    })
}

fn check_log(run: &mut Run, report: &Report, quoted: bool) -> Result<CheckedLog, Failure> {
    let events =
        eventlog::parse(&report.event_log).map_err(|e| Failure::new(format!("event log: {e}")))?;
    let (firmware, measured, stub) = {
        let m = logcheck::measured_events(&events).map_err(|fault| match fault {
            LogFault::AfterOurs(e) => Failure::new(format!(
                "event {} (PCR {}) follows the azl-edge events: only firmware events, \
                 before ours, may use PCRs other than {}",
                e.number,
                e.pcr,
                pcr_list(QUOTED_PCRS)
            )),
            LogFault::Event(e, fault) => event_failure(e, &fault),
        })?;
        (m.firmware, m.events.len(), m.stub_events())
    };
    let azl = measured.saturating_sub(stub);
    run.ok(format!(
        "event log: {firmware} firmware events (PCRs outside {}), {azl} azl-edge events, \
         every azl-edge event's data matches its digest",
        pcr_list(QUOTED_PCRS),
    ));
    if stub > 0 {
        run.note(format!(
            "event log: {stub} EFI stub event (EV_EVENT_TAG \"LOADED_IMAGE::LoadOptions\", PCR {}): \
             its digest is of the boot entry's load options, checked against the signed reference",
            efistub::PCR
        ));
    }
    let replayed = eventlog::replay(&events, &QUOTED_PCRS);
    if quoted || !report.pcrs.is_empty() {
        for &(pcr, value) in &replayed {
            let reported = report.pcrs.iter().find(|(i, _)| *i == pcr).map(|(_, v)| v);
            if reported != Some(&value) {
                return Err(Failure::new(format!(
                    "event log does not replay to the quoted PCR {pcr} (log gives {}, {} {})",
                    Hex(&value),
                    if quoted { "quote has" } else { "report has" },
                    reported.map_or("nothing".to_string(), |v| Hex(v).to_string())
                )));
            }
        }
        run.ok(format!(
            "event log replays to the {} PCRs {}",
            if quoted {
                "quoted"
            } else {
                "reported (unauthenticated)"
            },
            pcr_list(QUOTED_PCRS)
        ));
    }
    Ok(CheckedLog { events, replayed })
}

fn describe(tag: &str, digest: &Digest) -> String {
    format!("{tag} {}", Hex(digest))
}

fn check_reference(run: &mut Run, manifest: &Manifest, log: &CheckedLog) -> Result<(), Failure> {
    let reference = manifest.reference.as_ref().ok_or_else(|| {
        Failure::new(
            "the manifest has no reference values (built by an imagegen without attestation \
             support): nothing to compare the measurements with",
        )
    })?;
    let azl = log.measured();
    // The first divergence is the reason; up to MAX_LISTED_DIVERGENCES more
    // are listed, the rest only counted (no string is built for them).
    let mut first: Option<String> = None;
    let mut also: Vec<String> = Vec::new();
    let mut unlisted = 0usize;
    let n = reference.events.len().max(azl.len());
    for i in 0..n {
        let want: Option<&RefEvent> = reference.events.get(i);
        let got: Option<&Event> = azl.get(i).copied();
        let differs = match (want, got) {
            (Some(w), Some(g)) => !logcheck::event_matches(w, g),
            (None, None) => false,
            _ => true,
        };
        if !differs {
            continue;
        }
        if first.is_some() && also.len() >= MAX_LISTED_DIVERGENCES {
            unlisted = unlisted.saturating_add(1);
            continue;
        }
        let msg = match (want, got) {
            (Some(w), Some(g)) if logcheck::event_matches(w, g) => continue,
            (Some(w), Some(g)) => format!(
                "PCR {} differs: expected {}, got {} (event {}{})",
                w.pcr,
                describe(&w.tag, &w.digest),
                describe(event_tag(g), &g.sha256),
                g.number,
                if u32::from(w.pcr) == g.pcr {
                    String::new()
                } else {
                    format!(", on PCR {}", g.pcr)
                }
            ),
            (Some(w), None) => format!(
                "PCR {} differs: expected {}, got nothing (the log ends after {} azl-edge events)",
                w.pcr,
                describe(&w.tag, &w.digest),
                azl.len()
            ),
            (None, Some(g)) => format!(
                "PCR {} differs: expected nothing (the reference ends after {} events), got {} (event {})",
                g.pcr,
                reference.events.len(),
                describe(event_tag(g), &g.sha256),
                g.number
            ),
            (None, None) => continue,
        };
        if first.is_none() {
            first = Some(msg);
        } else {
            also.push(format!("also: {msg}"));
        }
    }
    if let Some(reason) = first {
        if unlisted > 0 {
            also.push(format!("… and {unlisted} more events differ"));
        }
        return Err(Failure {
            reason,
            details: also,
        });
    }
    run.ok(format!(
        "event log matches the signed reference ({} events, in order)",
        reference.events.len()
    ));
    for &(pcr, value) in &log.replayed {
        let want = reference
            .pcrs
            .iter()
            .find(|(i, _)| *i == pcr)
            .map(|(_, v)| v);
        match want {
            Some(w) if *w == value => {}
            Some(w) => {
                return Err(Failure::new(format!(
                    "PCR {pcr} differs: expected value {}, got {}",
                    Hex(w),
                    Hex(&value)
                )))
            }
            None => {
                return Err(Failure::new(format!(
                    "the signed reference has no value for PCR {pcr}"
                )))
            }
        }
    }
    run.ok(format!(
        "PCRs {} equal the signed reference values",
        pcr_list(QUOTED_PCRS)
    ));
    Ok(())
}
