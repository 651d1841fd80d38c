//! The rules an azl-edge event log must satisfy, once for both judges of
//! it: the host verifier (`azl-attest`) and the device's own measurement
//! self-check at the end of a trial boot (`init/src/update/gate`).
//!
//! - [`check_event`]: an event on an azl-edge PCR is of type
//!   [`EV_AZL`], its data is `"azl-edge:" ‖ known tag ‖ "\0" ‖ …` and its
//!   SHA-256 digest is the SHA-256 of that data (the type is not covered
//!   by the digest, so it is checked by itself).
//! - [`check_measured`]: the same, except that the one event of the Linux
//!   EFI stub a UEFI boot has ([`efistub`]: EV_EVENT_TAG, PCR 9, the stub's
//!   load-options event data) is also well formed; its digest can only be
//!   compared with the reference.
//! - [`measured_events`]: a whole (possibly merged) log: firmware events on
//!   other PCRs only before PID 1's first event, every event on PCRs 8, 9,
//!   11 well formed; the events the reference must predict, in order.
//! - [`event_matches`]: an event is the reference event when PCR, tag and
//!   digest are equal.
//! - [`first_divergence`]: the first position where the log's measured
//!   events and the signed reference differ (in order, nothing missing,
//!   nothing extra) — this is what places the stub's event: first, once.
//! - [`pcr_divergence`]: the first replayed PCR that is not the
//!   reference's value.
//! - [`without_firmware_events`]: the reference a log that carries no
//!   firmware measurements (a boot without a TPM) is held to.
use crate::efistub;
use crate::eventlog::{self, sha256, Event};
use crate::manifest::{Digest, RefEvent, Reference};
use crate::measure::{self, Kind, EV_AZL, QUOTED_PCRS};
use alloc::vec::Vec;

/// Is `pcr` one azl-edge measures into?
pub fn is_azl_pcr(pcr: u32) -> bool {
    QUOTED_PCRS.iter().any(|&p| u32::from(p) == pcr)
}

/// Why one event on an azl-edge PCR is not a well-formed event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventFault {
    /// The event type is not [`EV_AZL`] (nor, where allowed, the EFI
    /// stub's EV_EVENT_TAG).
    Type(u32),
    /// The data is not `"azl-edge:" ‖ known tag ‖ "\0" ‖ content`.
    NotAzl,
    /// The data hashes to `actual`, not to the logged digest.
    Digest { actual: Digest },
    /// An EV_EVENT_TAG that is not the EFI stub's load-options event on
    /// PCR 9 (another PCR, another tagged event, other data).
    NotStubEvent,
}

/// What a well-formed event on an azl-edge PCR is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measured {
    /// One of PID 1's events.
    Azl(Kind),
    /// The Linux EFI stub's load-options measurement ([`efistub`]).
    EfiStubLoadOptions,
}

/// Check one of PID 1's events on an azl-edge PCR; its kind when it is
/// well formed. (The device's own log holds nothing else.)
pub fn check_event(e: &Event) -> Result<Kind, EventFault> {
    if e.event_type != EV_AZL {
        return Err(EventFault::Type(e.event_type));
    }
    let (kind, _) = measure::parse_event_data(&e.data).ok_or(EventFault::NotAzl)?;
    let actual = sha256(&e.data);
    if actual != e.sha256 {
        return Err(EventFault::Digest { actual });
    }
    Ok(kind)
}

/// Check one event on an azl-edge PCR of a log that may hold the
/// firmware's records: PID 1's events or the EFI stub's one event.
pub fn check_measured(e: &Event) -> Result<Measured, EventFault> {
    if e.event_type == efistub::EV_EVENT_TAG {
        return if efistub::is_load_options_event(e) {
            Ok(Measured::EfiStubLoadOptions)
        } else {
            Err(EventFault::NotStubEvent)
        };
    }
    check_event(e).map(Measured::Azl)
}

/// The tag of an event (`?` when it has none): its azl-edge tag, or
/// [`efistub::REF_TAG`] for the stub's event.
pub fn event_tag(e: &Event) -> &str {
    if efistub::is_load_options_event(e) {
        return efistub::REF_TAG;
    }
    measure::parse_event_data(&e.data).map_or("?", |(k, _)| k.tag())
}

/// Is `got` the reference event `want` (same PCR, tag and digest)?
pub fn event_matches(want: &RefEvent, got: &Event) -> bool {
    u32::from(want.pcr) == got.pcr && want.tag == event_tag(got) && want.digest == got.sha256
}

/// A log's events split as [`measured_events`] splits them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeasuredLog<'a> {
    /// Events on other PCRs (the firmware's), all before PID 1's first.
    pub firmware: usize,
    /// The events on PCRs 8, 9, 11, in log order, each well formed.
    pub events: Vec<&'a Event>,
}

