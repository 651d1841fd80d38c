//! `imagegen attest`: loading the verifier's inputs (a report, the
//! reference manifest from a `manifest.bin`, disk image or output
//! directory, the keys) and running the [`azl_attest`] verifier on them;
//! signing the approval of a verified trial boot (`--approve`).
pub mod approve;
pub mod cli;
pub mod load;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_uefi;
