//! `repo_gpgcheck`: `repodata/repomd.xml.asc`, an ASCII-armored detached
//! OpenPGP signature over the exact bytes of `repodata/repomd.xml`, checked
//! against the repository's key(s) **before** repomd is parsed. A missing
//! signature, one that is not an armored signature, one by another key, or
//! one over other bytes is refused with the reason.
//!
//! The keys ([`Keys`]) and the signature check are the `rpm` crate's
//! (`rpm::signature::pgp::Verifier`, over the `pgp` crate it pulls in);
//! only dearmoring uses `pgp` directly. Since repomd names every metadata
//! file with its checksum, and primary every package with its checksum, a
//! verified repomd covers the whole repository.
use crate::keys::Keys;
use crate::limits::REPOMD_MAX;
use crate::repomd::{Repomd, RepomdError};
use crate::source::{Source, SourceError};
use pgp::composed::{Deserializable, DetachedSignature};
use pgp::packet::SignatureType;
use pgp::ser::Serialize;
use rpm::signature::Verifying;

/// Where repomd is, relative to the base URL.
pub const REPOMD_HREF: &str = "repodata/repomd.xml";
/// Where its detached signature is.
pub const SIGNATURE_HREF: &str = "repodata/repomd.xml.asc";
/// An armored signature is a few hundred bytes; a keyring of several
/// signatures stays far below this.
pub const SIGNATURE_MAX: u64 = 64 << 10;

#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("repo_gpgcheck: the signature of repomd.xml could not be read: {err}")]
    Missing {
        #[source]
        err: SourceError,
    },
    #[error("{url}: not an ASCII-armored OpenPGP signature: {err}")]
    Armor { url: String, err: String },
    #[error("{url}: a {kind} signature, not a signature over a document (binary or text)")]
    Kind { url: String, kind: String },
    #[error("{url}: does not verify repomd.xml with a key of {keys}: {err}")]
    Bad {
        url: String,
        keys: String,
        err: String,
    },
}

/// `asc` (the armored signature at `url`) verifies `repomd` with one of
/// `keys`.
pub fn verify(url: &str, keys: &Keys, repomd: &[u8], asc: &[u8]) -> Result<(), SignatureError> {
    let (sig, _headers) =
        DetachedSignature::from_armor_single(asc).map_err(|e| SignatureError::Armor {
            url: url.to_string(),
            err: e.to_string(),
        })?;
    match sig.signature.typ() {
        Some(SignatureType::Binary | SignatureType::Text) => {}
        other => {
            return Err(SignatureError::Kind {
                url: url.to_string(),
                kind: other.map_or("typeless".to_string(), |t| format!("{t:?}")),
            })
        }
    }
    let packet = sig.to_bytes().map_err(|e| SignatureError::Armor {
        url: url.to_string(),
        err: e.to_string(),
    })?;
    keys.verifier
        .verify(std::io::Cursor::new(repomd), &packet)
        .map_err(|e| SignatureError::Bad {
            url: url.to_string(),
            keys: keys.origin.clone(),
            err: e.to_string(),
        })
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("{url}: {err}")]
    Parse {
        url: String,
        #[source]
        err: RepomdError,
    },
}

/// `repodata/repomd.xml` of `src`, at most [`REPOMD_MAX`] bytes; with
/// `keys` (repo_gpgcheck) its signature is fetched and verified first, and
/// nothing of repomd is parsed unless it verifies.
pub fn load(src: &dyn Source, keys: Option<&Keys>) -> Result<Repomd, LoadError> {
    let bytes = src.get(REPOMD_HREF, REPOMD_MAX)?;
    if let Some(keys) = keys {
        let asc = src
            .get(SIGNATURE_HREF, SIGNATURE_MAX)
            .map_err(|err| SignatureError::Missing { err })?;
        let url = format!("{}/{SIGNATURE_HREF}", src.url());
        verify(&url, keys, &bytes, &asc)?;
    }
    Repomd::parse(&bytes).map_err(|err| LoadError::Parse {
        url: format!("{}/{REPOMD_HREF}", src.url()),
        err,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn garbage_signatures_are_refused_with_the_origin() {
        // A verifier with no key cannot be built from armor, so check the
        // dearmoring path on its own with an empty verifier.
        let keys = Keys {
            verifier: rpm::signature::pgp::Verifier::new(),
            origin: "none".into(),
        };
        for asc in [
            &b""[..],
            b"-----BEGIN PGP SIGNATURE-----\n\n!!!\n-----END PGP SIGNATURE-----\n",
        ] {
            let e = verify("u.asc", &keys, b"x", asc).unwrap_err();
            assert!(matches!(e, SignatureError::Armor { .. }), "{e}");
            assert!(e.to_string().starts_with("u.asc: "), "{e}");
        }
    }
}
