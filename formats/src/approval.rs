//! The approval a remote verifier signs for one trial boot (commit policy
//! `attested`, docs/update.md "The attestation gate"): `imagegen attest
//! verify … --approve KEY -o FILE` writes it only after the device's
//! report verified; `update approve FILE` on the device checks it with
//! [`check`] and hands it to PID 1's gate, which checks it again and
//! commits.
//!
//! An approval names exactly one trial boot of one device:
//!
//! - `manifest_sha256`: the sha256 of the trial slot's `SignedManifest`
//!   envelope — the value stage 1 records as the booted record's
//!   `manifest_sha256` and a bundle header names;
//! - `ak_sha256`: the sha256 of the TPM2B_PUBLIC of the device's
//!   attestation key, the bytes a report carries as `ak_public` (what
//!   `imagegen attest enroll` prints as "AK sha256");
//! - `nonce`: the verifier's nonce of the quote it verified. The device
//!   answers quotes with `initctl attest`, which records each nonce it
//!   answered (with the AK's digest) in [`crate::paths::ATTEST_ANSWERS`] on
//!   the `/run` tmpfs, so the record dies with the boot: an approval of a
//!   quote from an earlier boot (or an earlier trial of the same image)
//!   names a nonce this boot never answered and is refused.
//!
//! Signature: Ed25519 by the verifier key over [`DOMAIN`] ‖ the `Body`
//! envelope bytes (stored verbatim in [`Approval::body`]); the domain
//! string keeps an approval signature from ever being valid as anything
//! else the same key might sign. The verifier's public key is in the
//! image (`CommitPolicy::Attested`, inside the signed, verity-protected
//! boot config).
//!
//! Envelopes: `AZAP` v1 ([`Approval`]) around `AZAB` v1 ([`Body`]); a file
//! is at most [`MAX_LEN`] bytes, checked before decoding.
use crate::envelope::Enveloped;
use crate::manifest::{Digest, Hex, Sig, KEY_ID_LEN};
use crate::signature::{self, VerifyError};
use crate::FormatError;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use serde::{Deserialize, Serialize};

/// Prefix of the signed message.
pub const DOMAIN: &[u8] = b"azl-edge approval v1\0";
/// Largest approval file: the body is ~110 bytes with a 64-byte nonce.
pub const MAX_LEN: usize = 1024;
/// Largest [`crate::paths::ATTEST_ANSWERS`] file read; each answer is one
/// line of at most 194 bytes.
pub const MAX_ANSWERS_LEN: usize = 64 << 10;

/// What is approved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Body {
    pub manifest_sha256: Digest,
    pub ak_sha256: Digest,
    pub nonce: Vec<u8>,
}

impl Enveloped for Body {
    const MAGIC: [u8; 4] = *b"AZAB";
    const VERSION: u16 = 1;
}

/// The approval file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The [`Body`] envelope bytes, exactly as signed.
    pub body: Vec<u8>,
    pub signature: Sig,
}

impl Enveloped for Approval {
    const MAGIC: [u8; 4] = *b"AZAP";
    const VERSION: u16 = 1;
}

/// The bytes the verifier key signs for `body_envelope`.
pub fn signed_message(body_envelope: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(DOMAIN.len() + body_envelope.len());
    m.extend_from_slice(DOMAIN);
    m.extend_from_slice(body_envelope);
    m
}

/// What the device knows about the trial boot it runs.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// The running (trial) slot's verifier key (its boot config).
    pub verifier_key: &'a [u8; 32],
    /// The booted record's `manifest_sha256`.
    pub manifest_sha256: &'a Digest,
    /// The quotes answered during this boot: (nonce, AK digest).
    pub answered: &'a [Answer],
}

/// One quote the device answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub nonce: Vec<u8>,
    pub ak_sha256: Digest,
}

