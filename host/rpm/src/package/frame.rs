//! The framing of an RPM file — lead, signature header, header — checked
//! before the `rpm` crate parses it.
//!
//! Why a check of our own in front of a well-kept crate: the `rpm` crate
//! (0.23) trusts each index entry's offset and count. A fuzzed entry offset
//! past its data store panicked in its header parser (CI's fuzz smoke,
//! target `rpm_package`), and a count of 2³² numbers makes it reserve
//! gigabytes before reading one. So no byte reaches it unless every entry
//! of both headers lies inside its own store, by the limits rpm itself
//! applies (`lib/header_internal.h`: at most 65,535 index entries,
//! `hdrchkTags`; at most 256 MiB of data, `hdrchkData`).
//!
//! Layout (all integers big-endian): a 96-byte lead starting `ed ab ee db`;
//! the signature header — magic `8e ad e8 01`, 4 reserved bytes, entry
//! count, store size, 16-byte entries (tag, type, offset, count), the
//! store — padded to a multiple of 8; the header in the same form,
//! unpadded; then the payload.

/// The lead's size and magic.
const LEAD_SIZE: usize = 96;
const LEAD_MAGIC: [u8; 4] = [0xed, 0xab, 0xee, 0xdb];
/// A header's magic and version byte.
const HEADER_MAGIC: [u8; 4] = [0x8e, 0xad, 0xe8, 0x01];
/// Magic, reserved, entry count, store size.
const INTRO_SIZE: usize = 16;
const ENTRY_SIZE: usize = 16;
/// rpm's `hdrchkTags`.
pub const MAX_ENTRIES: u32 = 0xffff;
/// rpm's `hdrchkData`.
pub const MAX_STORE: u32 = 0x0fff_ffff;

/// Which of the two headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Signature,
    Header,
}

impl std::fmt::Display for Which {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Which::Signature => "signature header",
            Which::Header => "header",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("shorter than an RPM lead ({len} of {LEAD_SIZE} bytes)")]
    ShortLead { len: usize },
    #[error("no RPM lead magic at offset 0")]
    LeadMagic,
    #[error("{which} at offset {at}: ends early ({need} bytes needed, {have} left)")]
    Short {
        which: Which,
        at: usize,
        need: u64,
        have: usize,
    },
    #[error("{which} at offset {at}: no header magic")]
    Magic { which: Which, at: usize },
    #[error("{which} at offset {at}: {count} index entries (rpm allows at most {MAX_ENTRIES})")]
    TooManyEntries { which: Which, at: usize, count: u32 },
    #[error("{which} at offset {at}: a {size}-byte data store (rpm allows at most {MAX_STORE})")]
    StoreTooLarge { which: Which, at: usize, size: u32 },
    #[error("{which}, entry {index} (tag {tag}): unknown data type {ty}")]
    Type {
        which: Which,
        index: u32,
        tag: u32,
        ty: u32,
    },
    #[error("{which}, entry {index} (tag {tag}): a string entry with count {count} (must be 1)")]
    StringCount {
        which: Which,
        index: u32,
        tag: u32,
        count: u32,
    },
    #[error("{which}, entry {index} (tag {tag}): data at {offset} (+{len}) lies outside its {store}-byte store")]
    Outside {
        which: Which,
        index: u32,
        tag: u32,
        offset: u32,
        len: u64,
        store: u32,
    },
    #[error("{which}, entry {index} (tag {tag}): {count} strings at {offset} are not all NUL-terminated inside the store")]
    Unterminated {
        which: Which,
        index: u32,
        tag: u32,
        offset: u32,
        count: u32,
    },
}

/// Where the payload starts, once the framing holds.
pub fn check(bytes: &[u8]) -> Result<usize, FrameError> {
    if bytes.len() < LEAD_SIZE {
        return Err(FrameError::ShortLead { len: bytes.len() });
    }
    if !bytes.starts_with(&LEAD_MAGIC) {
        return Err(FrameError::LeadMagic);
    }
    let sig_end = header(bytes, LEAD_SIZE, Which::Signature)?;
    let padded = sig_end.next_multiple_of(8);
    if padded > bytes.len() {
        return Err(FrameError::Short {
            which: Which::Signature,
            at: LEAD_SIZE,
            need: (padded - LEAD_SIZE) as u64,
            have: bytes.len() - LEAD_SIZE,
        });
    }
    header(bytes, padded, Which::Header)
}

