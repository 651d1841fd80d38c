//! A/B updates on the device: the boot-control interface and its backends
//! ([`bootctl`]), stage 1's choice of the slot to boot ([`select`]), the
//! bundle installer ([`install`]), the trial boot's health gate
//! ([`gate`]), the TPM NV anti-rollback floor ([`floor`]) and the `update` face of the binary
//! ([`cli`], output in [`status`]). The formats and pure transitions are
//! `azl_formats::{bootstate, bundle, verity, booted}`; see docs/update.md.
pub mod bootctl;
pub mod cli;
pub mod floor;
pub mod gate;
pub mod install;
pub mod select;
pub mod status;