/// Why an approval is refused. The messages are what `update approve`
/// prints after `update: refused: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalError {
    /// Larger than [`MAX_LEN`].
    TooLarge { len: usize },
    /// Not an approval envelope (or a corrupt one).
    Decode(FormatError),
    /// Signed by another key than the image's verifier key.
    OtherKey {
        found: [u8; KEY_ID_LEN],
        expected: [u8; KEY_ID_LEN],
    },
    /// The signature does not verify (altered or forged).
    BadSignature,
    /// The signed body does not decode.
    Body(FormatError),
    /// The nonce is outside [`crate::nonce::MIN_LEN`]..=[`crate::nonce::MAX_LEN`].
    NonceLength { len: usize },
    /// For another trial's manifest.
    Manifest { approved: Digest, running: Digest },
    /// No quote was answered during this boot, so the device cannot tell
    /// its AK and no quote of this boot can have been approved.
    NoQuote,
    /// For another device's AK.
    Device { approved: Digest, ours: Digest },
    /// For a quote (nonce) this boot did not answer.
    Nonce { nonce: Vec<u8> },
}

/// The first 8 bytes of a digest in hex, then `…`.
struct Short<'a>(&'a [u8]);
impl fmt::Display for Short<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}…", Hex(self.0.get(..8).unwrap_or(self.0)))
    }
}

impl fmt::Display for ApprovalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { len } => write!(
                f,
                "approval is {len} bytes; an approval file is at most {MAX_LEN}"
            ),
            Self::Decode(e) => write!(f, "not an approval file: {e}"),
            Self::OtherKey { found, expected } => write!(
                f,
                "approval signature does not verify with this image's verifier key (signed by key {}, the image trusts key {})",
                Hex(found),
                Hex(expected)
            ),
            Self::BadSignature => f.write_str(
                "approval signature does not verify with this image's verifier key (altered or forged)",
            ),
            Self::Body(e) => write!(f, "approval body does not decode: {e}"),
            Self::NonceLength { len } => write!(f, "approval nonce is {len} bytes"),
            Self::Manifest { approved, running } => write!(
                f,
                "approval is for manifest {}, this trial runs {}",
                Short(approved),
                Short(running)
            ),
            Self::NoQuote => f.write_str(
                "no attestation quote was answered during this boot (`initctl attest`): an approval must answer a quote of this trial",
            ),
            Self::Device { approved, ours } => write!(
                f,
                "approval is for another device (AK {}, this device's AK is {})",
                Short(approved),
                Short(ours)
            ),
            Self::Nonce { nonce } => write!(
                f,
                "approval answers nonce {}, which this boot did not quote (an approval of an earlier boot or another verifier's quote)",
                Hex(nonce)
            ),
        }
    }
}

impl core::error::Error for ApprovalError {}

/// Decode an approval file (size first, then the envelope); the signature
/// is not checked yet.
pub fn decode(bytes: &[u8]) -> Result<Approval, ApprovalError> {
    if bytes.len() > MAX_LEN {
        return Err(ApprovalError::TooLarge { len: bytes.len() });
    }
    Approval::from_bytes(bytes).map_err(ApprovalError::Decode)
}

/// Check the signature against `key`, then decode the body. The body is
/// decoded only after its signature verified.
pub fn verified_body(a: &Approval, key: &[u8; 32]) -> Result<Body, ApprovalError> {
    match signature::check(&signed_message(&a.body), &a.signature, key) {
        Ok(()) => {}
        Err(VerifyError::KeyMismatch { expected, found }) => {
            return Err(ApprovalError::OtherKey { found, expected })
        }
        Err(_) => return Err(ApprovalError::BadSignature),
    }
    let body = Body::from_bytes(&a.body).map_err(ApprovalError::Body)?;
    if !(crate::nonce::MIN_LEN..=crate::nonce::MAX_LEN).contains(&body.nonce.len()) {
        return Err(ApprovalError::NonceLength {
            len: body.nonce.len(),
        });
    }
    Ok(body)
}

