//! azl-image, the core of imagegen: builds azl-edge images, checks them,
//! boots them in QEMU and verifies what booted. The file formats it writes
//! are their own crates (`azl-cpio`, `azl-squashfs`, `azl-verity`,
//! `azl-disk`), as are manifest signing (`azl-sign`) and the attestation
//! verifier (`azl-attest`); the CLI is the `imagegen` crate.
//!
//! Data flows one way, one module (or crate) per step:
//!
//! ```text
//! config (image TOML) ─┐  packages (RPMs) ─┐
//! board (board TOML) ──┼───────────────────┴► rootfs (FileSet) ──┬─► initramfs (cpio.gz)
//! kernel + modules ────┘   users, services,   └─► squashfs ─► verity ─┐
//!                          bootcfg into it        boot FAT, data ext4 ┼─► partitions (GPT)
//!                                  reference values (attest) ─► manifest ─► sign ─► disk.img
//! ```
//!
//! Each checking stage (`config`, `board`, `users`, `files`, `services`)
//! owns its problem type and reports into a [`diag::Diagnostics`];
//! [`pipeline::check`] owns the kind that combines them.
//! [`pipeline::compile`] runs the build steps ([`diskimage`] assembles the
//! disk, [`bundle`] lays a built root slot out as an update bundle), [`budget`] holds it to the board's limits, [`reproduce`] rebuilds
//! to prove determinism; [`inspect`] reads an image back, [`run`] boots it,
//! [`attest`] verifies a device's attestation report against its manifest.
#![forbid(unsafe_code)]

pub mod attest;
pub mod board;
pub mod bootcfg;
pub mod budget;
pub mod bundle;
pub mod config;
pub mod diag;
pub mod diskimage;
pub mod expand;
pub mod files;
pub mod initbin;
pub mod initramfs;
pub mod inspect;
pub mod kernel;
pub mod modules;
pub mod output;
pub mod packages;
pub mod pipeline;
pub mod provenance;
pub mod reproduce;
pub mod rootfs;
pub mod run;
pub mod sbom;
pub mod services;
pub mod size;
pub mod skeleton;
pub mod source;
pub mod summary;
pub mod toposort;
pub mod users;
