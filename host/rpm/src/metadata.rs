//! Loading one metadata file named by repomd: read at most its declared
//! size (and never more than [`METADATA_MAX`]), check its checksum before
//! decompressing anything, decompress by its name (`.gz`, `.xz`, `.zst`,
//! or plain) up to its declared open size (never more than
//! [`METADATA_OPEN_MAX`]), and check the open checksum when repomd gives
//! one. Nothing of a file is used before both checks passed.
use crate::decompress::{self, Codec, DecompressError};
use crate::limits::{METADATA_MAX, METADATA_OPEN_MAX};
use crate::repomd::{Algorithm, Checksum, Data};
use crate::source::{Source, SourceError};

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("{url}: {what} is {got}, repomd.xml says {want}")]
    Checksum {
        url: String,
        what: &'static str,
        got: String,
        want: String,
    },
    #[error(
        "{url}: repomd.xml declares {declared} bytes {what}, more than the {max} this build reads"
    )]
    TooLarge {
        url: String,
        what: &'static str,
        declared: u64,
        max: u64,
    },
    #[error("{url}: decompresses to more than {max} bytes")]
    Expands { url: String, max: u64 },
    #[error("{url}: is {got} bytes, repomd.xml says {want}")]
    Size { url: String, got: u64, want: u64 },
    #[error("{url}: cannot decompress ({format}): {err}")]
    Decompress {
        url: String,
        format: &'static str,
        err: std::io::Error,
    },
    #[error("{url}: compression of `{href}` is not supported (gzip, xz, zstd or none)")]
    Compression { url: String, href: String },
}

/// A digest in lower-case hex.
pub fn digest_hex(kind: Algorithm, bytes: &[u8]) -> String {
    let alg = match kind {
        Algorithm::Sha256 => &ring::digest::SHA256,
        Algorithm::Sha512 => &ring::digest::SHA512,
    };
    ring::digest::digest(alg, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn check(
    url: &str,
    what: &'static str,
    want: &Checksum,
    bytes: &[u8],
) -> Result<(), MetadataError> {
    let got = digest_hex(want.kind, bytes);
    if got != want.hex {
        return Err(MetadataError::Checksum {
            url: url.to_string(),
            what,
            got: format!("{} {got}", want.kind.name()),
            want: format!("{} {}", want.kind.name(), want.hex),
        });
    }
    Ok(())
}

/// The decompressed, checked contents of `data`.
pub fn load(src: &dyn Source, data: &Data) -> Result<Vec<u8>, MetadataError> {
    let url = format!("{}/{}", src.url(), data.href);
    let max = cap(&url, "stored", data.size, METADATA_MAX)?;
    let raw = src.get(&data.href, max)?;
    exact(&url, &raw, data.size)?;
    check(&url, "checksum", &data.checksum, &raw)?;
    let open_max = cap(&url, "decompressed", data.open_size, METADATA_OPEN_MAX)?;
    let open = decompress(&url, &data.href, &raw, open_max)?;
    exact(&url, &open, data.open_size)?;
    if let Some(want) = &data.open_checksum {
        check(&url, "open checksum", want, &open)?;
    }
    Ok(open)
}

/// How much to read: the declared size, refused above `max`; `max` when
/// nothing is declared.
fn cap(
    url: &str,
    what: &'static str,
    declared: Option<u64>,
    max: u64,
) -> Result<u64, MetadataError> {
    match declared {
        Some(d) if d > max => Err(MetadataError::TooLarge {
            url: url.to_string(),
            what,
            declared: d,
            max,
        }),
        Some(d) => Ok(d),
        None => Ok(max),
    }
}

/// The bytes are exactly the declared size, when one is declared.
fn exact(url: &str, bytes: &[u8], declared: Option<u64>) -> Result<(), MetadataError> {
    match declared {
        Some(want) if bytes.len() as u64 != want => Err(MetadataError::Size {
            url: url.to_string(),
            got: bytes.len() as u64,
            want,
        }),
        _ => Ok(()),
    }
}

fn decompress(url: &str, href: &str, raw: &[u8], max: u64) -> Result<Vec<u8>, MetadataError> {
    let codec = Codec::from_href(href).ok_or_else(|| MetadataError::Compression {
        url: url.to_string(),
        href: href.to_string(),
    })?;
    decompress::decompress(codec, raw, max).map_err(|e| match e {
        DecompressError::Expands { max } => MetadataError::Expands {
            url: url.to_string(),
            max,
        },
        DecompressError::Stream { codec, err } => MetadataError::Decompress {
            url: url.to_string(),
            format: codec.name(),
            err,
        },
    })
}
