//! Reading module files as shipped (`.ko`, `.ko.xz`, `.ko.zst`, `.ko.gz`)
//! into their uncompressed ELF bytes, so init can `finit_module` them
//! without a decompressor in the kernel or the initramfs.
use std::io::Read;
use std::path::Path;

/// Decompressed modules larger than this are refused (a corrupt or hostile
/// file must not exhaust the build host's memory). The largest upstream
/// modules are a few tens of MiB with debug info stripped.
pub const MAX_MODULE_SIZE: u64 = 256 << 20;

/// The suffixes a module file may have, with their compression.
pub const SUFFIXES: &[(&str, Compression)] = &[
    (".ko", Compression::None),
    (".ko.xz", Compression::Xz),
    (".ko.zst", Compression::Zstd),
    (".ko.gz", Compression::Gzip),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Xz,
    Zstd,
    Gzip,
}

/// Split `file_name` into (stem, compression) if it is a module file.
pub fn classify(file_name: &str) -> Option<(&str, Compression)> {
    SUFFIXES
        .iter()
        .find_map(|(suffix, c)| file_name.strip_suffix(suffix).map(|stem| (stem, *c)))
        .filter(|(stem, _)| !stem.is_empty())
}

/// The uncompressed contents of the module at `path`.
pub fn read_module(path: &Path) -> std::io::Result<Vec<u8>> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let compression = classify(name).map_or(Compression::None, |(_, c)| c);
    let file = std::fs::File::open(path)?;
    let reader: Box<dyn Read> = match compression {
        Compression::None => Box::new(file),
        Compression::Xz => Box::new(liblzma::read::XzDecoder::new(file)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(file)?),
        Compression::Gzip => Box::new(flate2::read::GzDecoder::new(file)),
    };
    let mut out = Vec::new();
    reader.take(MAX_MODULE_SIZE + 1).read_to_end(&mut out)?;
    if out.len() as u64 > MAX_MODULE_SIZE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("decompresses to more than {MAX_MODULE_SIZE} bytes"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn classify_names() {
        assert_eq!(classify("a.ko"), Some(("a", Compression::None)));
        assert_eq!(
            classify("dm-verity.ko.xz"),
            Some(("dm-verity", Compression::Xz))
        );
        assert_eq!(classify("x.ko.zst"), Some(("x", Compression::Zstd)));
        assert_eq!(classify("x.ko.gz"), Some(("x", Compression::Gzip)));
        assert_eq!(classify("modules.builtin"), None);
        assert_eq!(classify(".ko"), None);
        assert_eq!(classify("x.ko.bz2"), None);
    }

    #[test]
    fn all_compressions() {
        let t = tempfile::tempdir().unwrap();
        let payload: Vec<u8> = (0..10_000u32).flat_map(|i| i.to_le_bytes()).collect();
        std::fs::write(t.path().join("a.ko"), &payload).unwrap();
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
        xz.write_all(&payload).unwrap();
        std::fs::write(t.path().join("a.ko.xz"), xz.finish().unwrap()).unwrap();
        let zst = zstd::stream::encode_all(&payload[..], 3).unwrap();
        std::fs::write(t.path().join("a.ko.zst"), zst).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&payload).unwrap();
        std::fs::write(t.path().join("a.ko.gz"), gz.finish().unwrap()).unwrap();
        for n in ["a.ko", "a.ko.xz", "a.ko.zst", "a.ko.gz"] {
            assert_eq!(read_module(&t.path().join(n)).unwrap(), payload, "{n}");
        }
        std::fs::write(t.path().join("bad.ko.xz"), b"not xz").unwrap();
        assert!(read_module(&t.path().join("bad.ko.xz")).is_err());
    }
}
