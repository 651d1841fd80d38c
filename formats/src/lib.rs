//! Formats that both sides of azl-edge read: `imagegen` writes them on the
//! host, `init` reads them on the device. Keeping them in one `no_std` crate
//! (serde + postcard + heapless) means the two sides cannot drift.
//!
//! Every file is an [`envelope`]: a 4-byte magic, a format version and a
//! postcard payload. The byte layouts are documented in `docs/formats.md`.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod approval;
pub mod attest;
pub mod boot;
pub mod booted;
pub mod bootstate;
pub mod bundle;
pub mod efi;
pub mod efistub;
pub mod envelope;
pub mod eventlog;
pub mod gpt;
pub mod logcheck;
pub mod manifest;
pub mod measure;
pub mod nvfloor;
pub mod services;
pub mod verity;

pub use boot::{
    BootConfig, BootControl, CommitPolicy, HealthCheck, RootSpec, UpdatePolicy, Watchdog,
};
pub use envelope::FormatError;
pub use services::{CrashLoop, CrashLoopAction, Readiness, RestartPolicy, Service, ServiceTable};

/// A short identifier (service names, board names): 1..=32 bytes of
/// `[A-Za-z0-9_.-]`, checked by [`valid_name`].
pub type Name = heapless::String<32>;

/// SHA-256 of `bytes` (ring). The one digest helper both sides use for
/// manifests, partitions, event logs and service tables.
pub fn sha256(bytes: &[u8]) -> manifest::Digest {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    for (o, b) in out.iter_mut().zip(d.as_ref()) {
        *o = *b;
    }
    out
}

// The device/host contract: each rule both sides apply, defined once.
pub mod ak;
pub mod limits;
pub mod nonce;
pub mod paths;
pub mod signature;

/// Is `s` a valid [`Name`]: 1..=32 bytes of ASCII letters, digits, `_`, `.`, `-`,
/// not starting with `.` or `-`?
pub fn valid_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 32
        && !matches!(b.first(), Some(b'.') | Some(b'-'))
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// Build a [`Name`], or `None` when `s` is not [`valid_name`].
pub fn name(s: &str) -> Option<Name> {
    if !valid_name(s) {
        return None;
    }
    let mut n = Name::new();
    n.push_str(s).ok()?;
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("hello"));
        assert!(valid_name("a_b-c.d9"));
        assert!(!valid_name(""));
        assert!(!valid_name("-x"));
        assert!(!valid_name(".x"));
        assert!(!valid_name("a/b"));
        assert!(!valid_name(&"x".repeat(33)));
        assert_eq!(name("ok").as_deref(), Some("ok"));
        assert!(name("no spaces").is_none());
    }
}
