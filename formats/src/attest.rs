//! The attestation report a device produces (`initctl attest`) and the
//! host verifies (`imagegen attest verify`), envelope `AZAR`.
//!
//! TPM structures are carried as the raw bytes the TPM returned, so the
//! verifier checks exactly what the TPM signed.
use crate::envelope::Enveloped;
use crate::manifest::Digest;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// How much the report can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tier {
    /// Measurements were extended into a TPM and the report carries a quote.
    Tpm,
    /// No TPM: the event log was kept, but nothing vouches for it. Never
    /// passes as attested.
    SoftwareOnly,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub tier: Tier,
    /// The verifier's nonce, echoed (the quote's extraData must equal it).
    pub nonce: Vec<u8>,
    /// TPM2B_PUBLIC of the attestation key (empty for software-only).
    pub ak_public: Vec<u8>,
    /// TPM2B_ATTEST returned by TPM2_Quote (empty for software-only).
    pub quote: Vec<u8>,
    /// TPMT_SIGNATURE returned by TPM2_Quote (empty for software-only).
    pub signature: Vec<u8>,
    /// SHA-256 PCR values read right after the quote: (index, value).
    pub pcrs: Vec<(u8, Digest)>,
    /// The TCG crypto-agile event log (firmware log merged first, if any).
    pub event_log: Vec<u8>,
    /// The SignedManifest envelope of the running slot (empty if none).
    pub manifest: Vec<u8>,
}

impl Enveloped for Report {
    const MAGIC: [u8; 4] = *b"AZAR";
    const VERSION: u16 = 1;
}
