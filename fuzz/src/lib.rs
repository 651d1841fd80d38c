//! Shared by the fuzz targets and the seed generator: the fixed signing
//! key the seeds are signed with (so the signature check passes on them
//! and the fuzzer reaches the decode paths behind it).
use ring::signature::{Ed25519KeyPair, KeyPair};

/// The seeds' Ed25519 key (a fixed, public, test-only seed).
pub fn key() -> Ed25519KeyPair {
    match Ed25519KeyPair::from_seed_unchecked(&[0x5a; 32]) {
        Ok(k) => k,
        Err(_) => unreachable!("a 32-byte seed is always a key"),
    }
}

/// Raw public key of [`key`].
pub fn public_key() -> Vec<u8> {
    key().public_key().as_ref().to_vec()
}
