//! The manifest signature check, the one both sides run: stage 1 before it
//! trusts a root slot, `imagegen inspect` / `attest verify` before they
//! trust a manifest file. Ed25519 (ring) over the `Manifest` envelope bytes
//! stored verbatim in [`SignedManifest::manifest`]; the key is the raw
//! 32-byte public key ([`crate::paths::MANIFEST_PUBLIC_KEY`] on the device).
//!
//! Order of the checks (each failure is its own [`VerifyError`]): signed at
//! all, key length, key id, signature, then the manifest decodes. The
//! manifest is decoded only after its signature verified.
use crate::manifest::{key_id, Hex, Manifest, Sig, SignedManifest, KEY_ID_LEN};
use crate::FormatError;
use core::fmt;
use ring::signature::{UnparsedPublicKey, ED25519};

/// Bytes of a raw Ed25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;

/// Why a signed manifest is not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// The manifest carries no signature (built with `--insecure-unsigned`)
    /// and unsigned manifests are not allowed.
    Unsigned,
    /// The manifest is signed but there is no key to check it with.
    NoKey,
    /// The public key is not [`PUBLIC_KEY_LEN`] bytes.
    BadPublicKey { len: usize },
    /// Signed by another key than the one checked against.
    KeyMismatch {
        /// Key id of the public key checked against.
        expected: [u8; KEY_ID_LEN],
        /// Key id recorded in the signature.
        found: [u8; KEY_ID_LEN],
    },
    /// The signature does not verify: the manifest was altered or forged.
    BadSignature,
    /// The signed bytes are not a manifest this build reads.
    Decode(FormatError),
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unsigned => f.write_str("manifest is unsigned"),
            Self::NoKey => f.write_str("manifest is signed but no public key is available"),
            Self::BadPublicKey { len } => {
                write!(f, "public key is {len} bytes, expected {PUBLIC_KEY_LEN}")
            }
            Self::KeyMismatch { expected, found } => write!(
                f,
                "key id mismatch: manifest signed by key {} but the public key is {}",
                Hex(found),
                Hex(expected)
            ),
            Self::BadSignature => f.write_str("bad signature (manifest altered or forged)"),
            Self::Decode(e) => write!(f, "manifest does not decode: {e}"),
        }
    }
}

impl core::error::Error for VerifyError {}

/// Check an Ed25519 signature `sig` over `message` against the raw
/// `public` key: key length, key id, then the signature. The one detached
/// check behind manifests and bundle headers.
pub fn check(message: &[u8], sig: &Sig, public: &[u8]) -> Result<(), VerifyError> {
    if public.len() != PUBLIC_KEY_LEN {
        return Err(VerifyError::BadPublicKey { len: public.len() });
    }
    let expected = key_id(public);
    if sig.key_id != expected {
        return Err(VerifyError::KeyMismatch {
            expected,
            found: sig.key_id,
        });
    }
    UnparsedPublicKey::new(&ED25519, public)
        .verify(message, &sig.ed25519)
        .map_err(|_| VerifyError::BadSignature)
}

/// Check `sm`'s signature against the raw Ed25519 `public` key, then decode
/// the manifest. An unsigned manifest is [`VerifyError::Unsigned`].
pub fn verify(sm: &SignedManifest, public: &[u8]) -> Result<Manifest, VerifyError> {
    let sig = sm.signature.as_ref().ok_or(VerifyError::Unsigned)?;
    check(&sm.manifest, sig, public)?;
    sm.manifest().map_err(VerifyError::Decode)
}

/// A manifest [`accept`] let through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub manifest: Manifest,
    /// Its signature verified (false: unsigned, allowed by the image).
    pub signed: bool,
}

