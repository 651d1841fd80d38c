//! The three TPM 2.0 structures a quote verifier reads, parsed by hand
//! (big-endian, TPM 2.0 Library Part 2): TPM2B_ATTEST holding a
//! TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE, TPM2B_PUBLIC of an ECC key, and
//! TPMT_SIGNATURE with ECDSA. Every read is bounds-checked and every
//! structure must use its bytes exactly (no trailing bytes), so hostile
//! input gives a [`TpmError`], never a panic.
//!
//! The magic and the type of the attestation are checked while parsing,
//! before anything else is read: the bytes after them only have a meaning
//! once the TPM vouched (TPM_GENERATED_VALUE) that it built them.
use std::fmt;

/// TPMS_ATTEST.magic of a structure the TPM built itself.
pub const TPM_GENERATED_VALUE: u32 = 0xFF54_4347;
/// TPMS_ATTEST.type of TPM2_Quote output.
pub const TPM_ST_ATTEST_QUOTE: u16 = 0x8018;
// The AK's algorithms and attribute bits are the formats contract's (the
// device creates its AK from the same values).
use azl_formats::ak::AkParams;
pub use azl_formats::ak::{
    ATTR_DECRYPT, ATTR_FIXED_PARENT, ATTR_FIXED_TPM, ATTR_RESTRICTED, ATTR_SENSITIVE_DATA_ORIGIN,
    ATTR_SIGN, ATTR_USER_WITH_AUTH, TPM_ALG_ECC, TPM_ALG_ECDSA, TPM_ALG_NULL, TPM_ALG_SHA256,
    TPM_ECC_NIST_P256,
};
/// Algorithm ids only named in messages (not part of the AK contract).
pub const TPM_ALG_SHA1: u16 = 0x0004;
pub const TPM_ALG_SHA384: u16 = 0x000C;
pub const TPM_ALG_SHA512: u16 = 0x000D;
pub const TPM_ALG_RSA: u16 = 0x0001;
pub const TPM_ALG_KEYEDHASH: u16 = 0x0008;
pub const TPM_ALG_SYMCIPHER: u16 = 0x0025;

/// Most TPMS_PCR_SELECTION entries accepted in a TPML_PCR_SELECTION (TPM2
/// caps the list at HASH_COUNT; a handful is plenty).
pub const MAX_PCR_SELECTIONS: u32 = 16;

/// What is wrong with a TPM structure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TpmError {
    #[error("ends at byte {offset} inside {what} (needs {need} bytes, {have} left)")]
    Truncated {
        what: &'static str,
        offset: usize,
        need: usize,
        have: usize,
    },
    #[error("{what} size prefix says {declared} bytes but {actual} follow")]
    SizePrefix {
        what: &'static str,
        declared: usize,
        actual: usize,
    },
    #[error("{extra} trailing bytes after {what}")]
    Trailing { what: &'static str, extra: usize },
    /// TPMS_ATTEST.magic is not TPM_GENERATED_VALUE.
    #[error("magic is 0x{0:08x}, not TPM_GENERATED_VALUE 0xff544347")]
    NotGenerated(u32),
    /// TPMS_ATTEST.type is not TPM_ST_ATTEST_QUOTE.
    #[error("attestation type is 0x{0:04x}, not TPM_ST_ATTEST_QUOTE 0x8018")]
    NotQuote(u16),
    #[error("{what}: unsupported algorithm 0x{alg:04x}")]
    Unsupported { what: &'static str, alg: u16 },
    #[error("{what} is {len} bytes, more than {max}")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
}

type Result<T> = std::result::Result<T, TpmError>;

/// A bounds-checked big-endian cursor.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.pos..).unwrap_or_default()
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        let rest = self.rest();
        let out = rest.get(..n).ok_or(TpmError::Truncated {
            what,
            offset: self.pos,
            need: n,
            have: rest.len(),
        })?;
        // `out` lies inside `bytes`, so pos + n <= bytes.len().
        self.pos = self.pos.saturating_add(n);
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let b = self.take(N, what)?;
        <[u8; N]>::try_from(b).map_err(|_| TpmError::Truncated {
            what,
            offset: self.pos,
            need: N,
            have: b.len(),
        })
    }

    fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(u8::from_be_bytes(self.array(what)?))
    }

    fn u16(&mut self, what: &'static str) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// A TPM2B: u16 size, then that many bytes.
    fn tpm2b(&mut self, what: &'static str) -> Result<&'a [u8]> {
        let n = self.u16(what)?;
        self.take(n.into(), what)
    }

    fn finish(&self, what: &'static str) -> Result<()> {
        match self.bytes.len().saturating_sub(self.pos) {
            0 => Ok(()),
            extra => Err(TpmError::Trailing { what, extra }),
        }
    }
}

/// Strip a TPM2B size prefix that must cover exactly the rest.
fn unwrap_tpm2b<'a>(bytes: &'a [u8], what: &'static str) -> Result<&'a [u8]> {
    let mut r = Reader::new(bytes);
    let declared = usize::from(r.u16(what)?);
    let body = bytes.get(2..).unwrap_or_default();
    if declared != body.len() {
        return Err(TpmError::SizePrefix {
            what,
            declared,
            actual: body.len(),
        });
    }
    Ok(body)
}

/// One TPMS_PCR_SELECTION.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcrSelection {
    pub hash: u16,
    /// The selected PCR indices, ascending (the order the TPM digests them).
    pub pcrs: Vec<u32>,
}

