//! Mounting the verified root (stage 1, after `verify`): the squashfs over
//! dm-verity and the data partition under `/sysroot`, then switching root
//! to it and exec'ing its init (stage 2).
pub mod switch;
pub mod sysroot;
