//! Reading the verifier's untrusted input files with a cap each: a report,
//! an AK public, a manifest file come from devices and operators, so a
//! FIFO must not hang the verifier and `/dev/zero` must not exhaust it.
//! Every read goes through [`azl_fileread::read`] (regular files only,
//! at most the cap; [`ReadError`] names the path and the reason).
//!
//! The caps are generous for real inputs (documented in
//! `docs/attestation.md`):
//!
//! | input | cap | real size |
//! |---|---|---|
//! | report (`AZAR`) | [`REPORT_MAX`] 16 MiB | a few KiB; a firmware log adds ≤ 1 MiB |
//! | AK public (TPM2B_PUBLIC) | [`AK_MAX`] 4 KiB | 90 bytes (ECC P-256) |
//! | manifest file (`manifest.bin`) | [`MANIFEST_MAX`] = the manifest region, 64 KiB | ~2 KiB |
use azl_formats::manifest::MANIFEST_REGION;
use std::path::Path;

pub use azl_fileread::ReadError;

/// Largest attestation report file read.
pub const REPORT_MAX: u64 = 16 << 20;
/// Largest AK public (TPM2B_PUBLIC) file read.
pub const AK_MAX: u64 = 4 << 10;
/// Largest manifest file read: a manifest must fit its on-disk region.
pub const MANIFEST_MAX: u64 = MANIFEST_REGION;

/// Read a report file (at most [`REPORT_MAX`] bytes, regular file).
pub fn read_report(path: &Path) -> Result<Vec<u8>, ReadError> {
    azl_fileread::read(path, REPORT_MAX)
}

/// Read a pinned AK public file (at most [`AK_MAX`] bytes, regular file).
pub fn read_ak(path: &Path) -> Result<Vec<u8>, ReadError> {
    azl_fileread::read(path, AK_MAX)
}

/// Read a `SignedManifest` envelope file (at most [`MANIFEST_MAX`] bytes).
pub fn read_manifest(path: &Path) -> Result<Vec<u8>, ReadError> {
    azl_fileread::read(path, MANIFEST_MAX)
}
