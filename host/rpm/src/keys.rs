//! A repository's OpenPGP keys (`gpgkey = …`, ASCII-armored, one or
//! several certificates), read once and used for both checks that need
//! them: the packages' header signatures (`gpgcheck`, [`crate::package`])
//! and repomd.xml's detached signature (`repo_gpgcheck`,
//! [`crate::repomd_sig`]). The key parsing and the signature checks are
//! the `rpm` crate's (`rpm::signature::pgp::Verifier`, over `pgp`).

/// The keys, ready to verify.
pub struct Keys {
    pub(crate) verifier: rpm::signature::pgp::Verifier,
    /// Where the keys came from, for messages.
    pub origin: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{origin}: not a usable OpenPGP public key: {err}")]
pub struct KeyError {
    pub origin: String,
    pub err: String,
}

impl Keys {
    pub fn from_armored(origin: &str, armored: &[u8]) -> Result<Keys, KeyError> {
        let verifier =
            rpm::signature::pgp::Verifier::from_asc_bytes(armored).map_err(|e| KeyError {
                origin: origin.to_string(),
                err: e.to_string(),
            })?;
        Ok(Keys {
            verifier,
            origin: origin.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_not_a_key_is_refused_naming_its_origin() {
        let e = Keys::from_armored("keys.asc", b"not a key").err().unwrap();
        assert!(
            e.to_string()
                .starts_with("keys.asc: not a usable OpenPGP public key"),
            "{e}"
        );
    }
}