impl MeasuredLog<'_> {
    /// How many of [`MeasuredLog::events`] are the EFI stub's.
    pub fn stub_events(&self) -> usize {
        self.events
            .iter()
            .filter(|e| efistub::is_load_options_event(e))
            .count()
    }
}

/// Why a log's event sequence is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogFault<'a> {
    /// An event on another PCR after PID 1's first event.
    AfterOurs(&'a Event),
    /// An event on an azl-edge PCR that is not well formed.
    Event(&'a Event, EventFault),
}

/// Split a parsed log: firmware events (PCRs other than 8, 9, 11) may
/// only come before PID 1's first event (the stub's event and the
/// firmware's ExitBootServices events come before it); every event on
/// PCRs 8, 9 and 11 must pass [`check_measured`]. Whether the measured
/// events are the expected ones, in the expected places, is for
/// [`first_divergence`] to say.
pub fn measured_events(events: &[Event]) -> Result<MeasuredLog<'_>, LogFault<'_>> {
    let mut log = MeasuredLog {
        firmware: 0,
        events: Vec::new(),
    };
    let mut ours_began = false;
    for e in events {
        if !is_azl_pcr(e.pcr) {
            if ours_began {
                return Err(LogFault::AfterOurs(e));
            }
            log.firmware = log.firmware.saturating_add(1);
            continue;
        }
        match check_measured(e) {
            Ok(Measured::Azl(_)) => ours_began = true,
            Ok(Measured::EfiStubLoadOptions) => {}
            Err(fault) => return Err(LogFault::Event(e, fault)),
        }
        log.events.push(e);
    }
    Ok(log)
}

/// Where a log's measured events first differ from the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Divergence<'a> {
    /// Position `index` (0-based among the measured events) holds `got`
    /// where the reference has `want`.
    Differs {
        index: usize,
        want: &'a RefEvent,
        got: &'a Event,
    },
    /// The log ends where the reference has `want` at `index`.
    Missing { index: usize, want: &'a RefEvent },
    /// The reference ends where the log has `got` at `index`.
    Extra { index: usize, got: &'a Event },
}

/// Every divergence between `events` (the measured events, in log order)
/// and the reference, in order.
pub fn divergences<'a>(
    reference: &'a Reference,
    events: &'a [&'a Event],
) -> impl Iterator<Item = Divergence<'a>> + 'a {
    let n = reference.events.len().max(events.len());
    (0..n).filter_map(move |index| {
        match (reference.events.get(index), events.get(index).copied()) {
            (Some(want), Some(got)) if event_matches(want, got) => None,
            (Some(want), Some(got)) => Some(Divergence::Differs { index, want, got }),
            (Some(want), None) => Some(Divergence::Missing { index, want }),
            (None, Some(got)) => Some(Divergence::Extra { index, got }),
            (None, None) => None,
        }
    })
}

/// The first divergence, if any.
pub fn first_divergence<'a>(
    reference: &'a Reference,
    events: &'a [&'a Event],
) -> Option<Divergence<'a>> {
    divergences(reference, events).next()
}

/// The first PCR of `replayed` whose value is not the reference's:
/// `(pcr, reference value or None when it has none, replayed value)`.
pub fn pcr_divergence(
    reference: &Reference,
    replayed: &[(u8, Digest)],
) -> Option<(u8, Option<Digest>, Digest)> {
    replayed.iter().find_map(|&(pcr, value)| {
        let want = reference
            .pcrs
            .iter()
            .find(|(i, _)| *i == pcr)
            .map(|(_, v)| *v);
        (want != Some(value)).then_some((pcr, want, value))
    })
}

/// PCRs 8, 9, 11 replayed from zero over reference events.
pub fn replay_reference(events: &[RefEvent]) -> Vec<(u8, Digest)> {
    QUOTED_PCRS
        .iter()
        .map(|&pcr| {
            let value = events
                .iter()
                .filter(|e| e.pcr == pcr)
                .fold([0u8; 32], |v, e| eventlog::extend(&v, &e.digest));
            (pcr, value)
        })
        .collect()
}