/// The device's whole check, in this order: size, envelope, signature by
/// the image's verifier key, body, manifest = the running trial's, AK =
/// this device's (from the quotes it answered this boot), nonce answered
/// this boot by that AK.
pub fn check(bytes: &[u8], expect: &Expect<'_>) -> Result<Body, ApprovalError> {
    let a = decode(bytes)?;
    let body = verified_body(&a, expect.verifier_key)?;
    if body.manifest_sha256 != *expect.manifest_sha256 {
        return Err(ApprovalError::Manifest {
            approved: body.manifest_sha256,
            running: *expect.manifest_sha256,
        });
    }
    let first = expect.answered.first().ok_or(ApprovalError::NoQuote)?;
    if !expect
        .answered
        .iter()
        .any(|q| q.ak_sha256 == body.ak_sha256)
    {
        return Err(ApprovalError::Device {
            approved: body.ak_sha256,
            ours: first.ak_sha256,
        });
    }
    if !expect
        .answered
        .iter()
        .any(|q| q.ak_sha256 == body.ak_sha256 && q.nonce == body.nonce)
    {
        return Err(ApprovalError::Nonce { nonce: body.nonce });
    }
    Ok(body)
}

// --- The answered-quotes record ------------------------------------------

/// The line `initctl attest` appends to [`crate::paths::ATTEST_ANSWERS`]
/// for a quote it answered: `NONCE_HEX AK_SHA256_HEX\n`.
pub fn answer_line(nonce: &[u8], ak_sha256: &Digest) -> String {
    alloc::format!("{} {}\n", Hex(nonce), Hex(ak_sha256))
}

fn digest_hex(s: &str) -> Option<Digest> {
    let v = crate::nonce::parse_hex(s).ok()?;
    v.try_into().ok()
}

