//! The image's software bill of materials: `sbom.spdx.json` next to the
//! image, an SPDX 2.3 JSON document of every package (licenses from the
//! RPM headers) and every regular file of the root filesystem with its
//! SHA-256 and SHA-1 (docs/packages.md#sbom). Its sha256 goes into the
//! signed manifest (`sbom_sha256`), so the SBOM is as trustworthy as the
//! image: `imagegen inspect` checks it.
//!
//! The document is written with serde_json from our own small model
//! ([`model`]) rather than with `spdx-rs`, the Rust SPDX document crate:
//! it is built to parse documents into its structs (0.5.5, last released
//! September 2023, with chrono, nom, uuid and more behind it), while the
//! subset imagegen writes is about a hundred lines of serde structs,
//! checked by the SPDX reference validator (`pyspdxtools`) in the e2e test.
//! License expressions are checked with the maintained `spdx` crate
//! ([`license`]).
//!
//! Reproducible: `created` is the build's `SOURCE_DATE_EPOCH`, the
//! `documentNamespace` is derived from the document's own content (its
//! sha256 with the namespace left empty), and everything is in file-set
//! and package order.
pub mod collect;
pub mod license;
pub mod model;
pub mod time;

use crate::packages::Installed;
use crate::rootfs::FileSet;
use std::path::{Path, PathBuf};

pub use model::Document;

/// The SBOM's name next to the image.
pub const FILE: &str = "sbom.spdx.json";
/// Largest SBOM read back.
pub const MAX: u64 = 256 << 20;
/// The namespace's prefix; a content digest completes it.
pub const NAMESPACE_BASE: &str = "https://azl-edge.invalid/spdx/";

/// What the SBOM describes.
pub struct Inputs<'a> {
    pub image_name: &'a str,
    pub image_version: &'a str,
    /// `SOURCE_DATE_EPOCH` of the build.
    pub epoch: u32,
    /// The root filesystem as built.
    pub rootfs: &'a FileSet,
    /// The RPMs installed (the kernel package included).
    pub packages: &'a [Installed],
}

#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    #[error("SBOM: reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("SBOM: encoding: {0}")]
    Encode(serde_json::Error),
    #[error("{path}: not an SPDX JSON document: {err}")]
    Parse {
        path: PathBuf,
        err: serde_json::Error,
    },
    #[error(
        "{path}: spdxVersion is {got:?}; imagegen reads {}",
        model::SPDX_VERSION
    )]
    Version { path: PathBuf, got: String },
}

/// A built SBOM: the document and its exact bytes.
#[derive(Debug, Clone)]
pub struct Sbom {
    pub document: Document,
    pub bytes: Vec<u8>,
    pub sha256: [u8; 32],
}

fn encode(d: &Document) -> Result<Vec<u8>, SbomError> {
    let mut bytes = serde_json::to_vec_pretty(d).map_err(SbomError::Encode)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Build the SBOM of `i`.
pub fn build(i: &Inputs) -> Result<Sbom, SbomError> {
    let mut document = collect::document(i, "")?;
    let content = azl_formats::sha256(&encode(&document)?);
    document.document_namespace = format!(
        "{NAMESPACE_BASE}{}-{}-{}",
        collect::pct(i.image_name),
        collect::pct(i.image_version),
        azl_formats::manifest::Hex(&content)
    );
    let bytes = encode(&document)?;
    let sha256 = azl_formats::sha256(&bytes);
    Ok(Sbom {
        document,
        bytes,
        sha256,
    })
}

/// Decode an SBOM read from `path`.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Document, SbomError> {
    let d: Document = serde_json::from_slice(bytes).map_err(|err| SbomError::Parse {
        path: path.to_path_buf(),
        err,
    })?;
    if d.spdx_version != model::SPDX_VERSION {
        return Err(SbomError::Version {
            path: path.to_path_buf(),
            got: d.spdx_version,
        });
    }
    Ok(d)
}

#[cfg(test)]
mod tests;
