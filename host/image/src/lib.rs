//! imagegen: builds azl-edge images, checks them, boots them in QEMU and
//! verifies what booted.
//!
//! Data flows one way, one module per step:
//!
//! ```text
//! config (image TOML) ─┐
//! board (board TOML) ──┼─► rootfs (FileSet) ──┬─► initramfs (cpio.gz)
//! kernel + modules ────┘   users, services,   └─► squashfs ─► verity ─┐
//!                          bootcfg into it        boot FAT, data ext4 ┼─► partitions (GPT)
//!                                  reference values (attest) ─► manifest ─► sign ─► disk.img
//! ```
//!
//! [`pipeline::compile`] runs the build steps ([`diskimage`] assembles the
//! disk), [`budget`] holds it to the board's limits, [`reproduce`] rebuilds
//! to prove determinism; [`inspect`] reads an image back, [`run`] boots it,
//! [`attest`] verifies a device's attestation report against its manifest.
#![forbid(unsafe_code)]

pub mod attest;
pub mod board;
pub mod bootcfg;
pub mod budget;
pub mod config;
pub mod diskimage;
pub mod expand;
pub mod files;
pub mod initbin;
pub mod initramfs;
pub mod inspect;
pub mod kernel;
pub mod modules;
pub mod output;
pub mod pipeline;
pub mod reproduce;
pub mod rootfs;
pub mod run;
pub mod services;
pub mod skeleton;
pub mod source;
pub mod summary;
pub mod toposort;
pub mod users;