/// Parse the record: one [`answer_line`] per line; malformed lines are
/// skipped (they can answer nothing). At most [`MAX_ANSWERS_LEN`] bytes
/// are looked at.
pub fn parse_answers(text: &[u8]) -> Vec<Answer> {
    let text = text.get(..MAX_ANSWERS_LEN).unwrap_or(text);
    text.split(|&b| b == b'\n')
        .filter_map(|line| {
            let line = core::str::from_utf8(line).ok()?;
            let (n, ak) = line.trim().split_once(' ')?;
            Some(Answer {
                nonce: crate::nonce::parse_hex(n).ok()?,
                ak_sha256: digest_hex(ak)?,
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::manifest::key_id;
    use alloc::vec;
    use ring::rand::SystemRandom;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    fn key() -> Ed25519KeyPair {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap()
    }

    fn public(k: &Ed25519KeyPair) -> [u8; 32] {
        k.public_key().as_ref().try_into().unwrap()
    }

    fn sign(k: &Ed25519KeyPair, body: &Body) -> Vec<u8> {
        let env = body.to_bytes().unwrap();
        let mut ed25519 = [0u8; 64];
        ed25519.copy_from_slice(k.sign(&signed_message(&env)).as_ref());
        Approval {
            body: env,
            signature: Sig {
                key_id: key_id(&public(k)),
                ed25519,
            },
        }
        .to_bytes()
        .unwrap()
    }

    const M: Digest = [0x1a; 32];
    const AK: Digest = [0xa4; 32];
    const NONCE: [u8; 16] = [7; 16];

    fn body() -> Body {
        Body {
            manifest_sha256: M,
            ak_sha256: AK,
            nonce: NONCE.to_vec(),
        }
    }

    fn answered() -> Vec<Answer> {
        vec![
            Answer {
                nonce: vec![9; 8],
                ak_sha256: AK,
            },
            Answer {
                nonce: NONCE.to_vec(),
                ak_sha256: AK,
            },
        ]
    }

    fn run(bytes: &[u8], k: &[u8; 32], answered: &[Answer]) -> Result<Body, ApprovalError> {
        check(
            bytes,
            &Expect {
                verifier_key: k,
                manifest_sha256: &M,
                answered,
            },
        )
    }

    #[test]
    fn a_valid_approval_passes() {
        let k = key();
        let b = sign(&k, &body());
        assert_eq!(&b[..4], b"AZAP");
        assert!(b.len() < MAX_LEN);
        assert_eq!(run(&b, &public(&k), &answered()), Ok(body()));
    }

    #[test]
    fn each_refusal_is_named() {
        let k = key();
        let pk = public(&k);
        let other = key();
        // Another key.
        let e = run(&sign(&other, &body()), &pk, &answered()).unwrap_err();
        assert!(matches!(e, ApprovalError::OtherKey { .. }), "{e:?}");
        assert!(alloc::format!("{e}")
            .starts_with("approval signature does not verify with this image's verifier key"));
        // A flipped bit anywhere in the body or signature.
        let good = sign(&k, &body());
        for i in 6..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            assert!(run(&bad, &pk, &answered()).is_err(), "byte {i}");
        }
        // Another manifest.
        let e = run(
            &sign(
                &k,
                &Body {
                    manifest_sha256: [0x3c; 32],
                    ..body()
                },
            ),
            &pk,
            &answered(),
        )
        .unwrap_err();
        assert_eq!(
            alloc::format!("{e}"),
            "approval is for manifest 3c3c3c3c3c3c3c3c…, this trial runs 1a1a1a1a1a1a1a1a…"
        );
        // Another device.
        let e = run(
            &sign(
                &k,
                &Body {
                    ak_sha256: [0xbb; 32],
                    ..body()
                },
            ),
            &pk,
            &answered(),
        )
        .unwrap_err();
        assert!(alloc::format!("{e}").starts_with("approval is for another device"));
        // A nonce this boot did not answer.
        let e = run(
            &sign(
                &k,
                &Body {
                    nonce: vec![1; 8],
                    ..body()
                },
            ),
            &pk,
            &answered(),
        )
        .unwrap_err();
        assert_eq!(e, ApprovalError::Nonce { nonce: vec![1; 8] });
        // The right nonce answered by another AK is still refused.
        let mixed = [Answer {
            nonce: NONCE.to_vec(),
            ak_sha256: [0xbb; 32],
        }];
        assert!(matches!(
            run(&good, &pk, &mixed),
            Err(ApprovalError::Device { .. })
        ));
        // No quote answered at all.
        assert_eq!(run(&good, &pk, &[]), Err(ApprovalError::NoQuote));
        // Nonce length.
        let e = run(
            &sign(
                &k,
                &Body {
                    nonce: vec![1; 3],
                    ..body()
                },
            ),
            &pk,
            &answered(),
        );
        assert_eq!(e, Err(ApprovalError::NonceLength { len: 3 }));
    }

    #[test]
    fn hostile_bytes_are_errors() {
        let k = public(&key());
        assert_eq!(
            run(&[0; MAX_LEN + 1], &k, &[]),
            Err(ApprovalError::TooLarge { len: MAX_LEN + 1 })
        );
        assert!(matches!(
            run(b"AZAP", &k, &[]),
            Err(ApprovalError::Decode(_))
        ));
        assert!(matches!(
            run(b"AZSM\x01\x00", &k, &[]),
            Err(ApprovalError::Decode(FormatError::BadMagic { .. }))
        ));
        let good = sign(&key(), &body());
        for n in 0..good.len() {
            assert!(decode(&good[..n]).is_err());
        }
        // A huge declared body length is a decode error, not an allocation.
        let mut huge = b"AZAP\x01\x00".to_vec();
        huge.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(decode(&huge).is_err());
    }

    #[test]
    fn the_domain_separates() {
        // A signature over the bare body envelope (no domain) is refused.
        let k = key();
        let env = body().to_bytes().unwrap();
        let mut ed25519 = [0u8; 64];
        ed25519.copy_from_slice(k.sign(&env).as_ref());
        let a = Approval {
            body: env,
            signature: Sig {
                key_id: key_id(&public(&k)),
                ed25519,
            },
        }
        .to_bytes()
        .unwrap();
        assert_eq!(
            run(&a, &public(&k), &answered()),
            Err(ApprovalError::BadSignature)
        );
    }

    #[test]
    fn answers_round_trip_and_junk_is_skipped() {
        let mut text = answer_line(&NONCE, &AK);
        text.push_str("garbage\n\nzz 11\n");
        text.push_str(&answer_line(&[9; 8], &[0xcd; 32]));
        let a = parse_answers(text.as_bytes());
        assert_eq!(
            a,
            vec![
                Answer {
                    nonce: NONCE.to_vec(),
                    ak_sha256: AK
                },
                Answer {
                    nonce: vec![9; 8],
                    ak_sha256: [0xcd; 32]
                }
            ]
        );
        assert!(parse_answers(&[0xff; 100]).is_empty());
    }
}