/// A parsed TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote<'a> {
    /// The TPMS_ATTEST bytes (what the signature covers).
    pub attest: &'a [u8],
    pub qualified_signer: &'a [u8],
    pub extra_data: &'a [u8],
    pub clock: u64,
    pub reset_count: u32,
    pub restart_count: u32,
    pub safe: bool,
    pub firmware_version: u64,
    pub pcr_select: Vec<PcrSelection>,
    pub pcr_digest: &'a [u8],
}

impl<'a> Quote<'a> {
    /// Parse a TPM2B_ATTEST (as TPM2_Quote returns it).
    pub fn parse_tpm2b(tpm2b_attest: &'a [u8]) -> Result<Quote<'a>> {
        Self::parse(unwrap_tpm2b(tpm2b_attest, "TPM2B_ATTEST")?)
    }

    /// Parse TPMS_ATTEST bytes: magic, then type, then the rest.
    pub fn parse(attest: &'a [u8]) -> Result<Quote<'a>> {
        let mut r = Reader::new(attest);
        let magic = r.u32("TPMS_ATTEST.magic")?;
        if magic != TPM_GENERATED_VALUE {
            return Err(TpmError::NotGenerated(magic));
        }
        let ty = r.u16("TPMS_ATTEST.type")?;
        if ty != TPM_ST_ATTEST_QUOTE {
            return Err(TpmError::NotQuote(ty));
        }
        let qualified_signer = r.tpm2b("TPMS_ATTEST.qualifiedSigner")?;
        let extra_data = r.tpm2b("TPMS_ATTEST.extraData")?;
        let clock = r.u64("TPMS_CLOCK_INFO.clock")?;
        let reset_count = r.u32("TPMS_CLOCK_INFO.resetCount")?;
        let restart_count = r.u32("TPMS_CLOCK_INFO.restartCount")?;
        let safe = r.u8("TPMS_CLOCK_INFO.safe")? != 0;
        let firmware_version = r.u64("TPMS_ATTEST.firmwareVersion")?;
        let count = r.u32("TPML_PCR_SELECTION.count")?;
        if count > MAX_PCR_SELECTIONS {
            return Err(TpmError::TooLong {
                what: "TPML_PCR_SELECTION",
                len: usize::try_from(count).unwrap_or(usize::MAX),
                max: MAX_PCR_SELECTIONS as usize,
            });
        }
        // Allocate by the bytes present, not the declared count: each entry
        // takes at least 3 bytes (hash, sizeofSelect).
        let fit = r.rest().len() / 3;
        let mut pcr_select = Vec::with_capacity((count as usize).min(fit));
        for _ in 0..count {
            let hash = r.u16("TPMS_PCR_SELECTION.hash")?;
            let size = r.u8("TPMS_PCR_SELECTION.sizeofSelect")?;
            let bitmap = r.take(size.into(), "TPMS_PCR_SELECTION.pcrSelect")?;
            let pcrs = bitmap
                .iter()
                .enumerate()
                .flat_map(|(byte, bits)| {
                    (0..8u32)
                        .filter(move |bit| bits & (1 << bit) != 0)
                        // byte < 256 (sizeofSelect is a u8): no overflow.
                        .map(move |bit| (byte as u32).saturating_mul(8).saturating_add(bit))
                })
                .collect();
            pcr_select.push(PcrSelection { hash, pcrs });
        }
        let pcr_digest = r.tpm2b("TPMS_QUOTE_INFO.pcrDigest")?;
        r.finish("TPMS_ATTEST")?;
        Ok(Quote {
            attest,
            qualified_signer,
            extra_data,
            clock,
            reset_count,
            restart_count,
            safe,
            firmware_version,
            pcr_select,
            pcr_digest,
        })
    }
}

/// The parts of an ECC TPMT_PUBLIC a verifier needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EccPublic {
    pub name_alg: u16,
    pub attributes: u32,
    /// TPMT_ECC_SCHEME: (scheme, hashAlg); hashAlg is NULL for a NULL scheme.
    pub scheme: (u16, u16),
    pub curve: u16,
    /// Affine coordinates, left-padded to 32 bytes.
    pub x: [u8; 32],
    pub y: [u8; 32],
}

impl EccPublic {
    /// Parse a TPM2B_PUBLIC; any key type but ECC is `Unsupported`, and
    /// only P-256 (coordinates of at most 32 bytes) is accepted.
    pub fn parse_tpm2b(tpm2b_public: &[u8]) -> Result<EccPublic> {
        let body = unwrap_tpm2b(tpm2b_public, "TPM2B_PUBLIC")?;
        let mut r = Reader::new(body);
        let ty = r.u16("TPMT_PUBLIC.type")?;
        if ty != TPM_ALG_ECC {
            return Err(TpmError::Unsupported {
                what: "AK key type (only ECC is supported)",
                alg: ty,
            });
        }
        let name_alg = r.u16("TPMT_PUBLIC.nameAlg")?;
        let attributes = r.u32("TPMT_PUBLIC.objectAttributes")?;
        let _auth_policy = r.tpm2b("TPMT_PUBLIC.authPolicy")?;
        // TPMS_ECC_PARMS
        let sym = r.u16("TPMT_SYM_DEF_OBJECT.algorithm")?;
        if sym != TPM_ALG_NULL {
            r.u16("TPMT_SYM_DEF_OBJECT.keyBits")?;
            r.u16("TPMT_SYM_DEF_OBJECT.mode")?;
        }
        let scheme = r.u16("TPMT_ECC_SCHEME.scheme")?;
        let scheme_hash = if scheme == TPM_ALG_NULL {
            TPM_ALG_NULL
        } else {
            r.u16("TPMT_ECC_SCHEME.hashAlg")?
        };
        let curve = r.u16("TPMS_ECC_PARMS.curveID")?;
        if curve != TPM_ECC_NIST_P256 {
            return Err(TpmError::Unsupported {
                what: "AK curve (only NIST P-256 is supported)",
                alg: curve,
            });
        }
        let kdf = r.u16("TPMT_KDF_SCHEME.scheme")?;
        if kdf != TPM_ALG_NULL {
            r.u16("TPMT_KDF_SCHEME.hashAlg")?;
        }
        let x = pad32(r.tpm2b("TPMS_ECC_POINT.x")?, "TPMS_ECC_POINT.x")?;
        let y = pad32(r.tpm2b("TPMS_ECC_POINT.y")?, "TPMS_ECC_POINT.y")?;
        r.finish("TPMT_PUBLIC")?;
        Ok(EccPublic {
            name_alg,
            attributes,
            scheme: (scheme, scheme_hash),
            curve,
            x,
            y,
        })
    }