/// The reference a log without the firmware's measurements is held to:
/// without a TPM the firmware has no TCG2 protocol and the EFI stub
/// measures nothing, so a UEFI build's stub event ([`efistub::is_ref_event`])
/// is dropped and the PCRs are replayed from the remaining events. A
/// reference without stub events is returned unchanged. Only the device's
/// self-check without a firmware log uses this; a TPM report is always held
/// to the full reference.
pub fn without_firmware_events(reference: &Reference) -> Reference {
    if !reference.events.iter().any(efistub::is_ref_event) {
        return reference.clone();
    }
    let events: Vec<RefEvent> = reference
        .events
        .iter()
        .filter(|e| !efistub::is_ref_event(e))
        .cloned()
        .collect();
    Reference {
        pcrs: replay_reference(&events),
        events,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::eventlog::{self, EventLog};
    use crate::measure::VERIFIED_BOOT_SEQUENCE;
    use alloc::string::ToString;
    use alloc::vec::Vec;

    /// PID 1's verified-boot events appended to `log`, as reference events.
    fn azl_events(log: &mut EventLog) -> Vec<RefEvent> {
        let mut refs = Vec::new();
        for k in VERIFIED_BOOT_SEQUENCE {
            let d = log.append_azl(k, k.tag().as_bytes());
            refs.push(RefEvent {
                pcr: k.pcr(),
                tag: k.tag().to_string(),
                digest: d,
            });
        }
        refs
    }

    fn sample() -> (Reference, Vec<Event>) {
        let mut log = EventLog::new();
        let refs = azl_events(&mut log);
        let events = eventlog::parse(log.as_bytes()).unwrap();
        let pcrs = eventlog::replay(&events, &QUOTED_PCRS);
        (Reference { events: refs, pcrs }, events)
    }

    const CMDLINE: &str = "initrd=\\EFI\\azl\\a\\initrd console=ttyAMA0 azl.slot=a";

    /// A UEFI boot's merged log: a firmware event, the stub's event, the
    /// firmware's ExitBootServices event, then PID 1's; and its reference.
    fn uefi_sample(stub: impl Fn(&mut EventLog)) -> (Reference, Vec<Event>) {
        let mut log = EventLog::new();
        log.append(0, 0x8000_0008, &[3; 32], b"firmware");
        stub(&mut log);
        log.append(5, 0x8000_0007, &[4; 32], b"Exit Boot Services Invocation");
        let mut refs = alloc::vec![efistub::ref_event(CMDLINE)];
        refs.extend(azl_events(&mut log));
        let events = eventlog::parse(log.as_bytes()).unwrap();
        let pcrs = replay_reference(&refs);
        (Reference { events: refs, pcrs }, events)
    }

    fn the_stub(log: &mut EventLog) {
        log.append(
            9,
            efistub::EV_EVENT_TAG,
            &efistub::load_options_digest(CMDLINE),
            &efistub::load_options_event_data(),
        );
    }

    #[test]
    fn a_matching_log_has_no_divergence() {
        let (r, events) = sample();
        assert!(events.iter().all(|e| check_event(e).is_ok()));
        let m = measured_events(&events).unwrap();
        assert_eq!((m.firmware, m.events.len(), m.stub_events()), (0, 7, 0));
        assert_eq!(first_divergence(&r, &m.events), None);
        let replayed = eventlog::replay(&events, &QUOTED_PCRS);
        assert_eq!(pcr_divergence(&r, &replayed), None);
        assert_eq!(replay_reference(&r.events), r.pcrs);
        assert_eq!(without_firmware_events(&r), r);
    }

    #[test]
    fn faults_and_divergences_are_named() {
        let (r, events) = sample();
        let mut e = events[1].clone();
        e.event_type = 4;
        assert_eq!(check_event(&e), Err(EventFault::Type(4)));
        let mut e = events[1].clone();
        e.data = b"other".to_vec();
        assert_eq!(check_event(&e), Err(EventFault::NotAzl));
        let mut e = events[1].clone();
        e.data.push(b'x');
        assert!(matches!(check_event(&e), Err(EventFault::Digest { .. })));

        let all: Vec<&Event> = events.iter().collect();
        let short = &all[..6];
        assert!(matches!(
            first_divergence(&r, short),
            Some(Divergence::Missing { index: 6, .. })
        ));
        let mut long = all.clone();
        long.push(&events[0]);
        assert!(matches!(
            first_divergence(&r, &long),
            Some(Divergence::Extra { index: 7, .. })
        ));
        let mut swapped = all.clone();
        swapped.swap(1, 2);
        assert!(matches!(
            first_divergence(&r, &swapped),
            Some(Divergence::Differs { index: 1, .. })
        ));
        assert_eq!(divergences(&r, &swapped).count(), 2);
        let mut bad = r.clone();
        bad.pcrs[0].1 = [0; 32];
        let replayed = eventlog::replay(&events, &QUOTED_PCRS);
        assert_eq!(
            pcr_divergence(&bad, &replayed).map(|(p, w, _)| (p, w)),
            Some((8, Some([0; 32])))
        );
        bad.pcrs.remove(0);
        assert_eq!(
            pcr_divergence(&bad, &replayed).map(|(p, w, _)| (p, w)),
            Some((8, None))
        );
        assert!(is_azl_pcr(11) && !is_azl_pcr(7));
    }

    #[test]
    fn a_uefi_log_with_the_stubs_event_first_matches() {
        let (r, events) = uefi_sample(the_stub);
        let m = measured_events(&events).unwrap();
        assert_eq!((m.firmware, m.events.len(), m.stub_events()), (2, 8, 1));
        assert_eq!(event_tag(m.events[0]), efistub::REF_TAG);
        assert_eq!(
            check_measured(m.events[0]),
            Ok(Measured::EfiStubLoadOptions)
        );
        assert_eq!(first_divergence(&r, &m.events), None);
        let replayed = eventlog::replay(&events, &QUOTED_PCRS);
        assert_eq!(pcr_divergence(&r, &replayed), None);
        // PID 1's own check refuses the stub's event: init never writes it.
        assert_eq!(
            check_event(m.events[0]),
            Err(EventFault::Type(efistub::EV_EVENT_TAG))
        );
    }

    #[test]
    fn an_unpredicted_stub_event_is_a_divergence() {
        // A direct-boot reference: nothing predicts the stub's event.
        let (direct, _) = sample();
        let (_, events) = uefi_sample(the_stub);
        let m = measured_events(&events).unwrap();
        assert!(matches!(
            first_divergence(&direct, &m.events),
            Some(Divergence::Differs { index: 0, got, .. }) if event_tag(got) == efistub::REF_TAG
        ));
    }

    #[test]
    fn a_stub_event_with_another_digest_is_a_divergence() {
        let (r, events) = uefi_sample(|log| {
            log.append(
                9,
                efistub::EV_EVENT_TAG,
                &efistub::load_options_digest("init=/bin/sh"),
                &efistub::load_options_event_data(),
            )
        });
        let m = measured_events(&events).unwrap();
        assert!(matches!(
            first_divergence(&r, &m.events),
            Some(Divergence::Differs { index: 0, .. })
        ));
    }

    #[test]
    fn a_tagged_event_on_another_pcr_or_with_other_data_is_refused() {
        let digest = efistub::load_options_digest(CMDLINE);
        let data = efistub::load_options_event_data();
        let mut initrd = data.clone();
        initrd[0] = 0xec; // the stub's "Linux initrd" event ID
        for (pcr, data) in [(8u8, data.clone()), (11, data.clone()), (9, initrd)] {
            let (_, events) = uefi_sample(|log| {
                log.append(pcr, efistub::EV_EVENT_TAG, &digest, &data);
            });
            assert!(
                matches!(
                    measured_events(&events),
                    Err(LogFault::Event(e, EventFault::NotStubEvent)) if e.pcr == u32::from(pcr)
                ),
                "PCR {pcr}"
            );
        }
        // The stub's data under another type is no stub event.
        let (_, events) = uefi_sample(|log| log.append(9, 0x0d, &digest, &data));
        assert!(matches!(
            measured_events(&events),
            Err(LogFault::Event(_, EventFault::NotAzl))
        ));
    }

    #[test]
    fn the_stub_event_twice_or_after_pid_1s_events_is_a_divergence() {
        let (r, events) = uefi_sample(|log| {
            the_stub(log);
            the_stub(log);
        });
        let m = measured_events(&events).unwrap();
        assert_eq!(m.stub_events(), 2);
        assert!(matches!(
            first_divergence(&r, &m.events),
            Some(Divergence::Differs { index: 1, .. })
        ));
        // After PID 1's events: never first.
        let (r, mut events) = uefi_sample(|_| {});
        let mut late = EventLog::new();
        the_stub(&mut late);
        let mut stub = eventlog::parse(late.as_bytes()).unwrap().remove(0);
        stub.number = 99;
        events.push(stub);
        let m = measured_events(&events).unwrap();
        assert!(matches!(
            first_divergence(&r, &m.events),
            Some(Divergence::Differs { index: 0, .. })
        ));
    }

    #[test]
    fn firmware_events_after_pid_1s_first_are_refused() {
        let (_, mut events) = uefi_sample(the_stub);
        let mut fw = events[0].clone();
        fw.number = 99;
        events.push(fw);
        assert!(matches!(
            measured_events(&events),
            Err(LogFault::AfterOurs(e)) if e.number == 99
        ));
    }

    #[test]
    fn without_a_firmware_log_the_stub_event_is_not_expected() {
        let (uefi, _) = uefi_sample(the_stub);
        let (direct, events) = sample();
        let held = without_firmware_events(&uefi);
        assert_eq!(held, direct);
        let m = measured_events(&events).unwrap();
        assert_eq!(first_divergence(&held, &m.events), None);
        // Held to the full reference, the same log misses the stub's event.
        assert!(matches!(
            first_divergence(&uefi, &m.events),
            Some(Divergence::Differs { index: 0, want, .. }) if want.tag == efistub::REF_TAG
        ));
    }
}
