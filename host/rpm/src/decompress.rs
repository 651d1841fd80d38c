//! The compressions repositories use — gzip, xz, zstd, or none — for
//! metadata files and RPM payloads alike, always up to a byte limit: a
//! stream that expands past it is refused, whatever it declared.
use std::io::Read;

/// A compression format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    None,
    Gzip,
    Xz,
    Zstd,
}

impl Codec {
    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Xz => "xz",
            Codec::Zstd => "zstd",
        }
    }

    /// A metadata file's format from its name (`.gz`, `.xz`, `.zst`;
    /// `.xml` and `.asc` are plain); `None` for anything else.
    pub fn from_href(href: &str) -> Option<Codec> {
        Some(if href.ends_with(".gz") {
            Codec::Gzip
        } else if href.ends_with(".xz") {
            Codec::Xz
        } else if href.ends_with(".zst") {
            Codec::Zstd
        } else if href.ends_with(".xml") || href.ends_with(".asc") {
            Codec::None
        } else {
            return None;
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecompressError {
    #[error("decompresses to more than {max} bytes")]
    Expands { max: u64 },
    #[error("cannot decompress ({}): {err}", codec.name())]
    Stream { codec: Codec, err: std::io::Error },
}

/// `raw` decompressed by `codec`, at most `max` bytes.
pub fn decompress(codec: Codec, raw: &[u8], max: u64) -> Result<Vec<u8>, DecompressError> {
    let stream = |err| DecompressError::Stream { codec, err };
    let reader: Box<dyn Read + '_> = match codec {
        Codec::None => {
            if raw.len() as u64 > max {
                return Err(DecompressError::Expands { max });
            }
            return Ok(raw.to_vec());
        }
        Codec::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
        Codec::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(raw)),
        Codec::Zstd => Box::new(zstd::stream::read::Decoder::new(raw).map_err(stream)?),
    };
    let mut out = Vec::new();
    reader
        .take(max.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(stream)?;
    if out.len() as u64 > max {
        return Err(DecompressError::Expands { max });
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips_and_stops_at_the_limit() {
        use std::io::Write;
        let plain = vec![7u8; 10_000];
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::stream::encode_all(&plain[..], 1).unwrap();
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(&plain).unwrap();
        let xz = xz.finish().unwrap();
        for (codec, raw) in [
            (Codec::None, &plain),
            (Codec::Gzip, &gz),
            (Codec::Xz, &xz),
            (Codec::Zstd, &zst),
        ] {
            assert_eq!(decompress(codec, raw, 10_000).unwrap(), plain, "{codec:?}");
            assert!(
                matches!(
                    decompress(codec, raw, 9_999),
                    Err(DecompressError::Expands { max: 9_999 })
                ),
                "{codec:?}"
            );
        }
        assert!(matches!(
            decompress(Codec::Xz, &gz, 10_000),
            Err(DecompressError::Stream {
                codec: Codec::Xz,
                ..
            })
        ));
    }
}
