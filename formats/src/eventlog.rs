//! The TCG crypto-agile event log (TCG PC Client Platform Firmware Profile,
//! "TCG_PCR_EVENT2" format): written by PID 1 on the device next to every
//! PCR extend, merged after the firmware's log, and parsed and replayed by
//! the verifier (`imagegen attest verify`). All integers are little-endian.
//!
//! ```text
//! header  TCG_PCR_EVENT (SHA-1 format, once)
//!   pcrIndex u32 = 0 | eventType u32 = EV_NO_ACTION (3) | digest [20] = 0
//!   eventSize u32 | event = TCG_EfiSpecIDEvent:
//!     signature "Spec ID Event03\0" | platformClass u32 | specVersionMinor u8
//!     specVersionMajor u8 | specErrata u8 | uintnSize u8
//!     numberOfAlgorithms u32 | {algorithmId u16, digestSize u16} ...
//!     vendorInfoSize u8 | vendorInfo
//! events  TCG_PCR_EVENT2 (repeated)
//!   pcrIndex u32 | eventType u32 | digests.count u32
//!   {hashAlg u16, digest [size from the header's table]} ... | eventSize u32 | event
//! ```
//!
//! Events are numbered the way `tpm2_eventlog` numbers them: the header is
//! event 0, the first TCG_PCR_EVENT2 is event 1. Only the SHA-256 bank is
//! kept: other digests are skipped using the sizes the header declares.
//! Parsing never panics; malformed input is a [`LogError`] naming the byte
//! offset and what was wrong there.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use crate::manifest::{Digest, Hex};
use crate::measure::{self, Kind, EV_AZL, EV_NO_ACTION};
use alloc::vec::Vec;
use core::fmt;

/// TPM_ALG_SHA1.
pub const TPM_ALG_SHA1: u16 = 0x0004;
/// TPM_ALG_SHA256: the only bank azl-edge extends, logs and replays.
pub const TPM_ALG_SHA256: u16 = 0x000B;
/// The TCG_EfiSpecIDEvent signature of a crypto-agile log.
pub const SPEC_ID_SIGNATURE: [u8; 16] = *b"Spec ID Event03\0";
/// TCG_EfiSpecIDEvent.platformClass: 0 = client platform.
pub const PLATFORM_CLASS_CLIENT: u32 = 0;
/// Data of the EV_NO_ACTION event firmware logs to record the locality
/// TPM2_Startup ran in (it sets PCR 0's initial value).
pub const STARTUP_LOCALITY_SIGNATURE: [u8; 16] = *b"StartupLocality\0";

const SHA256_LEN: usize = 32;
/// TCG_EfiSpecIDEvent up to and including numberOfAlgorithms.
const SPEC_ID_FIXED: usize = 16 + 4 + 4 + 4;

pub use crate::sha256;

/// The event data and its SHA-256 digest for one azl-edge measurement:
/// `data = measure::event_data(kind, content)`, `digest = sha256(data)`.
/// The digest is what PID 1 extends into `kind.pcr()`.
pub fn azl_event(kind: Kind, content: &[u8]) -> (Digest, Vec<u8>) {
    let data = measure::event_data(kind, content);
    (sha256(&data), data)
}

/// `sha256(pcr ‖ digest)`: one TPM2_PCR_Extend of the SHA-256 bank.
pub fn extend(pcr: &Digest, digest: &Digest) -> Digest {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(pcr);
    ctx.update(digest);
    let d = ctx.finish();
    let mut out = [0u8; 32];
    for (o, b) in out.iter_mut().zip(d.as_ref()) {
        *o = *b;
    }
    out
}

/// A log being written: the Spec ID header (SHA-256 only), then one
/// TCG_PCR_EVENT2 per [`EventLog::append`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLog {
    bytes: Vec<u8>,
    events: u32,
}

impl Default for EventLog {
    fn default() -> Self {
        Self::new()
    }
}

