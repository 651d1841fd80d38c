//! The measurement self-check at the end of a trial boot: the event log
//! stage 1 and stage 2 wrote must be, event for event, what the booted
//! slot's signed manifest predicts (`reference`, a complete boot up to
//! "services ready"), replay to its PCR values, and — with a TPM — equal
//! what the TPM's PCRs hold. The rules are the verifier's
//! (`azl_formats::logcheck`); only the inputs differ: the device checks
//! its own log, merged after the firmware's as `initctl attest` sends it
//! (on a UEFI boot with a TPM the firmware's log holds the EFI stub's
//! PCR 9 event, the first of the reference), before a remote verifier ever
//! sees it. Without a firmware log (no TPM) the reference's firmware-made
//! events are not expected (`logcheck::without_firmware_events`). Pure:
//! the driver reads the files and the TPM.
use azl_formats::envelope::Enveloped;
use azl_formats::eventlog::{self, Event};
use azl_formats::logcheck::{self, Divergence, EventFault, LogFault};
use azl_formats::manifest::{Digest, Hex, Reference, SignedManifest};
use azl_formats::measure::QUOTED_PCRS;
use std::fmt;

/// Why the self-check failed. Displayed as the trial's failure reason
/// (short digests: the boot state keeps 120 characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelfCheckError {
    /// The manifest copy in /run is not the one stage 1 verified.
    ManifestDigest,
    /// The manifest copy does not decode.
    Manifest(String),
    NoReference,
    /// The event log cannot be read or parsed.
    Log(String),
    ForeignPcr {
        event: u32,
        pcr: u32,
    },
    Event {
        event: u32,
        pcr: u32,
        fault: EventFault,
    },
    Differs {
        event: u32,
        got_tag: String,
        got: Digest,
        want_tag: String,
        want: Digest,
    },
    Missing {
        after: usize,
        want_tag: String,
    },
    Extra {
        event: u32,
        tag: String,
        reference: usize,
    },
    Pcr {
        pcr: u8,
        got: Digest,
        want: Option<Digest>,
    },
    TpmRead(String),
    Tpm {
        pcr: u8,
        tpm: Option<Digest>,
        log: Digest,
    },
}

/// The first 8 bytes of a digest, for reasons that must stay short.
struct Short<'a>(&'a Digest);

impl fmt::Display for Short<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}…", Hex(self.0.get(..8).unwrap_or_default()))
    }
}

impl fmt::Display for SelfCheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("measurement self-check: ")?;
        match self {
            Self::ManifestDigest => {
                f.write_str("the manifest copy in /run is not the one stage 1 verified")
            }
            Self::Manifest(e) => write!(f, "the manifest copy: {e}"),
            Self::NoReference => f.write_str("the signed manifest has no reference values"),
            Self::Log(e) => write!(f, "event log: {e}"),
            Self::ForeignPcr { event, pcr } => write!(
                f,
                "event {event} is on PCR {pcr}, not one azl-edge measures"
            ),
            Self::Event { event, pcr, fault } => {
                write!(f, "event {event} (PCR {pcr}): ")?;
                match fault {
                    EventFault::Type(t) => write!(f, "type 0x{t:08x}, not EV_AZL"),
                    EventFault::NotAzl => f.write_str("not an azl-edge event"),
                    EventFault::Digest { .. } => f.write_str("data does not match its digest"),
                    EventFault::NotStubEvent => {
                        f.write_str("EV_EVENT_TAG, not the EFI stub's load-options event")
                    }
                }
            }
            Self::Differs {
                event,
                got_tag,
                got,
                want_tag,
                want,
            } if got_tag == want_tag => write!(
                f,
                "event {event} is {got_tag} {}, the manifest says {}",
                Short(got),
                Short(want)
            ),
            // Other events: the tags say it (digests would not fit the
            // boot state's 120 characters).
            Self::Differs {
                event,
                got_tag,
                want_tag,
                ..
            } => write!(
                f,
                "event {event} is {got_tag}, the manifest says {want_tag}"
            ),
            Self::Missing { after, want_tag } => write!(
                f,
                "the log ends after {after} events, the manifest expects {want_tag} next"
            ),
            Self::Extra {
                event,
                tag,
                reference,
            } => write!(
                f,
                "event {event} ({tag}) is beyond the manifest's {reference} events"
            ),
            Self::Pcr { pcr, got, want } => match want {
                Some(w) => write!(
                    f,
                    "PCR {pcr} is {}, the manifest says {}",
                    Short(got),
                    Short(w)
                ),
                None => write!(f, "the manifest has no value for PCR {pcr}"),
            },
            Self::TpmRead(e) => write!(f, "cannot read the TPM's PCRs: {e}"),
            Self::Tpm { pcr, tpm, log } => match tpm {
                Some(t) => write!(
                    f,
                    "the TPM's PCR {pcr} is {}, the log replays to {}",
                    Short(t),
                    Short(log)
                ),
                None => write!(f, "the TPM did not return PCR {pcr}"),
            },
        }
    }
}