    /// The uncompressed SEC1 point `04 ‖ x ‖ y` (what ring takes).
    pub fn sec1(&self) -> [u8; 65] {
        let mut p = [0u8; 65];
        for (dst, src) in p
            .iter_mut()
            .zip(core::iter::once(&0x04).chain(&self.x).chain(&self.y))
        {
            *dst = *src;
        }
        p
    }

    /// The fields [`azl_formats::ak::check`] judges (the type is ECC: the
    /// parser accepts nothing else).
    pub fn params(&self) -> AkParams {
        AkParams {
            object_type: TPM_ALG_ECC,
            name_alg: self.name_alg,
            attributes: self.attributes,
            scheme: self.scheme,
            curve: self.curve,
        }
    }
}

/// A TPMT_SIGNATURE with an ECDSA signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcdsaSignature {
    pub hash: u16,
    /// r ‖ s, each left-padded to 32 bytes.
    pub fixed: [u8; 64],
}

impl EcdsaSignature {
    pub fn parse(tpmt_signature: &[u8]) -> Result<EcdsaSignature> {
        let mut r = Reader::new(tpmt_signature);
        let alg = r.u16("TPMT_SIGNATURE.sigAlg")?;
        if alg != TPM_ALG_ECDSA {
            return Err(TpmError::Unsupported {
                what: "signature algorithm (only ECDSA is supported)",
                alg,
            });
        }
        let hash = r.u16("TPMS_SIGNATURE_ECDSA.hash")?;
        let sr = pad32(r.tpm2b("TPMS_SIGNATURE_ECDSA.signatureR")?, "signatureR")?;
        let ss = pad32(r.tpm2b("TPMS_SIGNATURE_ECDSA.signatureS")?, "signatureS")?;
        r.finish("TPMT_SIGNATURE")?;
        let mut fixed = [0u8; 64];
        for (dst, src) in fixed.iter_mut().zip(sr.iter().chain(&ss)) {
            *dst = *src;
        }
        Ok(EcdsaSignature { hash, fixed })
    }
}

