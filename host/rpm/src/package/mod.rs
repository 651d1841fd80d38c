//! One RPM file, checked before anything in it is used, then unpacked in
//! memory (never onto the build host):
//!
//! 1. the file's sha256 (or sha512) equals what the repository metadata
//!    says ([`check`]);
//! 2. [`frame`] checks that every header entry lies inside its store
//!    (the `rpm` crate does not), then the `rpm` crate parses the lead, signature header and header; the
//!    header digest and the **payload digest** must be present and match
//!    (a header-only OpenPGP signature covers the payload only through
//!    the payload digest, so a package without one is refused);
//! 3. with `gpgcheck`, one of the repository's keys verifies a signature
//!    over the header ([`Keys`]); unsigned or signed by another key is
//!    refused;
//! 4. the payload is decompressed up to what the header's file list can
//!    take ([`entries`]), its cpio members matched one-to-one with the
//!    header's files, each file's content checked against the header's
//!    file digest; paths, link targets and file types are checked there;
//! 5. [`tree`] merges packages, refusing conflicts and paths through
//!    symlinks; [`scriptlets`] reports the scripts that were not run.
pub mod cpio;
pub mod entries;
pub mod frame;
pub mod scriptlets;
pub mod tree;

use crate::decompress::Codec;
use crate::evr::Evr;
pub use crate::keys::Keys;
use crate::metadata::digest_hex;
use crate::repomd::Checksum;
use rpm::DigestStatus;

/// Whether signatures are required.
pub enum Trust<'a> {
    /// `gpgcheck = false`: digests are still checked.
    NoSignature,
    Keys(&'a Keys),
}

/// A package whose file digest, header digest, payload digest and (if
/// required) signature were checked.
pub struct Checked {
    /// `name-[epoch:]version-release.arch`, for messages.
    pub nevra: String,
    pub name: String,
    pub evr: Evr,
    pub arch: String,
    pub license: String,
    pub(crate) package: rpm::Package,
}

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("{file}: {what} is {got}, the repository metadata says {want}")]
    Digest {
        file: String,
        what: &'static str,
        got: String,
        want: String,
    },
    #[error("{file}: not a readable RPM: {err}")]
    Parse { file: String, err: String },
    #[error("{file}: not a well-formed RPM: {err}")]
    Frame {
        file: String,
        #[source]
        err: frame::FrameError,
    },
    #[error("{file}: has no {what} digest; a signature would not cover its {covers}")]
    NoDigest {
        file: String,
        what: &'static str,
        covers: &'static str,
    },
    #[error("{file}: the {what} digest does not match (the package was changed or truncated): header says {want}, content is {got}")]
    DigestMismatch {
        file: String,
        what: &'static str,
        want: String,
        got: String,
    },
    #[error("{file}: is not signed, and the repository requires signatures (gpgcheck)")]
    Unsigned { file: String },
    #[error("{file}: no valid signature by a key of {keys}: {err}")]
    BadSignature {
        file: String,
        keys: String,
        err: String,
    },
    #[error("{file}: payload compression {what} is not supported (gzip, xz, zstd or none)")]
    Compression { file: String, what: String },
    #[error("{file}: {err}")]
    Entries {
        file: String,
        #[source]
        err: entries::EntryError,
    },
}

