//! imagegen: builds azl-edge images and boots them in QEMU.
//!
//! Data flows one way, one module per step:
//!
//! ```text
//! config (image TOML) ─┐
//! board (board TOML) ──┼─► rootfs (FileSet) ─► initramfs (cpio.gz) ─► output (OUT/)
//! kernel + modules ────┘        ▲
//!                 users, services, bootcfg compile into it
//! ```
//!
//! [`pipeline::build`] runs the steps; [`run`] boots a built image.
#![forbid(unsafe_code)]

pub mod attest;
pub mod board;
pub mod bootcfg;
pub mod config;
pub mod cpio;
pub mod disk;
pub mod diskimage;
pub mod expand;
pub mod files;
pub mod imagepath;
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
pub mod sign;
pub mod skeleton;
pub mod source;
pub mod squashfs;
pub mod toposort;
pub mod users;
pub mod verity;