/// One header at `at`; returns the offset just past its store.
fn header(bytes: &[u8], at: usize, which: Which) -> Result<usize, FrameError> {
    let rest = bytes.get(at..).unwrap_or_default();
    let short = |need: u64| FrameError::Short {
        which,
        at,
        need,
        have: rest.len(),
    };
    let intro = rest.get(..INTRO_SIZE).ok_or(short(INTRO_SIZE as u64))?;
    if !intro.starts_with(&HEADER_MAGIC) {
        return Err(FrameError::Magic { which, at });
    }
    let count = be32(intro, 8);
    let size = be32(intro, 12);
    if count > MAX_ENTRIES {
        return Err(FrameError::TooManyEntries { which, at, count });
    }
    if size > MAX_STORE {
        return Err(FrameError::StoreTooLarge { which, at, size });
    }
    let index_len = count as usize * ENTRY_SIZE;
    let total = INTRO_SIZE + index_len + size as usize;
    let (index, store) = rest
        .get(INTRO_SIZE..total)
        .ok_or(short(total as u64))?
        .split_at(index_len);
    for (i, raw) in index.chunks_exact(ENTRY_SIZE).enumerate() {
        entry(which, i as u32, raw, store)?;
    }
    Ok(at + total)
}

/// One index entry: a known type whose data lies inside `store`.
fn entry(which: Which, index: u32, raw: &[u8], store: &[u8]) -> Result<(), FrameError> {
    let (tag, ty, offset, count) = (be32(raw, 0), be32(raw, 4), be32(raw, 8), be32(raw, 12));
    let outside = |len: u64| FrameError::Outside {
        which,
        index,
        tag,
        offset,
        len,
        store: store.len() as u32,
    };
    let from = store.get(offset as usize..).ok_or(outside(0))?;
    let width: u64 = match ty {
        0 => 0,         // NULL
        1 | 2 | 7 => 1, // CHAR, INT8, BIN
        3 => 2,         // INT16
        4 => 4,         // INT32
        5 => 8,         // INT64
        6 | 8 | 9 => {
            // STRING, STRING_ARRAY, I18NSTRING
            if ty == 6 && count != 1 {
                return Err(FrameError::StringCount {
                    which,
                    index,
                    tag,
                    count,
                });
            }
            return strings(from, count).ok_or(FrameError::Unterminated {
                which,
                index,
                tag,
                offset,
                count,
            });
        }
        _ => {
            return Err(FrameError::Type {
                which,
                index,
                tag,
                ty,
            })
        }
    };
    let len = width * u64::from(count);
    if len > from.len() as u64 {
        return Err(outside(len));
    }
    Ok(())
}

/// `count` NUL-terminated strings at the start of `from`.
fn strings(mut from: &[u8], count: u32) -> Option<()> {
    // Each string takes at least its NUL: more strings than bytes cannot fit.
    if count as usize > from.len() {
        return None;
    }
    for _ in 0..count {
        let nul = from.iter().position(|&b| b == 0)?;
        from = from.get(nul + 1..)?;
    }
    Some(())
}

