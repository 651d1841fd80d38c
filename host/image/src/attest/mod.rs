//! `imagegen attest`: loading the verifier's inputs (a report, the
//! reference manifest from a `manifest.bin`, disk image or output
//! directory, the keys) and running the [`azl_attest`] verifier on them.
pub mod cli;
pub mod load;

#[cfg(test)]
mod tests;
