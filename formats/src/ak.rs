//! The attestation key (AK) both sides agree on: init creates it from this
//! template (TPM2_CreatePrimary under the endorsement hierarchy) and the
//! host verifier refuses a report whose AK does not match it. TPM 2.0
//! Library Part 2 values (big-endian on the wire; these are the numbers).
use core::fmt;

/// TPM_ALG_ECC: the AK's object type.
pub const TPM_ALG_ECC: u16 = 0x0023;
/// TPM_ALG_ECDSA: the AK's signing scheme.
pub const TPM_ALG_ECDSA: u16 = 0x0018;
/// TPM_ALG_SHA256: the AK's nameAlg and the scheme's hash.
pub const TPM_ALG_SHA256: u16 = crate::eventlog::TPM_ALG_SHA256;
/// TPM_ALG_NULL (a scheme left to the signing command).
pub const TPM_ALG_NULL: u16 = 0x0010;
/// TPM_ECC_NIST_P256: the AK's curve.
pub const TPM_ECC_NIST_P256: u16 = 0x0003;

/// TPMA_OBJECT bits.
pub const ATTR_FIXED_TPM: u32 = 1 << 1;
pub const ATTR_FIXED_PARENT: u32 = 1 << 4;
pub const ATTR_SENSITIVE_DATA_ORIGIN: u32 = 1 << 5;
pub const ATTR_USER_WITH_AUTH: u32 = 1 << 6;
pub const ATTR_RESTRICTED: u32 = 1 << 16;
pub const ATTR_DECRYPT: u32 = 1 << 17;
pub const ATTR_SIGN: u32 = 1 << 18;

/// The template's objectAttributes: fixedTPM | fixedParent |
/// sensitiveDataOrigin | userWithAuth | restricted | sign = 0x00050072.
pub const AK_ATTRIBUTES: u32 = ATTR_FIXED_TPM
    | ATTR_FIXED_PARENT
    | ATTR_SENSITIVE_DATA_ORIGIN
    | ATTR_USER_WITH_AUTH
    | ATTR_RESTRICTED
    | ATTR_SIGN;
/// Template object type, nameAlg, curve and scheme (scheme, hash).
pub const AK_TYPE: u16 = TPM_ALG_ECC;
pub const AK_NAME_ALG: u16 = TPM_ALG_SHA256;
pub const AK_CURVE: u16 = TPM_ECC_NIST_P256;
pub const AK_SCHEME: (u16, u16) = (TPM_ALG_ECDSA, TPM_ALG_SHA256);

/// The attributes a verifier requires of any AK: a key that is not
/// restricted, not a signing key or not bound to its TPM could sign forged
/// quotes. (The template sets more; these three are what matter.)
pub const REQUIRED_ATTRIBUTES: [(u32, &str); 3] = [
    (ATTR_RESTRICTED, "restricted"),
    (ATTR_SIGN, "sign"),
    (ATTR_FIXED_TPM, "fixedTPM"),
];

/// The fields of a TPMT_PUBLIC the verifier checks (its parser fills these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AkParams {
    pub object_type: u16,
    pub name_alg: u16,
    pub attributes: u32,
    /// (scheme, hash); (TPM_ALG_NULL, _) leaves it to the signing command.
    pub scheme: (u16, u16),
    pub curve: u16,
}

/// Why a public key is not an acceptable AK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AkError {
    /// Not an ECC key.
    ObjectType(u16),
    /// nameAlg is not SHA-256.
    NameAlg(u16),
    /// Lacks required attributes (`missing` holds the missing bits).
    Attributes { attributes: u32, missing: u32 },
    /// A scheme other than ECDSA-SHA256 (or NULL).
    Scheme(u16, u16),
    /// Not NIST P-256.
    Curve(u16),
}