/// Left-pad a big-endian integer to 32 bytes (ECC P-256 coordinates and
/// signature halves); longer values are an error.
fn pad32(v: &[u8], what: &'static str) -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    let too_long = TpmError::TooLong {
        what,
        len: v.len(),
        max: 32,
    };
    let start = 32usize.checked_sub(v.len()).ok_or(too_long.clone())?;
    out.get_mut(start..).ok_or(too_long)?.copy_from_slice(v);
    Ok(out)
}

/// Name of a hash algorithm id for messages.
pub fn hash_name(alg: u16) -> String {
    match alg {
        TPM_ALG_SHA1 => "sha1".into(),
        TPM_ALG_SHA256 => "sha256".into(),
        TPM_ALG_SHA384 => "sha384".into(),
        TPM_ALG_SHA512 => "sha512".into(),
        TPM_ALG_NULL => "null".into(),
        other => format!("alg 0x{other:04x}"),
    }
}

impl fmt::Display for PcrSelection {
    /// `sha256:8,9,11` (as tpm2-tools writes selections).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", hash_name(self.hash))?;
        for (i, p) in self.pcrs.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// A whole TPML_PCR_SELECTION for messages: `sha256:8,9 + sha1:11`, or `none`.
pub fn selection_string(sel: &[PcrSelection]) -> String {
    if sel.is_empty() {
        return "none".into();
    }
    sel.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" + ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TPM2B_ATTEST captured from swtpm (tpm2_quote -l sha256:8,9,11 -q 0011223344).
    const QUOTE: &str = "ff54434780180022000b45253b2d7a0bf8bafc7c80d480904f4d4e520b1fc6de57a6f93ef5ef044e73bb000500112233440000000000001cd7000000010000000001201910230016363600000001000b03000b0000200edb38985e0396cf8814b5d426aeabf41c2ee9485064da118ef5b4ff2ab26599";
    const AK: &str = "00580023000b00050072000000100018000b000300100020aac1d969277c9736445887f23b7ec1f973f2edd154266db220f1b7778d4ad5e700208daa1dc5d28af9393e63c2a120f20bcf8c86fd43e3f3c42408102f870c3cf14f";
    const SIG: &str = "0018000b0020af33d1a750c1446451f16503f2a9dc3e4d7e0b015c7b83252920cf82fc96a1d4002051a37f4c59ab4f366caf89a0910783727ae510402ce8b9f54dcf5701c48123bd";

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn tpm2b(b: &[u8]) -> Vec<u8> {
        let mut v = (b.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(b);
        v
    }

    #[test]
    fn parses_swtpm_structures() {
        let attest = hex(QUOTE);
        let wrapped = tpm2b(&attest);
        let q = Quote::parse_tpm2b(&wrapped).unwrap();
        assert_eq!(q.extra_data, hex("0011223344"));
        assert_eq!(
            q.pcr_select,
            vec![PcrSelection {
                hash: TPM_ALG_SHA256,
                pcrs: vec![8, 9, 11]
            }]
        );
        assert_eq!(selection_string(&q.pcr_select), "sha256:8,9,11");
        assert_eq!(q.pcr_digest.len(), 32);
        assert_eq!(q.attest, &attest[..]);
        let ak = EccPublic::parse_tpm2b(&hex(AK)).unwrap();
        assert_eq!(ak.attributes, 0x0005_0072);
        assert_eq!(ak.scheme, (TPM_ALG_ECDSA, TPM_ALG_SHA256));
        let sig = EcdsaSignature::parse(&hex(SIG)).unwrap();
        assert_eq!(sig.hash, TPM_ALG_SHA256);
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_FIXED,
            &ak.sec1()[..],
        )
        .verify(&attest, &sig.fixed)
        .unwrap();
    }

    #[test]
    fn hostile_bytes_never_panic() {
        let attest = tpm2b(&hex(QUOTE));
        let ak = hex(AK);
        let sig = hex(SIG);
        for (i, bytes) in [&attest, &ak, &sig].into_iter().enumerate() {
            let parse = |b: &[u8]| match i {
                0 => Quote::parse_tpm2b(b).map(drop),
                1 => EccPublic::parse_tpm2b(b).map(drop),
                _ => EcdsaSignature::parse(b).map(drop),
            };
            parse(bytes).unwrap();
            for cut in 0..bytes.len() {
                let e = parse(&bytes[..cut]).unwrap_err();
                let _ = e.to_string();
            }
            for pos in 0..bytes.len() {
                for x in [0x01, 0x80, 0xff] {
                    let mut b = bytes.clone();
                    b[pos] ^= x;
                    let _ = parse(&b);
                }
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(parse(&longer).is_err());
        }
        let mut forged = hex(QUOTE);
        forged[0] = 0;
        assert_eq!(
            Quote::parse(&forged).unwrap_err(),
            TpmError::NotGenerated(0x0054_4347)
        );
    }
}