impl EventLog {
    /// An empty log: just the header, listing the SHA-256 bank only.
    pub fn new() -> EventLog {
        let mut b = Vec::with_capacity(256);
        put_u32(&mut b, 0); // pcrIndex
        put_u32(&mut b, EV_NO_ACTION);
        b.extend_from_slice(&[0u8; 20]);
        let spec_id_len: u32 = (SPEC_ID_FIXED + 4 + 1) as u32;
        put_u32(&mut b, spec_id_len);
        b.extend_from_slice(&SPEC_ID_SIGNATURE);
        put_u32(&mut b, PLATFORM_CLASS_CLIENT);
        b.push(0); // specVersionMinor
        b.push(2); // specVersionMajor
        b.push(2); // specErrata (PFP revision 1.05 and later)
        b.push(2); // uintnSize: UINTN is 64 bits
        put_u32(&mut b, 1); // numberOfAlgorithms
        put_u16(&mut b, TPM_ALG_SHA256);
        put_u16(&mut b, SHA256_LEN as u16);
        b.push(0); // vendorInfoSize
        EventLog {
            bytes: b,
            events: 0,
        }
    }

    /// Continue an existing log (ours, or one merged after the firmware's);
    /// its header must list the SHA-256 bank with 32-byte digests.
    pub fn from_bytes(bytes: &[u8]) -> Result<EventLog, LogError> {
        let log = parse_log(bytes)?;
        Ok(EventLog {
            bytes: bytes.to_vec(),
            events: log.events.len() as u32,
        })
    }

    /// Append one TCG_PCR_EVENT2 carrying only the SHA-256 digest.
    pub fn append(&mut self, pcr: u8, event_type: u32, sha256_digest: &Digest, data: &[u8]) {
        // An event over 4 GiB cannot be represented; it is cut short, so its
        // digest no longer matches and any verifier rejects it.
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let b = &mut self.bytes;
        put_u32(b, u32::from(pcr));
        put_u32(b, event_type);
        put_u32(b, 1); // digests.count
        put_u16(b, TPM_ALG_SHA256);
        b.extend_from_slice(sha256_digest);
        put_u32(b, len);
        b.extend_from_slice(data.get(..len as usize).unwrap_or(data));
        self.events = self.events.saturating_add(1);
    }

    /// Append an azl-edge measurement (type [`EV_AZL`], data
    /// [`measure::event_data`]) to `kind.pcr()`; returns the digest the
    /// caller extends into that PCR.
    pub fn append_azl(&mut self, kind: Kind, content: &[u8]) -> Digest {
        let (digest, data) = azl_event(kind, content);
        self.append(kind.pcr(), EV_AZL, &digest, &data);
        digest
    }

    /// Number of TCG_PCR_EVENT2 records (the header not counted).
    pub fn len(&self) -> usize {
        self.events as usize
    }

    pub fn is_empty(&self) -> bool {
        self.events == 0
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.bytes.clone()
    }
}

/// One TCG_PCR_EVENT2 of a parsed log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Position as `tpm2_eventlog` counts (the header is 0, so the first
    /// record is 1).
    pub number: u32,
    /// Byte offset of the record in the log.
    pub offset: usize,
    pub pcr: u32,
    pub event_type: u32,
    /// The SHA-256 digest (other banks are skipped).
    pub sha256: Digest,
    pub data: Vec<u8>,
}

/// The Spec ID header of a parsed log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub platform_class: u32,
    /// (specVersionMajor, specVersionMinor, specErrata).
    pub spec_version: (u8, u8, u8),
    pub uintn_size: u8,
    /// (algorithmId, digestSize) in header order.
    pub algorithms: Vec<(u16, u16)>,
    pub vendor_info: Vec<u8>,
    /// Bytes of the header record; records start here.
    pub len: usize,
}

/// A parsed log: its header and its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedLog {
    pub header: Header,
    pub events: Vec<Event>,
}