impl fmt::Display for AkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ObjectType(t) => write!(f, "AK type 0x{t:04x} is not ECC (0x0023)"),
            Self::NameAlg(a) => write!(f, "AK nameAlg 0x{a:04x} is not SHA-256 (0x000b)"),
            Self::Attributes {
                attributes,
                missing,
            } => {
                write!(
                    f,
                    "AK is not a restricted signing key bound to its TPM (attributes 0x{attributes:08x}, missing"
                )?;
                let mut sep = " ";
                for (bit, name) in REQUIRED_ATTRIBUTES {
                    if missing & bit != 0 {
                        write!(f, "{sep}{name}")?;
                        sep = ", ";
                    }
                }
                f.write_str("): such a key can sign forged quotes")
            }
            Self::Scheme(s, h) => {
                write!(
                    f,
                    "AK signing scheme 0x{s:04x}/0x{h:04x} is not ECDSA-SHA256"
                )
            }
            Self::Curve(c) => write!(f, "AK curve 0x{c:04x} is not NIST P-256 (0x0003)"),
        }
    }
}

impl core::error::Error for AkError {}

/// Check an AK's public parameters against the template's requirements.
pub fn check(ak: &AkParams) -> Result<(), AkError> {
    if ak.object_type != AK_TYPE {
        return Err(AkError::ObjectType(ak.object_type));
    }
    if ak.name_alg != AK_NAME_ALG {
        return Err(AkError::NameAlg(ak.name_alg));
    }
    let need = REQUIRED_ATTRIBUTES.iter().fold(0, |a, (b, _)| a | b);
    let missing = need & !ak.attributes;
    if missing != 0 {
        return Err(AkError::Attributes {
            attributes: ak.attributes,
            missing,
        });
    }
    if ak.scheme != AK_SCHEME && ak.scheme.0 != TPM_ALG_NULL {
        return Err(AkError::Scheme(ak.scheme.0, ak.scheme.1));
    }
    if ak.curve != AK_CURVE {
        return Err(AkError::Curve(ak.curve));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: AkParams = AkParams {
        object_type: AK_TYPE,
        name_alg: AK_NAME_ALG,
        attributes: AK_ATTRIBUTES,
        scheme: AK_SCHEME,
        curve: AK_CURVE,
    };

    #[test]
    fn template_values() {
        // The numbers init has sent and the verifier has checked since v1.
        assert_eq!(AK_ATTRIBUTES, 0x0005_0072);
        assert_eq!((AK_TYPE, AK_NAME_ALG, AK_CURVE), (0x0023, 0x000B, 0x0003));
        assert_eq!(AK_SCHEME, (0x0018, 0x000B));
        assert_eq!(check(&TEMPLATE), Ok(()));
        // A NULL scheme (left to TPM2_Quote) is fine.
        assert_eq!(
            check(&AkParams {
                scheme: (TPM_ALG_NULL, TPM_ALG_NULL),
                ..TEMPLATE
            }),
            Ok(())
        );
    }

    #[test]
    fn each_deviation_is_named() {
        let with = |f: fn(&mut AkParams)| {
            let mut p = TEMPLATE;
            f(&mut p);
            check(&p)
        };
        assert_eq!(
            with(|p| p.object_type = 0x0001),
            Err(AkError::ObjectType(1))
        );
        assert_eq!(with(|p| p.name_alg = 0x0004), Err(AkError::NameAlg(4)));
        assert_eq!(with(|p| p.curve = 0x0004), Err(AkError::Curve(4)));
        assert_eq!(
            with(|p| p.scheme = (TPM_ALG_ECDSA, 0x0004)),
            Err(AkError::Scheme(0x0018, 4))
        );
        let e = with(|p| p.attributes &= !(ATTR_RESTRICTED | ATTR_FIXED_TPM)).unwrap_err();
        assert_eq!(
            e,
            AkError::Attributes {
                attributes: AK_ATTRIBUTES & !(ATTR_RESTRICTED | ATTR_FIXED_TPM),
                missing: ATTR_RESTRICTED | ATTR_FIXED_TPM
            }
        );
        let msg = alloc::format!("{e}");
        assert!(msg.contains("missing restricted, fixedTPM)"), "{msg}");
        // Extra attributes (e.g. decrypt) are not this check's concern.
        assert_eq!(with(|p| p.attributes |= ATTR_DECRYPT), Ok(()));
    }
}
