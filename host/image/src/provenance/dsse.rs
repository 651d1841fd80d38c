//! The DSSE envelope (<https://github.com/secure-systems-lab/dsse>,
//! protocol v1) around the statement: the signature is Ed25519 over the
//! pre-authentication encoding
//! `"DSSEv1" SP len(type) SP type SP len(body) SP body` (lengths in ASCII
//! decimal), never over the JSON as such, so a verifier needs no JSON
//! canonicalisation.
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// The in-toto payload type.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub payload_type: String,
    /// Standard base64 of the statement bytes.
    pub payload: String,
    /// Empty for an unsigned build (`--insecure-unsigned`, initramfs-only).
    pub signatures: Vec<Signature>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The manifest key id (first 8 bytes of sha256 of the raw public
    /// key), hex.
    pub keyid: String,
    /// Standard base64 of the 64-byte Ed25519 signature.
    pub sig: String,
}

/// DSSE v1 pre-authentication encoding.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// The envelope of `payload`, signed with `key` when there is one.
pub fn seal(payload: &[u8], key: Option<&azl_sign::SigningKey>) -> Envelope {
    let signatures = key
        .map(|k| {
            let s = k.sign(&pae(PAYLOAD_TYPE, payload));
            Signature {
                keyid: azl_formats::manifest::Hex(&s.key_id).to_string(),
                sig: B64.encode(s.ed25519),
            }
        })
        .into_iter()
        .collect();
    Envelope {
        payload_type: PAYLOAD_TYPE.to_string(),
        payload: B64.encode(payload),
        signatures,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_is_the_dsse_v1_encoding() {
        // The DSSE protocol document's example.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn seal_signs_the_pae_with_ring_verifiable_ed25519() {
        let key = azl_sign::testing::test_key();
        let env = seal(b"{\"a\":1}", Some(&key));
        assert_eq!(env.payload_type, PAYLOAD_TYPE);
        assert_eq!(B64.decode(&env.payload).unwrap(), b"{\"a\":1}");
        let [sig] = env.signatures.as_slice() else {
            panic!("one signature: {:?}", env.signatures)
        };
        assert_eq!(
            sig.keyid,
            azl_formats::manifest::Hex(&key.key_id()).to_string()
        );
        let pk =
            ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, key.public_key());
        pk.verify(
            &pae(PAYLOAD_TYPE, b"{\"a\":1}"),
            &B64.decode(&sig.sig).unwrap(),
        )
        .unwrap();
        assert!(pk
            .verify(
                &pae(PAYLOAD_TYPE, b"{\"a\":2}"),
                &B64.decode(&sig.sig).unwrap()
            )
            .is_err());
        assert!(seal(b"x", None).signatures.is_empty());
    }
}
