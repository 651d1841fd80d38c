//! The rules an azl-edge event log must satisfy, once for both judges of
//! it: the host verifier (`azl-attest`) and the device's own measurement
//! self-check at the end of a trial boot (`init/src/update/gate`).
//!
//! - [`check_event`]: an event on an azl-edge PCR is of type
//!   [`EV_AZL`], its data is `"azl-edge:" ‖ known tag ‖ "\0" ‖ …` and its
//!   SHA-256 digest is the SHA-256 of that data (the type is not covered
//!   by the digest, so it is checked by itself).
//! - [`event_matches`]: an event is the reference event when PCR, tag and
//!   digest are equal.
//! - [`first_divergence`]: the first position where the log's azl-edge
//!   events and the signed reference differ (in order, nothing missing,
//!   nothing extra).
//! - [`pcr_divergence`]: the first replayed PCR that is not the
//!   reference's value.
use crate::eventlog::{sha256, Event};
use crate::manifest::{Digest, RefEvent, Reference};
use crate::measure::{self, Kind, EV_AZL, QUOTED_PCRS};

/// Is `pcr` one azl-edge measures into?
pub fn is_azl_pcr(pcr: u32) -> bool {
    QUOTED_PCRS.iter().any(|&p| u32::from(p) == pcr)
}

/// Why one event on an azl-edge PCR is not a well-formed azl-edge event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventFault {
    /// The event type is not [`EV_AZL`].
    Type(u32),
    /// The data is not `"azl-edge:" ‖ known tag ‖ "\0" ‖ content`.
    NotAzl,
    /// The data hashes to `actual`, not to the logged digest.
    Digest { actual: Digest },
}

/// Check one event on an azl-edge PCR; its kind when it is well formed.
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

/// The tag of an event's data (`?` when it has none).
pub fn event_tag(e: &Event) -> &str {
    measure::parse_event_data(&e.data).map_or("?", |(k, _)| k.tag())
}

/// Is `got` the reference event `want` (same PCR, tag and digest)?
pub fn event_matches(want: &RefEvent, got: &Event) -> bool {
    u32::from(want.pcr) == got.pcr && want.tag == event_tag(got) && want.digest == got.sha256
}

/// Where a log's azl-edge events first differ from the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Divergence<'a> {
    /// Position `index` (0-based among the azl-edge events) holds `got`
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

/// Every divergence between `events` (the azl-edge events, in log order)
/// and the reference, in order.
pub fn divergences<'a>(
    reference: &'a Reference,
    events: &'a [Event],
) -> impl Iterator<Item = Divergence<'a>> + 'a {
    let n = reference.events.len().max(events.len());
    (0..n).filter_map(
        move |index| match (reference.events.get(index), events.get(index)) {
            (Some(want), Some(got)) if event_matches(want, got) => None,
            (Some(want), Some(got)) => Some(Divergence::Differs { index, want, got }),
            (Some(want), None) => Some(Divergence::Missing { index, want }),
            (None, Some(got)) => Some(Divergence::Extra { index, got }),
            (None, None) => None,
        },
    )
}

/// The first divergence, if any.
pub fn first_divergence<'a>(
    reference: &'a Reference,
    events: &'a [Event],
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::eventlog::{self, EventLog};
    use crate::measure::VERIFIED_BOOT_SEQUENCE;
    use alloc::string::ToString;
    use alloc::vec::Vec;

    fn sample() -> (Reference, Vec<Event>) {
        let mut log = EventLog::new();
        let mut refs = Vec::new();
        for k in VERIFIED_BOOT_SEQUENCE {
            let d = log.append_azl(k, k.tag().as_bytes());
            refs.push(RefEvent {
                pcr: k.pcr(),
                tag: k.tag().to_string(),
                digest: d,
            });
        }
        let events = eventlog::parse(log.as_bytes()).unwrap();
        let pcrs = eventlog::replay(&events, &QUOTED_PCRS);
        (Reference { events: refs, pcrs }, events)
    }

    #[test]
    fn a_matching_log_has_no_divergence() {
        let (r, events) = sample();
        assert!(events.iter().all(|e| check_event(e).is_ok()));
        assert_eq!(first_divergence(&r, &events), None);
        let replayed = eventlog::replay(&events, &QUOTED_PCRS);
        assert_eq!(pcr_divergence(&r, &replayed), None);
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

        let short = &events[..6];
        assert!(matches!(
            first_divergence(&r, short),
            Some(Divergence::Missing { index: 6, .. })
        ));
        let mut long = events.clone();
        long.push(events[0].clone());
        assert!(matches!(
            first_divergence(&r, &long),
            Some(Divergence::Extra { index: 7, .. })
        ));
        let mut swapped = events.clone();
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
}
