//! The envelope every azl-edge file is wrapped in:
//!
//! ```text
//! offset 0  magic    [u8; 4]   which format ("AZBC", "AZSV", …)
//! offset 4  version  u16 LE    format version; readers refuse others
//! offset 6  payload  postcard  the serde value
//! ```
//!
//! The envelope has no checksum of its own: integrity comes from the signed
//! manifest (which records each file's digest) and from dm-verity.
use alloc::vec::Vec;
use core::fmt;
use serde::{de::DeserializeOwned, Serialize};

/// Size of the magic + version header.
pub const HEADER_LEN: usize = 6;

/// Why a file could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatError {
    /// Shorter than the header.
    Truncated { len: usize },
    /// The magic is not the one this format uses.
    BadMagic { expected: [u8; 4], found: [u8; 4] },
    /// Written by a newer (or older) imagegen than this reader understands.
    UnsupportedVersion {
        magic: [u8; 4],
        found: u16,
        supported: u16,
    },
    /// The payload does not decode (corrupt or truncated).
    Payload(postcard::Error),
    /// Encoding failed (only for values postcard cannot represent).
    Encode(postcard::Error),
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { len } => {
                write!(f, "file too short ({len} bytes) for an azl-edge header")
            }
            Self::BadMagic { expected, found } => write!(
                f,
                "wrong magic {:?}, expected {:?}",
                Printable(found),
                Printable(expected)
            ),
            Self::UnsupportedVersion {
                magic,
                found,
                supported,
            } => write!(
                f,
                "{} format version {found} is not supported (this build reads version {supported})",
                Printable(magic)
            ),
            Self::Payload(e) => write!(f, "corrupt payload: {e}"),
            Self::Encode(e) => write!(f, "cannot encode: {e}"),
        }
    }
}

impl core::error::Error for FormatError {}

struct Printable<'a>(&'a [u8; 4]);
impl fmt::Debug for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.0 {
            if b.is_ascii_graphic() {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}
impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A format stored in an envelope.
pub trait Enveloped: Serialize + DeserializeOwned {
    const MAGIC: [u8; 4];
    const VERSION: u16;

    /// Encode with header.
    fn to_bytes(&self) -> Result<Vec<u8>, FormatError> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(&Self::MAGIC);
        out.extend_from_slice(&Self::VERSION.to_le_bytes());
        let payload = postcard::to_allocvec(self).map_err(FormatError::Encode)?;
        out.extend_from_slice(&payload);
        Ok(out)
    }

    /// Decode, checking magic and version; trailing bytes are an error.
    fn from_bytes(bytes: &[u8]) -> Result<Self, FormatError> {
        let (magic, rest) = bytes
            .split_first_chunk::<4>()
            .ok_or(FormatError::Truncated { len: bytes.len() })?;
        if *magic != Self::MAGIC {
            return Err(FormatError::BadMagic {
                expected: Self::MAGIC,
                found: *magic,
            });
        }
        let (ver, payload) = rest
            .split_first_chunk::<2>()
            .ok_or(FormatError::Truncated { len: bytes.len() })?;
        let found = u16::from_le_bytes(*ver);
        if found != Self::VERSION {
            return Err(FormatError::UnsupportedVersion {
                magic: Self::MAGIC,
                found,
                supported: Self::VERSION,
            });
        }
        let (value, rest) = postcard::take_from_bytes(payload).map_err(FormatError::Payload)?;
        if !rest.is_empty() {
            return Err(FormatError::Payload(
                postcard::Error::DeserializeBadEncoding,
            ));
        }
        Ok(value)
    }
}