/// Why bytes are not a well-formed crypto-agile log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogError {
    /// Byte offset in the log where the problem is.
    pub offset: usize,
    pub kind: LogErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogErrorKind {
    /// The log ends inside a field: `need` bytes of `what`, `have` left.
    Truncated {
        what: &'static str,
        need: usize,
        have: usize,
    },
    /// The first record is not a crypto-agile Spec ID header (`what` says
    /// which field is off), e.g. a SHA-1-only TPM 1.2-style log.
    NotSpecId(&'static str),
    /// The header's eventSize disagrees with the Spec ID event it holds.
    SpecIdSize { declared: u32, actual: usize },
    /// The header lists no algorithm.
    NoAlgorithms,
    /// The header lists an algorithm twice.
    DuplicateAlgorithm(u16),
    /// The header gives an algorithm a digest size of 0.
    ZeroDigestSize(u16),
    /// The header does not list SHA-256, or with a size other than 32.
    NoSha256Bank,
    /// An event has more digests than the header has algorithms.
    TooManyDigests { event: u32, count: u32, max: usize },
    /// An event's digest uses an algorithm the header does not list.
    UnknownAlgorithm { event: u32, alg: u16 },
    /// An event carries two digests of one algorithm.
    DuplicateDigest { event: u32, alg: u16 },
    /// An event carries no SHA-256 digest.
    MissingSha256 { event: u32 },
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: ", self.offset)?;
        match &self.kind {
            LogErrorKind::Truncated { what, need, have } => write!(
                f,
                "log ends inside {what} (needs {need} bytes, {have} left)"
            ),
            LogErrorKind::NotSpecId(what) => {
                write!(f, "not a crypto-agile (\"Spec ID Event03\") log: {what}")
            }
            LogErrorKind::SpecIdSize { declared, actual } => write!(
                f,
                "Spec ID event size {declared} does not match its content ({actual} bytes)"
            ),
            LogErrorKind::NoAlgorithms => f.write_str("Spec ID header lists no algorithm"),
            LogErrorKind::DuplicateAlgorithm(a) => {
                write!(f, "Spec ID header lists algorithm 0x{a:04x} twice")
            }
            LogErrorKind::ZeroDigestSize(a) => {
                write!(
                    f,
                    "Spec ID header gives algorithm 0x{a:04x} a digest size of 0"
                )
            }
            LogErrorKind::NoSha256Bank => {
                f.write_str("Spec ID header does not list SHA-256 (0x000b) with 32-byte digests")
            }
            LogErrorKind::TooManyDigests { event, count, max } => write!(
                f,
                "event {event}: {count} digests, but the header lists {max} algorithms"
            ),
            LogErrorKind::UnknownAlgorithm { event, alg } => write!(
                f,
                "event {event}: digest algorithm 0x{alg:04x} is not in the header"
            ),
            LogErrorKind::DuplicateDigest { event, alg } => {
                write!(f, "event {event}: two digests of algorithm 0x{alg:04x}")
            }
            LogErrorKind::MissingSha256 { event } => {
                write!(f, "event {event}: no SHA-256 digest")
            }
        }
    }
}

/// Why two logs cannot be merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeError {
    Firmware(LogError),
    Ours(LogError),
    /// Our log uses an algorithm (id, size) the firmware header lacks.
    Incompatible {
        alg: u16,
        size: u16,
    },
}

impl fmt::Display for MergeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Firmware(e) => write!(f, "firmware event log: {e}"),
            Self::Ours(e) => write!(f, "azl-edge event log: {e}"),
            Self::Incompatible { alg, size } => write!(
                f,
                "the firmware log's header lacks algorithm 0x{alg:04x} with {size}-byte digests"
            ),
        }
    }
}

fn err_at(offset: usize, kind: LogErrorKind) -> LogError {
    LogError { offset, kind }
}

fn put_u16(b: &mut Vec<u8>, v: u16) {
    b.extend_from_slice(&v.to_le_bytes());
}

fn put_u32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_le_bytes());
}

/// A bounds-checked little-endian cursor.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], LogError> {
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        let out = rest.get(..n).ok_or(LogError {
            offset: self.pos,
            kind: LogErrorKind::Truncated {
                what,
                need: n,
                have: rest.len(),
            },
        })?;
        self.pos += n;
        Ok(out)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, LogError> {
        Ok(u8::from_le_bytes(self.array(what)?))
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, LogError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, LogError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], LogError> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }
}