/// Steps 1–3 on the bytes of `file` (a name for messages).
pub fn check(
    file: &str,
    bytes: &[u8],
    want: Option<&Checksum>,
    trust: Trust<'_>,
) -> Result<Checked, PackageError> {
    if let Some(want) = want {
        let got = digest_hex(want.kind, bytes);
        if got != want.hex {
            return Err(PackageError::Digest {
                file: file.to_string(),
                what: "checksum",
                got: format!("{} {got}", want.kind.name()),
                want: format!("{} {}", want.kind.name(), want.hex),
            });
        }
    }
    let parse = |err: rpm::Error| PackageError::Parse {
        file: file.to_string(),
        err: err.to_string(),
    };
    frame::check(bytes).map_err(|err| PackageError::Frame {
        file: file.to_string(),
        err,
    })?;
    let package = rpm::Package::parse(&mut std::io::Cursor::new(bytes)).map_err(parse)?;
    let digests = package.check_digests().map_err(parse)?;
    let header = [
        &digests.header_sha256,
        &digests.header_sha3_256,
        &digests.header_sha1,
    ];
    require(file, "header", "header", &header)?;
    let payload = [
        &digests.payload_sha256,
        &digests.payload_sha512,
        &digests.payload_sha3_256,
    ];
    require(file, "payload", "payload", &payload)?;
    if let Trust::Keys(keys) = trust {
        let report = package.check_signatures(&keys.verifier).map_err(parse)?;
        if report.signatures.is_empty() {
            return Err(PackageError::Unsigned {
                file: file.to_string(),
            });
        }
        if !report.signatures.iter().any(|s| s.is_verified()) {
            let err = report
                .signatures
                .iter()
                .filter_map(|s| s.error.as_ref().map(|e| e.to_string()))
                .next_back()
                .unwrap_or_else(|| "no signature verified".to_string());
            return Err(PackageError::BadSignature {
                file: file.to_string(),
                keys: keys.origin.clone(),
                err,
            });
        }
    }
    let meta = &package.metadata;
    let name = meta.get_name().map_err(parse)?.to_string();
    let evr = Evr::new(
        meta.get_epoch().unwrap_or(0),
        meta.get_version().map_err(parse)?,
        Some(meta.get_release().map_err(parse)?),
    );
    let arch = meta.get_arch().map_err(parse)?.to_string();
    let license = meta.get_license().unwrap_or("").to_string();
    Ok(Checked {
        nevra: format!("{name}-{evr}.{arch}"),
        name,
        evr,
        arch,
        license,
        package,
    })
}

/// At least one digest of the set is present; every present one matches.
fn require(
    file: &str,
    what: &'static str,
    covers: &'static str,
    set: &[&DigestStatus],
) -> Result<(), PackageError> {
    for status in set {
        if let DigestStatus::Mismatch { expected, actual } = status {
            return Err(PackageError::DigestMismatch {
                file: file.to_string(),
                what,
                want: expected.clone(),
                got: actual.clone(),
            });
        }
    }
    if !set.iter().any(|s| s.is_verified()) {
        return Err(PackageError::NoDigest {
            file: file.to_string(),
            what,
            covers,
        });
    }
    Ok(())
}

impl Checked {
    /// Step 4: the package's files, checked ([`entries::unpack`]).
    pub fn unpack(&self, opts: &entries::Options) -> Result<Vec<entries::Item>, PackageError> {
        let wrap = |err| PackageError::Entries {
            file: self.nevra.clone(),
            err,
        };
        let meta = &self.package.metadata;
        let codec = match meta.get_payload_compressor() {
            Ok(rpm::CompressionType::None) => Codec::None,
            Ok(rpm::CompressionType::Gzip) => Codec::Gzip,
            Ok(rpm::CompressionType::Xz) => Codec::Xz,
            Ok(rpm::CompressionType::Zstd) => Codec::Zstd,
            Ok(other) => {
                return Err(PackageError::Compression {
                    file: self.nevra.clone(),
                    what: other.to_string(),
                })
            }
            Err(e) => {
                return Err(PackageError::Compression {
                    file: self.nevra.clone(),
                    what: e.to_string(),
                })
            }
        };
        let files = meta
            .get_file_entries()
            .map_err(|e| wrap(entries::EntryError::Header(e.to_string())))?;
        entries::unpack(&files, codec, &self.package.payload, opts).map_err(wrap)
    }

    /// The scripts this package carries (none is ever run).
    pub fn scriptlets(&self) -> Vec<scriptlets::Skipped> {
        scriptlets::of(&self.nevra, &self.package.metadata)
    }
}