/// Stage 1's rule: a signed manifest must verify against `public` (also
/// when unsigned ones are allowed — a bad signature is never ignored); an
/// unsigned one is accepted only with `allow_unsigned`
/// ([`crate::RootSpec::allow_unsigned`]). `public` is `None` when the
/// initramfs has no key.
pub fn accept(
    sm: &SignedManifest,
    public: Option<&[u8]>,
    allow_unsigned: bool,
) -> Result<Accepted, VerifyError> {
    match (&sm.signature, public) {
        (Some(_), Some(key)) => Ok(Accepted {
            manifest: verify(sm, key)?,
            signed: true,
        }),
        (Some(_), None) => Err(VerifyError::NoKey),
        (None, _) if allow_unsigned => Ok(Accepted {
            manifest: sm.manifest().map_err(VerifyError::Decode)?,
            signed: false,
        }),
        (None, _) => Err(VerifyError::Unsigned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Enveloped;
    use crate::manifest::{example, Sig};
    use alloc::vec;
    use ring::rand::SystemRandom;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    fn key() -> Ed25519KeyPair {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap()
    }

    fn signed_by(k: &Ed25519KeyPair, payload: &[u8]) -> SignedManifest {
        let mut ed25519 = [0u8; 64];
        ed25519.copy_from_slice(k.sign(payload).as_ref());
        SignedManifest {
            manifest: payload.to_vec(),
            signature: Some(Sig {
                key_id: key_id(k.public_key().as_ref()),
                ed25519,
            }),
        }
    }

    #[test]
    fn good_signature_decodes() {
        let k = key();
        let m = example();
        let sm = signed_by(&k, &m.to_bytes().unwrap());
        assert_eq!(verify(&sm, k.public_key().as_ref()), Ok(m.clone()));
        let a = accept(&sm, Some(k.public_key().as_ref()), false).unwrap();
        assert_eq!((a.manifest, a.signed), (m, true));
    }

    #[test]
    fn any_flipped_bit_is_bad_signature() {
        let k = key();
        let sm = signed_by(&k, &example().to_bytes().unwrap());
        let pk = k.public_key().as_ref();
        for i in 0..sm.manifest.len() {
            let mut bad = sm.clone();
            bad.manifest[i] ^= 0x01;
            assert_eq!(verify(&bad, pk), Err(VerifyError::BadSignature), "byte {i}");
        }
        let mut bad = sm.clone();
        if let Some(s) = bad.signature.as_mut() {
            s.ed25519[63] ^= 0x40;
        }
        assert_eq!(verify(&bad, pk), Err(VerifyError::BadSignature));
        // Allowing unsigned manifests does not excuse a bad signature.
        assert_eq!(accept(&bad, Some(pk), true), Err(VerifyError::BadSignature));
    }

    #[test]
    fn other_key_is_key_mismatch() {
        let (a, b) = (key(), key());
        let sm = signed_by(&a, &example().to_bytes().unwrap());
        assert_eq!(
            verify(&sm, b.public_key().as_ref()),
            Err(VerifyError::KeyMismatch {
                expected: key_id(b.public_key().as_ref()),
                found: key_id(a.public_key().as_ref()),
            })
        );
        // A right key id with another key's signature is still refused.
        let mut forged = sm.clone();
        forged.signature.as_mut().unwrap().key_id = key_id(b.public_key().as_ref());
        assert_eq!(
            verify(&forged, b.public_key().as_ref()),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verify(&sm, &[0; 31]),
            Err(VerifyError::BadPublicKey { len: 31 })
        );
        assert_eq!(verify(&sm, &[]), Err(VerifyError::BadPublicKey { len: 0 }));
    }

    #[test]
    fn unsigned_rules() {
        let m = example();
        let sm = SignedManifest {
            manifest: m.to_bytes().unwrap(),
            signature: None,
        };
        let pk = key();
        let pk = pk.public_key().as_ref();
        assert_eq!(verify(&sm, pk), Err(VerifyError::Unsigned));
        assert_eq!(accept(&sm, Some(pk), false), Err(VerifyError::Unsigned));
        assert_eq!(accept(&sm, None, false), Err(VerifyError::Unsigned));
        let a = accept(&sm, None, true).unwrap();
        assert_eq!((a.manifest, a.signed), (m, false));
        // Signed, but the initramfs has no key.
        let signed = signed_by(&key(), &sm.manifest);
        assert_eq!(accept(&signed, None, true), Err(VerifyError::NoKey));
        // Unsigned junk that is allowed still has to decode.
        let junk = SignedManifest {
            manifest: vec![1, 2, 3, 4, 1, 0],
            signature: None,
        };
        assert!(matches!(
            accept(&junk, None, true),
            Err(VerifyError::Decode(FormatError::BadMagic { .. }))
        ));
    }

    #[test]
    fn signed_junk_is_a_decode_error() {
        let k = key();
        let mut junk = b"AZMN".to_vec();
        junk.extend_from_slice(&<Manifest as Enveloped>::VERSION.to_le_bytes());
        let sm = signed_by(&k, &junk);
        assert!(matches!(
            verify(&sm, k.public_key().as_ref()),
            Err(VerifyError::Decode(FormatError::Payload(_)))
        ));
        for e in [
            VerifyError::Unsigned,
            VerifyError::NoKey,
            VerifyError::BadSignature,
            VerifyError::BadPublicKey { len: 3 },
        ] {
            assert!(!alloc::format!("{e}").is_empty());
        }
    }
}
