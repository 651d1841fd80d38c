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

pub mod board;
pub mod bootcfg;
pub mod config;
pub mod cpio;
pub mod expand;
pub mod files;
pub mod imagepath;
pub mod initbin;
pub mod initramfs;
pub mod kernel;
pub mod modules;
pub mod output;
pub mod pipeline;
pub mod rootfs;
pub mod run;
pub mod services;
pub mod skeleton;
pub mod source;
pub mod toposort;
pub mod users;
