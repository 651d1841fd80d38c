//! `imagegen attest verify … --approve KEY -o FILE`: after a report
//! verified (ATTESTED, nothing less), sign the approval that lets a trial
//! boot with `[update] commit = "attested"` commit
//! ([`azl_formats::approval`]). The approval names the reference manifest
//! the report verified against (sha256 of its `SignedManifest` envelope,
//! what the device's booted record holds), the device's AK (sha256 of the
//! report's TPM2B_PUBLIC) and the verified nonce. It is written atomically
//! ([`crate::output::put_file`]); on any failure nothing is written.
use azl_formats::approval::{self, Approval, Body};
use azl_formats::attest::{Report, Tier};
use azl_formats::envelope::Enveloped;
use azl_formats::manifest::{Hex, SignedManifest};
use azl_sign::SigningKey;
use std::path::Path;

/// What was approved, for the summary line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approved {
    pub body: Body,
    pub bytes: Vec<u8>,
}

/// Build and sign the approval of `report` (already verified against
/// `reference`). Refuses a report without a TPM AK.
pub fn build(
    report: &Report,
    reference: &SignedManifest,
    key: &SigningKey,
) -> Result<Approved, String> {
    if report.tier != Tier::Tpm || report.ak_public.is_empty() {
        return Err("the report has no TPM attestation key: nothing to approve".into());
    }
    let manifest = reference
        .to_bytes()
        .map_err(|e| format!("encoding the reference manifest: {e}"))?;
    let body = Body {
        manifest_sha256: azl_formats::sha256(&manifest),
        ak_sha256: azl_formats::sha256(&report.ak_public),
        nonce: report.nonce.clone(),
    };
    let env = body
        .to_bytes()
        .map_err(|e| format!("encoding the approval: {e}"))?;
    let signature = key.sign(&approval::signed_message(&env));
    let bytes = Approval {
        body: env,
        signature,
    }
    .to_bytes()
    .map_err(|e| format!("encoding the approval: {e}"))?;
    // Held to the device's own rule before it is written.
    approval::verified_body(
        &approval::decode(&bytes).map_err(|e| e.to_string())?,
        &key.public_key(),
    )
    .map_err(|e| format!("the approval does not check: {e}"))?;
    Ok(Approved { body, bytes })
}

/// Write it (atomic: temporary file, fsync, rename).
pub fn write(a: &Approved, out: &Path) -> Result<(), String> {
    crate::output::put_file(out, &[&a.bytes]).map_err(|e| e.to_string())
}

/// The lines printed after the verdict.
pub fn summary(a: &Approved, key: &SigningKey, out: &Path) -> String {
    format!(
        "approval written to {} ({} bytes), signed by key {}\n  manifest sha256 {}\n  AK sha256       {}\n  nonce           {}\n",
        out.display(),
        a.bytes.len(),
        Hex(&key.key_id()),
        Hex(&a.body.manifest_sha256),
        Hex(&a.body.ak_sha256),
        Hex(&a.body.nonce)
    )
}