/// What the self-check is given.
pub struct Inputs<'a> {
    /// The event log as written to /run.
    pub log: &'a [u8],
    /// The firmware's event log (`paths::FIRMWARE_EVENT_LOG`), `None` when
    /// there is none (no TPM, or a boot the firmware did not measure).
    pub firmware_log: Option<&'a [u8]>,
    /// The booted slot's `SignedManifest` envelope (stage 1's copy).
    pub manifest: &'a [u8],
    /// sha256 of that envelope as stage 1 recorded it (the booted record).
    pub manifest_sha256: &'a Digest,
    /// The TPM's SHA-256 PCRs 8, 9, 11; `None` without a TPM.
    pub tpm: Option<Result<Vec<(u8, Digest)>, String>>,
}

/// The booted slot's reference values, from the manifest copy stage 1
/// verified.
fn reference(inp: &Inputs<'_>) -> Result<Reference, SelfCheckError> {
    // Never trust the copy by itself: it must be what stage 1 verified.
    if azl_formats::sha256(inp.manifest) != *inp.manifest_sha256 {
        return Err(SelfCheckError::ManifestDigest);
    }
    let manifest = SignedManifest::from_bytes(inp.manifest)
        .map_err(|e| SelfCheckError::Manifest(e.to_string()))
        .and_then(|sm| {
            sm.manifest()
                .map_err(|e| SelfCheckError::Manifest(e.to_string()))
        })?;
    manifest.reference.ok_or(SelfCheckError::NoReference)
}

/// PID 1's own log holds only PID 1's events: each on PCR 8, 9 or 11,
/// EV_AZL, data matching its digest.
fn check_own_log(events: &[Event]) -> Result<(), SelfCheckError> {
    for e in events {
        if !logcheck::is_azl_pcr(e.pcr) {
            return Err(SelfCheckError::ForeignPcr {
                event: e.number,
                pcr: e.pcr,
            });
        }
        logcheck::check_event(e).map_err(|fault| SelfCheckError::Event {
            event: e.number,
            pcr: e.pcr,
            fault,
        })?;
    }
    Ok(())
}

/// The log a verifier would see (the firmware's merged first, as
/// `initctl attest` sends it) and the reference it is held to: the full
/// one with a firmware log, else the one without the firmware's events
/// (`logcheck::without_firmware_events`: no TPM, no EFI stub event).
fn judged(
    inp: &Inputs<'_>,
    own: Vec<Event>,
    reference: Reference,
) -> Result<(Vec<Event>, Reference), SelfCheckError> {
    match inp.firmware_log {
        Some(fw) if !fw.is_empty() => {
            let merged = eventlog::merge(fw, inp.log)
                .map_err(|e| SelfCheckError::Log(format!("merging the firmware's: {e}")))?;
            let events =
                eventlog::parse(&merged).map_err(|e| SelfCheckError::Log(e.to_string()))?;
            Ok((events, reference))
        }
        _ => Ok((own, logcheck::without_firmware_events(&reference))),
    }
}

fn first_divergence(reference: &Reference, events: &[&Event]) -> Result<(), SelfCheckError> {
    match logcheck::first_divergence(reference, events) {
        None => Ok(()),
        Some(Divergence::Differs { want, got, .. }) => Err(SelfCheckError::Differs {
            event: got.number,
            got_tag: logcheck::event_tag(got).to_string(),
            got: got.sha256,
            want_tag: want.tag.clone(),
            want: want.digest,
        }),
        Some(Divergence::Missing { index, want }) => Err(SelfCheckError::Missing {
            after: index,
            want_tag: want.tag.clone(),
        }),
        Some(Divergence::Extra { got, .. }) => Err(SelfCheckError::Extra {
            event: got.number,
            tag: logcheck::event_tag(got).to_string(),
            reference: reference.events.len(),
        }),
    }
}

/// Run the self-check; `Ok` with the number of measured events checked
/// (PID 1's, plus the EFI stub's on a measured UEFI boot).
pub fn check(inp: &Inputs<'_>) -> Result<usize, SelfCheckError> {
    let reference = reference(inp)?;
    let own = eventlog::parse(inp.log).map_err(|e| SelfCheckError::Log(e.to_string()))?;
    check_own_log(&own)?;
    let (events, reference) = judged(inp, own, reference)?;
    let measured = logcheck::measured_events(&events).map_err(|fault| match fault {
        LogFault::AfterOurs(e) => SelfCheckError::ForeignPcr {
            event: e.number,
            pcr: e.pcr,
        },
        LogFault::Event(e, fault) => SelfCheckError::Event {
            event: e.number,
            pcr: e.pcr,
            fault,
        },
    })?;
    first_divergence(&reference, &measured.events)?;
    let replayed = eventlog::replay(&events, &QUOTED_PCRS);
    if let Some((pcr, want, got)) = logcheck::pcr_divergence(&reference, &replayed) {
        return Err(SelfCheckError::Pcr { pcr, got, want });
    }
    if let Some(read) = &inp.tpm {
        let values = read
            .as_ref()
            .map_err(|e| SelfCheckError::TpmRead(e.clone()))?;
        for &(pcr, log) in &replayed {
            let tpm = values.iter().find(|(i, _)| *i == pcr).map(|(_, v)| *v);
            if tpm != Some(log) {
                return Err(SelfCheckError::Tpm { pcr, tpm, log });
            }
        }
    }
    Ok(measured.events.len())
}