/// The big-endian u32 at `at`; callers pass slices of known length (0 past the end).
fn be32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|w| w.try_into().ok())
        .map_or(0, u32::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header with the given entries (tag, type, offset, count) and store.
    fn hdr(entries: &[(u32, u32, u32, u32)], store: &[u8]) -> Vec<u8> {
        let mut out = HEADER_MAGIC.to_vec();
        out.extend([0; 4]);
        out.extend((entries.len() as u32).to_be_bytes());
        out.extend((store.len() as u32).to_be_bytes());
        for &(t, ty, o, c) in entries {
            for v in [t, ty, o, c] {
                out.extend(v.to_be_bytes());
            }
        }
        out.extend(store);
        out
    }

    fn rpm(sig: &[u8], header: &[u8]) -> Vec<u8> {
        let mut out = LEAD_MAGIC.to_vec();
        out.resize(LEAD_SIZE, 0);
        out.extend(sig);
        out.resize(out.len().next_multiple_of(8), 0);
        out.extend(header);
        out.extend(b"payload");
        out
    }

    fn good_sig() -> Vec<u8> {
        hdr(&[(1000, 4, 0, 1)], &[0, 0, 0, 9, 0xaa])
    }

    #[test]
    fn a_well_formed_frame_gives_the_payload_offset() {
        let h = hdr(
            &[(1000, 6, 0, 1), (1001, 8, 2, 2), (1002, 3, 6, 2)],
            b"a\0b\0c\0\0\x01\0\x02",
        );
        let bytes = rpm(&good_sig(), &h);
        let at = check(&bytes).unwrap();
        assert_eq!(&bytes[at..], b"payload");
    }

    #[test]
    fn entries_outside_their_store_are_refused() {
        // The CI fuzz crash: an offset far past the store.
        let h = hdr(&[(1000, 6, 470_024_192, 1)], b"a\0");
        let e = check(&rpm(&good_sig(), &h)).unwrap_err();
        assert!(
            matches!(
                e,
                FrameError::Outside {
                    offset: 470_024_192,
                    ..
                }
            ),
            "{e}"
        );
        // A count of numbers that does not fit (would reserve 32 GiB).
        let h = hdr(&[(1000, 5, 0, u32::MAX)], &[0; 8]);
        let e = check(&rpm(&good_sig(), &h)).unwrap_err();
        assert!(matches!(e, FrameError::Outside { .. }), "{e}");
        // One byte short.
        let h = hdr(&[(1000, 4, 1, 1)], &[0; 4]);
        assert!(check(&rpm(&good_sig(), &h)).is_err());
    }

    #[test]
    fn strings_must_end_inside_the_store() {
        let h = hdr(&[(1000, 6, 0, 1)], b"abc");
        let e = check(&rpm(&good_sig(), &h)).unwrap_err();
        assert!(matches!(e, FrameError::Unterminated { .. }), "{e}");
        let h = hdr(&[(1000, 8, 0, 3)], b"a\0b\0");
        assert!(matches!(
            check(&rpm(&good_sig(), &h)),
            Err(FrameError::Unterminated { .. })
        ));
        let h = hdr(&[(1000, 8, 0, u32::MAX)], b"a\0");
        assert!(check(&rpm(&good_sig(), &h)).is_err());
        let h = hdr(&[(1000, 6, 0, 2)], b"a\0b\0");
        assert!(matches!(
            check(&rpm(&good_sig(), &h)),
            Err(FrameError::StringCount { count: 2, .. })
        ));
    }

    #[test]
    fn rpms_limits_types_and_truncation_are_enforced() {
        let h = hdr(&[(1000, 10, 0, 1)], b"a\0");
        assert!(matches!(
            check(&rpm(&good_sig(), &h)),
            Err(FrameError::Type { ty: 10, .. })
        ));
        let mut h = hdr(&[], &[]);
        h[8..12].copy_from_slice(&0x1_0000u32.to_be_bytes());
        assert!(matches!(
            check(&rpm(&good_sig(), &h)),
            Err(FrameError::TooManyEntries { .. })
        ));
        let mut h = hdr(&[], &[]);
        h[12..16].copy_from_slice(&0x1000_0000u32.to_be_bytes());
        assert!(matches!(
            check(&rpm(&good_sig(), &h)),
            Err(FrameError::StoreTooLarge { .. })
        ));
        let bytes = rpm(&good_sig(), &hdr(&[(1000, 6, 0, 1)], b"abc\0"));
        for len in [0, 50, LEAD_SIZE, LEAD_SIZE + 20, bytes.len() - 12] {
            assert!(check(&bytes[..len]).is_err(), "{len}");
        }
        let mut bad = bytes.clone();
        bad[LEAD_SIZE] = 0;
        assert!(matches!(check(&bad), Err(FrameError::Magic { .. })));
        bad = bytes;
        bad[0] = 0;
        assert_eq!(check(&bad), Err(FrameError::LeadMagic));
    }
}