fn parse_header(r: &mut Reader<'_>) -> Result<Header, LogError> {
    let start = r.pos;
    let pcr = r.u32("the header's pcrIndex")?;
    if pcr != 0 {
        return Err(err_at(
            start,
            LogErrorKind::NotSpecId("header pcrIndex is not 0"),
        ));
    }
    let ty = r.u32("the header's eventType")?;
    if ty != EV_NO_ACTION {
        return Err(err_at(
            start + 4,
            LogErrorKind::NotSpecId("header eventType is not EV_NO_ACTION"),
        ));
    }
    let digest = r.take(20, "the header's SHA-1 digest")?;
    if digest.iter().any(|&b| b != 0) {
        return Err(err_at(
            start + 8,
            LogErrorKind::NotSpecId("header digest is not zero"),
        ));
    }
    let size_at = r.pos;
    let declared = r.u32("the header's eventSize")?;
    let body_at = r.pos;
    let sig = r.take(16, "the Spec ID signature")?;
    if sig != SPEC_ID_SIGNATURE {
        return Err(err_at(
            body_at,
            LogErrorKind::NotSpecId("signature is not \"Spec ID Event03\""),
        ));
    }
    let platform_class = r.u32("platformClass")?;
    let minor = r.u8("specVersionMinor")?;
    let major = r.u8("specVersionMajor")?;
    let errata = r.u8("specErrata")?;
    let uintn_size = r.u8("uintnSize")?;
    let count_at = r.pos;
    let count = r.u32("numberOfAlgorithms")?;
    if count == 0 {
        return Err(err_at(count_at, LogErrorKind::NoAlgorithms));
    }
    // Every algorithm takes 4 bytes of the declared event: bound the count
    // by it before looping.
    if u64::from(count) * 4 + SPEC_ID_FIXED as u64 + 1 > u64::from(declared) {
        return Err(err_at(
            size_at,
            LogErrorKind::SpecIdSize {
                declared,
                actual: SPEC_ID_FIXED + count as usize * 4 + 1,
            },
        ));
    }
    // The declared size may be a lie: bound the count by the bytes present
    // too, before allocating for it.
    let list_len = (count as usize).saturating_mul(4);
    let have = r.bytes.len().saturating_sub(r.pos);
    if list_len > have {
        return Err(err_at(
            r.pos,
            LogErrorKind::Truncated {
                what: "the Spec ID algorithm list",
                need: list_len,
                have,
            },
        ));
    }
    let mut algorithms: Vec<(u16, u16)> = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let at = r.pos;
        let alg = r.u16("an algorithm id")?;
        let size = r.u16("a digest size")?;
        if algorithms.iter().any(|&(a, _)| a == alg) {
            return Err(err_at(at, LogErrorKind::DuplicateAlgorithm(alg)));
        }
        if size == 0 {
            return Err(err_at(at, LogErrorKind::ZeroDigestSize(alg)));
        }
        algorithms.push((alg, size));
    }
    let vendor_size = r.u8("vendorInfoSize")?;
    let vendor_info = r.take(vendor_size.into(), "vendorInfo")?.to_vec();
    let actual = r.pos - body_at;
    if actual != declared as usize {
        return Err(err_at(
            size_at,
            LogErrorKind::SpecIdSize { declared, actual },
        ));
    }
    if !algorithms
        .iter()
        .any(|&(a, s)| a == TPM_ALG_SHA256 && usize::from(s) == SHA256_LEN)
    {
        return Err(err_at(count_at, LogErrorKind::NoSha256Bank));
    }
    Ok(Header {
        platform_class,
        spec_version: (major, minor, errata),
        uintn_size,
        algorithms,
        vendor_info,
        len: r.pos - start,
    })
}

