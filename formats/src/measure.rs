//! What PID 1 measures, into which PCR, and the exact bytes of each event —
//! shared so that imagegen can predict the PCR values a correct boot
//! produces and the verifier can recompute them. The PCR map is documented
//! in `docs/pcr-map.md`.
//!
//! Every azl-edge event is a TCG_PCR_EVENT2 of type [`EV_AZL`] whose event
//! data is `"azl-edge:" ‖ tag ‖ "\0" ‖ content` and whose SHA-256 digest is
//! the SHA-256 of that event data, so a verifier can check every event's data
//! against its digest before trusting it.
use alloc::vec::Vec;

/// Boot configuration: the manifest (identity form) and the kernel cmdline.
pub const PCR_CONFIG: u8 = 8;
/// What runs: the verity root hash and the service table.
pub const PCR_ROOT: u8 = 9;
/// Boot phase markers (initramfs entered, root switched, services ready, shutdown).
pub const PCR_PHASE: u8 = 11;
/// The PCRs a quote covers, in selection order.
pub const QUOTED_PCRS: [u8; 3] = [PCR_CONFIG, PCR_ROOT, PCR_PHASE];

/// TCG event type used for every azl-edge event (EV_IPL, 0x0000000D).
pub const EV_AZL: u32 = 0x0000_000D;
/// TCG event types of the log header (EV_NO_ACTION) — never extended.
pub const EV_NO_ACTION: u32 = 0x0000_0003;

/// Prefix of every azl-edge event's data.
pub const EVENT_PREFIX: &[u8] = b"azl-edge:";

/// One kind of azl-edge measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Content: the manifest's identity bytes (see [`crate::manifest::Manifest::identity_bytes`]).
    Manifest,
    /// Content: the kernel command line, see [`measured_cmdline`].
    Cmdline,
    /// Content: the 32-byte verity root hash of the mounted root.
    RootHash,
    /// Content: the service table file bytes.
    ServiceTable,
    /// Content: empty; the tag names the phase.
    Phase(Phase),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    InitramfsEntered,
    RootSwitched,
    ServicesReady,
    Shutdown,
}

impl Kind {
    pub fn pcr(self) -> u8 {
        match self {
            Kind::Manifest | Kind::Cmdline => PCR_CONFIG,
            Kind::RootHash | Kind::ServiceTable => PCR_ROOT,
            Kind::Phase(_) => PCR_PHASE,
        }
    }

    pub fn tag(self) -> &'static str {
        match self {
            Kind::Manifest => "manifest",
            Kind::Cmdline => "cmdline",
            Kind::RootHash => "verity-root-hash",
            Kind::ServiceTable => "service-table",
            Kind::Phase(Phase::InitramfsEntered) => "phase:initramfs-entered",
            Kind::Phase(Phase::RootSwitched) => "phase:root-switched",
            Kind::Phase(Phase::ServicesReady) => "phase:services-ready",
            Kind::Phase(Phase::Shutdown) => "phase:shutdown",
        }
    }

    /// Parse a tag back (verifiers: unknown tags are rejected).
    pub fn from_tag(tag: &str) -> Option<Kind> {
        Some(match tag {
            "manifest" => Kind::Manifest,
            "cmdline" => Kind::Cmdline,
            "verity-root-hash" => Kind::RootHash,
            "service-table" => Kind::ServiceTable,
            "phase:initramfs-entered" => Kind::Phase(Phase::InitramfsEntered),
            "phase:root-switched" => Kind::Phase(Phase::RootSwitched),
            "phase:services-ready" => Kind::Phase(Phase::ServicesReady),
            "phase:shutdown" => Kind::Phase(Phase::Shutdown),
            _ => return None,
        })
    }
}

/// The event data of a measurement: `"azl-edge:" ‖ tag ‖ "\0" ‖ content`.
pub fn event_data(kind: Kind, content: &[u8]) -> Vec<u8> {
    let tag = kind.tag().as_bytes();
    let mut v = Vec::with_capacity(EVENT_PREFIX.len() + tag.len() + 1 + content.len());
    v.extend_from_slice(EVENT_PREFIX);
    v.extend_from_slice(tag);
    v.push(0);
    v.extend_from_slice(content);
    v
}

/// Split event data back into (kind, content); `None` if it is not an
/// azl-edge event or the tag is unknown.
pub fn parse_event_data(data: &[u8]) -> Option<(Kind, &[u8])> {
    let rest = data.strip_prefix(EVENT_PREFIX)?;
    let nul = rest.iter().position(|&b| b == 0)?;
    let tag = core::str::from_utf8(rest.get(..nul)?).ok()?;
    Some((Kind::from_tag(tag)?, rest.get(nul + 1..)?))
}

/// The content of the [`Kind::Cmdline`] event: the bytes of
/// `/proc/cmdline` ([`crate::paths::PROC_CMDLINE`]) with trailing ASCII
/// whitespace (the kernel's newline, spaces, tabs, CR) removed, and
/// nothing else changed — leading and inner whitespace stay, bytes that
/// are not UTF-8 stay. The build predicts it by passing the command line
/// it configured (with or without a newline) through the same function.
pub fn measured_cmdline(raw: &[u8]) -> &[u8] {
    raw.trim_ascii_end()
}

/// The order a verified (disk) boot measures in; a verifier expects exactly
/// this sequence up to `ServicesReady`.
pub const VERIFIED_BOOT_SEQUENCE: [Kind; 7] = [
    Kind::Phase(Phase::InitramfsEntered),
    Kind::Cmdline,
    Kind::Manifest,
    Kind::RootHash,
    Kind::Phase(Phase::RootSwitched),
    Kind::ServiceTable,
    Kind::Phase(Phase::ServicesReady),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_rule() {
        let want: &[u8] = b"console=ttyAMA0 quiet";
        for raw in [
            &b"console=ttyAMA0 quiet"[..],
            b"console=ttyAMA0 quiet\n",
            b"console=ttyAMA0 quiet \t\r\n",
        ] {
            assert_eq!(measured_cmdline(raw), want, "{raw:?}");
        }
        // Leading and inner whitespace are part of what is measured.
        assert_eq!(measured_cmdline(b" a  b\n"), b" a  b");
        // Not UTF-8: measured as is, not as an empty line.
        assert_eq!(measured_cmdline(b"x=\xff\n"), b"x=\xff");
        // Only ASCII whitespace is trimmed: the kernel splits on nothing else.
        assert_eq!(measured_cmdline("a\u{a0}".as_bytes()), "a\u{a0}".as_bytes());
        assert_eq!(measured_cmdline(b"\n"), b"");
    }

    #[test]
    fn event_data_roundtrip() {
        for k in VERIFIED_BOOT_SEQUENCE
            .iter()
            .copied()
            .chain([Kind::Phase(Phase::Shutdown)])
        {
            let d = event_data(k, b"xyz");
            assert_eq!(parse_event_data(&d), Some((k, &b"xyz"[..])));
            assert_eq!(Kind::from_tag(k.tag()), Some(k));
        }
        assert_eq!(parse_event_data(b"azl-edge:bogus\0x"), None);
        assert_eq!(parse_event_data(b"other"), None);
        assert_eq!(parse_event_data(b"azl-edge:cmdline"), None, "no NUL");
    }
}
