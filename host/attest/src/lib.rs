//! Measured boot, host side: build-time reference values and the
//! fail-closed verifier of device attestation reports.
//!
//! ```text
//! build:  manifest identity, cmdline, verity root hash, service table
//!           ─► reference::predict ─► Manifest::reference (signed with the manifest)
//! device: PID 1 measures the same into PCRs 8, 9, 11 + event log ─► Report (quote by the AK)
//! host:   imagegen attest verify REPORT --manifest M --nonce N --ak PINNED
//!           tier ─► AK pinned ─► quote (magic, type, nonce, selection, PCR digest)
//!           ─► signature + AK attributes ─► event log (integrity, replay) ─► reference
//! ```
//!
//! The PCR map and event format are in `docs/pcr-map.md`; the checks and
//! the attack each one stops in `docs/attestation.md`.
#![forbid(unsafe_code)]
pub mod input;
pub mod reference;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod swtpm;
pub mod tpm;
pub mod verify;

pub use reference::{predict, predict_uefi};
pub use verify::{verify, Options, Outcome, Verdict};