fn parse_event(r: &mut Reader<'_>, header: &Header, number: u32) -> Result<Event, LogError> {
    let offset = r.pos;
    let pcr = r.u32("an event's pcrIndex")?;
    let event_type = r.u32("an event's eventType")?;
    let count_at = r.pos;
    let count = r.u32("an event's digest count")?;
    if count as usize > header.algorithms.len() {
        return Err(err_at(
            count_at,
            LogErrorKind::TooManyDigests {
                event: number,
                count,
                max: header.algorithms.len(),
            },
        ));
    }
    let mut seen: Vec<u16> = Vec::with_capacity(count as usize);
    let mut sha256 = None;
    for _ in 0..count {
        let at = r.pos;
        let alg = r.u16("a digest's algorithm id")?;
        let size = header
            .algorithms
            .iter()
            .find(|&&(a, _)| a == alg)
            .map(|&(_, s)| s)
            .ok_or(LogError {
                offset: at,
                kind: LogErrorKind::UnknownAlgorithm { event: number, alg },
            })?;
        if seen.contains(&alg) {
            return Err(err_at(
                at,
                LogErrorKind::DuplicateDigest { event: number, alg },
            ));
        }
        seen.push(alg);
        let digest = r.take(size.into(), "a digest")?;
        if alg == TPM_ALG_SHA256 {
            let mut d = [0u8; 32];
            if digest.len() != d.len() {
                // The header check guarantees 32; stay safe anyway.
                return Err(err_at(at, LogErrorKind::NoSha256Bank));
            }
            d.copy_from_slice(digest);
            sha256 = Some(d);
        }
    }
    let sha256 = sha256.ok_or(LogError {
        offset,
        kind: LogErrorKind::MissingSha256 { event: number },
    })?;
    let size = r.u32("an event's eventSize")?;
    let data = r.take(size as usize, "an event's data")?.to_vec();
    Ok(Event {
        number,
        offset,
        pcr,
        event_type,
        sha256,
        data,
    })
}

/// Parse a whole log: the Spec ID header (which may list several banks, as
/// firmware logs do) and every record up to the last byte.
pub fn parse_log(bytes: &[u8]) -> Result<ParsedLog, LogError> {
    let mut r = Reader { bytes, pos: 0 };
    let header = parse_header(&mut r)?;
    let mut events = Vec::new();
    let mut number: u32 = 1;
    while !r.at_end() {
        events.push(parse_event(&mut r, &header, number)?);
        number = number.saturating_add(1);
    }
    Ok(ParsedLog { header, events })
}

/// Parse a log into its records (the header is checked, not returned).
pub fn parse(bytes: &[u8]) -> Result<Vec<Event>, LogError> {
    parse_log(bytes).map(|l| l.events)
}

/// One log out of the firmware's (`/sys/kernel/security/tpm0/
/// binary_bios_measurements`) and ours: the firmware's header and records,
/// then our records. Without a firmware log (empty), ours as is. Both are
/// validated; our algorithms must appear in the firmware header with the
/// same digest sizes.
pub fn merge(firmware: &[u8], ours: &[u8]) -> Result<Vec<u8>, MergeError> {
    let our_log = parse_log(ours).map_err(MergeError::Ours)?;
    if firmware.is_empty() {
        return Ok(ours.to_vec());
    }
    let fw_log = parse_log(firmware).map_err(MergeError::Firmware)?;
    for &(alg, size) in &our_log.header.algorithms {
        if !fw_log.header.algorithms.contains(&(alg, size)) {
            return Err(MergeError::Incompatible { alg, size });
        }
    }
    let records = ours.get(our_log.header.len..).unwrap_or_default();
    let mut out = Vec::with_capacity(firmware.len() + records.len());
    out.extend_from_slice(firmware);
    out.extend_from_slice(records);
    Ok(out)
}

/// Replay the SHA-256 bank of `pcrs` (in the order given) from `events`:
/// every PCR starts at zero (PCR 0 at the locality a StartupLocality event
/// records), then `pcr = sha256(pcr ‖ digest)` for each event on it.
/// EV_NO_ACTION events are never extended.
pub fn replay(events: &[Event], pcrs: &[u8]) -> Vec<(u8, Digest)> {
    pcrs.iter()
        .map(|&pcr| {
            let mut value = [0u8; 32];
            for e in events.iter().filter(|e| e.pcr == u32::from(pcr)) {
                if e.event_type == EV_NO_ACTION {
                    if pcr == 0 {
                        if let Some(loc) = startup_locality(&e.data) {
                            value = [0u8; 32];
                            value[31] = loc;
                        }
                    }
                    continue;
                }
                value = extend(&value, &e.sha256);
            }
            (pcr, value)
        })
        .collect()
}

