//! azl-edge init as a library: every module of the init binary, so the
//! binary (`main.rs`, which only picks a face) and the fuzz targets
//! (`fuzz/fuzz_targets/install_stream.rs` drives the installer's streaming
//! path) use the same code. Nothing here is a stable API.
#![deny(unsafe_code)]
pub mod boot;
pub mod errno;
pub mod initctl;
pub mod measure;
pub mod mount;
pub mod pid1;
pub mod supervise;
#[allow(unsafe_code)]
pub mod sys;
pub mod update;
pub mod verify;
