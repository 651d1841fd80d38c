//! The attestation nonce as people and scripts type it: `initctl attest
//! --nonce HEX` on the device and `imagegen attest verify --nonce HEX` on
//! the host read it with the same [`parse_hex`], so a nonce one side takes
//! the other takes too.
//!
//! The rule: surrounding ASCII whitespace is ignored; one optional `0x` or
//! `0X` prefix is accepted (what `tpm2_quote -q` and most tools print);
//! then an even number of hex digits, either case, nothing else; the
//! decoded nonce is [`MIN_LEN`]..=[`MAX_LEN`] bytes.
use alloc::vec::Vec;
use core::fmt;

/// Shortest nonce: 8 bytes, so a verifier's nonces do not repeat by chance.
pub const MIN_LEN: usize = 8;
/// Longest nonce: TPM2B_DATA (the quote's qualifyingData) holds at most a
/// SHA-512 digest's worth.
pub const MAX_LEN: usize = 64;

/// Why a string is not a nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceError {
    /// Nothing but whitespace (and perhaps `0x`).
    Empty,
    /// An odd number of hex digits.
    OddLength { digits: usize },
    /// `byte` at `offset` (in the string as given) is not a hex digit.
    NotHex { offset: usize, byte: u8 },
    /// Decodes to `len` bytes, fewer than [`MIN_LEN`].
    TooShort { len: usize },
    /// Decodes to `len` bytes, more than [`MAX_LEN`].
    TooLong { len: usize },
}

impl fmt::Display for NonceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("nonce is empty"),
            Self::OddLength { digits } => {
                write!(f, "nonce has an odd number of hex digits ({digits})")
            }
            Self::NotHex { offset, byte } => write!(
                f,
                "nonce character {:?} at offset {offset} is not a hex digit",
                char::from(*byte)
            ),
            Self::TooShort { len } => {
                write!(
                    f,
                    "nonce is {len} bytes; use at least {MIN_LEN} fresh random bytes"
                )
            }
            Self::TooLong { len } => {
                write!(f, "nonce is {len} bytes; at most {MAX_LEN} fit a quote")
            }
        }
    }
}

impl core::error::Error for NonceError {}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Parse a nonce by the rule in the module documentation. Length is
/// checked before anything is allocated.
pub fn parse_hex(s: &str) -> Result<Vec<u8>, NonceError> {
    let b = s.as_bytes();
    let lead = b.len() - b.trim_ascii_start().len();
    let t = b.trim_ascii();
    let (skip, digits) = match t {
        [b'0', b'x' | b'X', rest @ ..] => (lead + 2, rest),
        _ => (lead, t),
    };
    if digits.is_empty() {
        return Err(NonceError::Empty);
    }
    if let Some(i) = digits.iter().position(|&c| nibble(c).is_none()) {
        return Err(NonceError::NotHex {
            offset: skip + i,
            byte: digits.get(i).copied().unwrap_or(0),
        });
    }
    if digits.len() % 2 != 0 {
        return Err(NonceError::OddLength {
            digits: digits.len(),
        });
    }
    let len = digits.len() / 2;
    if len < MIN_LEN {
        return Err(NonceError::TooShort { len });
    }
    if len > MAX_LEN {
        return Err(NonceError::TooLong { len });
    }
    Ok(digits
        .chunks_exact(2)
        .map(|p| match p {
            [h, l] => (nibble(*h).unwrap_or(0) << 4) | nibble(*l).unwrap_or(0),
            _ => 0,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec;

    const N: &str = "a1b2c3d4e5f60718";
    const BYTES: [u8; 8] = [0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18];

    #[test]
    fn plain_prefixed_and_spaced_agree() {
        for s in [
            N,
            "0xa1b2c3d4e5f60718",
            "0XA1B2C3D4E5F60718",
            "  a1b2c3d4e5f60718\n",
            "\t0xa1B2c3D4e5F60718 ",
        ] {
            assert_eq!(parse_hex(s), Ok(BYTES.to_vec()), "{s:?}");
        }
    }

    #[test]
    fn bounds() {
        assert_eq!(parse_hex(&"00".repeat(MIN_LEN)), Ok(vec![0; MIN_LEN]));
        assert_eq!(parse_hex(&"ff".repeat(MAX_LEN)), Ok(vec![0xff; MAX_LEN]));
        assert_eq!(
            parse_hex(&"00".repeat(MIN_LEN - 1)),
            Err(NonceError::TooShort { len: MIN_LEN - 1 })
        );
        assert_eq!(
            parse_hex(&"00".repeat(MAX_LEN + 1)),
            Err(NonceError::TooLong { len: MAX_LEN + 1 })
        );
        let huge: String = "ab".repeat(1 << 16);
        assert_eq!(parse_hex(&huge), Err(NonceError::TooLong { len: 1 << 16 }));
    }

    #[test]
    fn malformed() {
        assert_eq!(parse_hex(""), Err(NonceError::Empty));
        assert_eq!(parse_hex("  "), Err(NonceError::Empty));
        assert_eq!(parse_hex("0x"), Err(NonceError::Empty));
        assert_eq!(
            parse_hex("a1b2c3d4e5f6071"),
            Err(NonceError::OddLength { digits: 15 })
        );
        assert_eq!(
            parse_hex("a1b2c3d4e5f6071z"),
            Err(NonceError::NotHex {
                offset: 15,
                byte: b'z'
            })
        );
        // Offsets count in the string as given, prefix and spaces included.
        assert_eq!(
            parse_hex(" 0xa1b2 c3d4e5f60718"),
            Err(NonceError::NotHex {
                offset: 7,
                byte: b' '
            })
        );
        // Only one prefix; no sign, no "0x" inside.
        assert!(matches!(
            parse_hex("0x0xa1b2c3d4e5f60718"),
            Err(NonceError::NotHex { offset: 3, .. })
        ));
        assert!(matches!(
            parse_hex("+a1b2c3d4e5f60718"),
            Err(NonceError::NotHex { offset: 0, .. })
        ));
        // Non-ASCII is refused by byte, without slicing inside a character.
        assert!(matches!(
            parse_hex("a1b2c3d4e5f6071é"),
            Err(NonceError::NotHex { offset: 15, .. })
        ));
        for e in [
            NonceError::Empty,
            NonceError::OddLength { digits: 3 },
            NonceError::NotHex {
                offset: 1,
                byte: b'g',
            },
            NonceError::TooShort { len: 1 },
            NonceError::TooLong { len: 65 },
        ] {
            assert!(!alloc::format!("{e}").is_empty());
        }
    }
}