fn startup_locality(data: &[u8]) -> Option<u8> {
    match data.split_first_chunk::<16>() {
        Some((sig, [loc])) if *sig == STARTUP_LOCALITY_SIGNATURE => Some(*loc),
        _ => None,
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "event {} PCR {} type 0x{:08x} sha256 {}",
            self.number,
            self.pcr,
            self.event_type,
            Hex(&self.sha256)
        )
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::measure::{Phase, VERIFIED_BOOT_SEQUENCE};
    use alloc::vec;

    fn sample_log() -> EventLog {
        let mut log = EventLog::new();
        for (i, k) in VERIFIED_BOOT_SEQUENCE.iter().enumerate() {
            log.append_azl(*k, &vec![i as u8; i * 3]);
        }
        log
    }

    #[test]
    fn header_layout() {
        let b = EventLog::new().to_bytes();
        assert_eq!(b.len(), 32 + 33);
        assert_eq!(&b[..8], &[0, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(u32::from_le_bytes(b[28..32].try_into().unwrap()), 33);
        assert_eq!(&b[32..48], b"Spec ID Event03\0");
        // minor 0, major 2, errata 2, uintnSize 2, one algorithm: SHA-256/32.
        assert_eq!(&b[52..56], &[0, 2, 2, 2]);
        assert_eq!(&b[56..64], &[1, 0, 0, 0, 0x0b, 0, 32, 0]);
        assert_eq!(b[64], 0);
        let log = parse_log(&b).unwrap();
        assert!(log.events.is_empty());
        assert_eq!(log.header.algorithms, vec![(TPM_ALG_SHA256, 32)]);
        assert_eq!(log.header.len, b.len());
    }

    #[test]
    fn roundtrip() {
        let log = sample_log();
        assert_eq!(log.len(), VERIFIED_BOOT_SEQUENCE.len());
        let events = parse(log.as_bytes()).unwrap();
        assert_eq!(events.len(), VERIFIED_BOOT_SEQUENCE.len());
        for (i, (e, k)) in events.iter().zip(VERIFIED_BOOT_SEQUENCE).enumerate() {
            assert_eq!(e.number, i as u32 + 1);
            assert_eq!(e.pcr, u32::from(k.pcr()));
            assert_eq!(e.event_type, EV_AZL);
            assert_eq!(e.sha256, sha256(&e.data));
            let (kind, content) = measure::parse_event_data(&e.data).unwrap();
            assert_eq!(kind, k);
            assert_eq!(content, &vec![i as u8; i * 3][..]);
        }
        // Continuing a log gives the same bytes as writing it in one go.
        let mut cont = EventLog::from_bytes(log.as_bytes()).unwrap();
        assert_eq!(cont.len(), log.len());
        cont.append_azl(Kind::Phase(Phase::Shutdown), b"");
        let mut whole = log.clone();
        whole.append_azl(Kind::Phase(Phase::Shutdown), b"");
        assert_eq!(cont, whole);
    }

    #[test]
    fn replay_matches_extend_chain() {
        let log = sample_log();
        let events = parse(log.as_bytes()).unwrap();
        let pcrs = replay(&events, &measure::QUOTED_PCRS);
        for (pcr, value) in &pcrs {
            let mut want = [0u8; 32];
            for e in events.iter().filter(|e| e.pcr == u32::from(*pcr)) {
                let mut cat = want.to_vec();
                cat.extend_from_slice(&e.sha256);
                want = sha256(&cat);
            }
            assert_eq!(*value, want, "PCR {pcr}");
            assert_ne!(*value, [0; 32]);
        }
        // An untouched PCR stays zero; EV_NO_ACTION is never extended.
        let mut l = EventLog::new();
        l.append(10, EV_NO_ACTION, &[7; 32], b"x");
        assert_eq!(
            replay(&parse(l.as_bytes()).unwrap(), &[10, 12]),
            vec![(10, [0; 32]), (12, [0; 32])]
        );
    }

    /// A firmware-style header: SHA-1 + SHA-256 + SHA-384, vendor info.
    fn firmware_log() -> Vec<u8> {
        let mut b = Vec::new();
        put_u32(&mut b, 0);
        put_u32(&mut b, EV_NO_ACTION);
        b.extend_from_slice(&[0; 20]);
        let algs: [(u16, u16); 3] = [(TPM_ALG_SHA1, 20), (TPM_ALG_SHA256, 32), (0x000C, 48)];
        let vendor = b"vend";
        put_u32(
            &mut b,
            (SPEC_ID_FIXED + algs.len() * 4 + 1 + vendor.len()) as u32,
        );
        b.extend_from_slice(&SPEC_ID_SIGNATURE);
        put_u32(&mut b, 0);
        b.extend_from_slice(&[0, 2, 0, 2]);
        put_u32(&mut b, algs.len() as u32);
        for (a, s) in algs {
            put_u16(&mut b, a);
            put_u16(&mut b, s);
        }
        b.push(vendor.len() as u8);
        b.extend_from_slice(vendor);
        // StartupLocality 3 (EV_NO_ACTION, PCR 0, zero digests of every bank).
        let mut ev = |pcr: u32, ty: u32, fill: u8, data: &[u8], order: &[usize]| {
            put_u32(&mut b, pcr);
            put_u32(&mut b, ty);
            put_u32(&mut b, order.len() as u32);
            for &i in order {
                let (a, s) = algs[i];
                put_u16(&mut b, a);
                b.extend(core::iter::repeat_n(fill, s.into()));
            }
            put_u32(&mut b, data.len() as u32);
            b.extend_from_slice(data);
        };
        let mut loc = STARTUP_LOCALITY_SIGNATURE.to_vec();
        loc.push(3);
        ev(0, EV_NO_ACTION, 0, &loc, &[0, 1, 2]);
        ev(0, 0x8000_0008, 0x11, b"firmware blob", &[0, 1, 2]);
        // Digests in another order than the header's.
        ev(4, 0x8000_0003, 0x22, b"bootloader", &[2, 0, 1]);
        ev(7, 0x8000_0001, 0x33, b"", &[1, 0, 2]);
        b
    }

    #[test]
    fn multi_algorithm_header() {
        let fw = firmware_log();
        let log = parse_log(&fw).unwrap();
        assert_eq!(log.header.algorithms.len(), 3);
        assert_eq!(log.header.vendor_info, b"vend");
        let e = &log.events;
        assert_eq!(e.len(), 4);
        assert_eq!(
            (e[1].pcr, e[1].sha256, &e[1].data[..]),
            (0, [0x11; 32], &b"firmware blob"[..])
        );
        assert_eq!((e[2].pcr, e[2].sha256), (4, [0x22; 32]));
        assert_eq!((e[3].pcr, e[3].sha256, e[3].data.len()), (7, [0x33; 32], 0));
        // PCR 0 starts at locality 3.
        let mut start = [0u8; 32];
        start[31] = 3;
        assert_eq!(replay(e, &[0]), vec![(0, extend(&start, &[0x11; 32]))]);
    }

    #[test]
    fn merge_firmware_then_ours() {
        let fw = firmware_log();
        let ours = sample_log();
        let merged = merge(&fw, ours.as_bytes()).unwrap();
        assert_eq!(&merged[..fw.len()], &fw[..]);
        let all = parse(&merged).unwrap();
        let our_events = parse(ours.as_bytes()).unwrap();
        assert_eq!(all.len(), 4 + our_events.len());
        for (m, o) in all[4..].iter().zip(&our_events) {
            assert_eq!(
                (m.pcr, m.event_type, m.sha256, &m.data),
                (o.pcr, o.event_type, o.sha256, &o.data)
            );
            assert_eq!(m.number, o.number + 4);
        }
        assert_eq!(
            replay(&all, &measure::QUOTED_PCRS),
            replay(&our_events, &measure::QUOTED_PCRS)
        );
        // No firmware log: ours as is.
        assert_eq!(merge(&[], ours.as_bytes()).unwrap(), ours.to_bytes());
        // Bad inputs are named.
        assert!(matches!(
            merge(&fw[..fw.len() - 1], ours.as_bytes()),
            Err(MergeError::Firmware(_))
        ));
        assert!(matches!(
            merge(&fw, &ours.as_bytes()[..40]),
            Err(MergeError::Ours(_))
        ));
        // A SHA-1-only firmware header cannot take our SHA-256 records.
        let mut sha1_only = EventLog::new().to_bytes();
        sha1_only[60..64].copy_from_slice(&[0x04, 0, 20, 0]);
        assert_eq!(
            parse(&sha1_only).unwrap_err().kind,
            LogErrorKind::NoSha256Bank
        );
    }

    #[test]
    fn truncation_at_every_byte_is_an_error() {
        for bytes in [sample_log().to_bytes(), firmware_log()] {
            let full = parse(&bytes).unwrap();
            for cut in 0..bytes.len() {
                match parse(&bytes[..cut]) {
                    Err(e) => {
                        assert!(e.offset <= cut, "cut {cut}: {e}");
                        let _ = alloc::format!("{e}");
                    }
                    // Cutting exactly between records leaves a shorter, valid log.
                    Ok(events) => {
                        assert!(events.len() < full.len(), "cut {cut}");
                        assert_eq!(events[..], full[..events.len()]);
                    }
                }
            }
        }
    }

    #[test]
    fn flipped_bytes_never_panic() {
        for bytes in [sample_log().to_bytes(), firmware_log()] {
            for i in 0..bytes.len() {
                for x in [0x01u8, 0x80, 0xff] {
                    let mut b = bytes.clone();
                    b[i] ^= x;
                    let _ = parse(&b);
                }
            }
        }
    }

    #[test]
    fn precise_errors() {
        let good = sample_log().to_bytes();
        let err = |b: &[u8]| parse(b).unwrap_err();
        assert_eq!(
            err(&[]),
            LogError {
                offset: 0,
                kind: LogErrorKind::Truncated {
                    what: "the header's pcrIndex",
                    need: 4,
                    have: 0
                }
            }
        );
        let mut b = good.clone();
        b[4] = 1;
        assert_eq!(
            err(&b).kind,
            LogErrorKind::NotSpecId("header eventType is not EV_NO_ACTION")
        );
        let mut b = good.clone();
        b[40] = b'X';
        assert_eq!(err(&b).offset, 32);
        let mut b = good.clone();
        b[28] = 40; // eventSize
        assert!(matches!(
            err(&b).kind,
            LogErrorKind::SpecIdSize {
                declared: 40,
                actual: 33
            }
        ));
        let mut b = good.clone();
        b[56] = 0; // numberOfAlgorithms
        assert_eq!(
            err(&b),
            LogError {
                offset: 56,
                kind: LogErrorKind::NoAlgorithms
            }
        );
        let mut b = good.clone();
        b[56] = 0xff; // huge algorithm count is bounded by eventSize
        assert!(matches!(err(&b).kind, LogErrorKind::SpecIdSize { .. }));
        // First record starts at 65: count, then algorithm id.
        let mut b = good.clone();
        b[73] = 2;
        assert_eq!(
            err(&b),
            LogError {
                offset: 73,
                kind: LogErrorKind::TooManyDigests {
                    event: 1,
                    count: 2,
                    max: 1
                }
            }
        );
        let mut b = good.clone();
        b[77] = 0x04;
        assert_eq!(
            err(&b),
            LogError {
                offset: 77,
                kind: LogErrorKind::UnknownAlgorithm {
                    event: 1,
                    alg: 0x0004
                }
            }
        );
        let mut b = good.clone();
        b[73] = 0;
        assert_eq!(err(&b).kind, LogErrorKind::MissingSha256 { event: 1 });
        let mut b = good.clone();
        b.truncate(b.len() - 1);
        let e = err(&b);
        assert!(
            matches!(
                e.kind,
                LogErrorKind::Truncated {
                    what: "an event's data",
                    ..
                }
            ),
            "{e}"
        );
        assert!(alloc::format!("{e}").starts_with("at byte "));
    }
}
