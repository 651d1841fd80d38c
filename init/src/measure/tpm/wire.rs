//! Command marshalling and response parsing for exactly the commands
//! [`super::Tpm`] sends, built on the `tpm2-protocol` crate: commands are
//! its typed structs marshalled by `tpm_marshal_command`; responses are
//! validated as frames and read through its zero-copy field views, so the
//! attestation structures (TPM2B_PUBLIC, TPM2B_ATTEST, TPMT_SIGNATURE) are
//! handed on as the exact bytes the TPM produced.
use super::{TpmError, PCR_COUNT, RH_ENDORSEMENT, RH_OWNER, RH_PLATFORM};
use tpm2_protocol::basic::{TpmHandle, TpmUint16, TpmUint64};
use tpm2_protocol::data::{
    Tpm2bAttest, Tpm2bAuth, Tpm2bData, Tpm2bDigest, Tpm2bNvPublic, Tpm2bPublic,
    Tpm2bSensitiveCreate, TpmAlgId, TpmEccCurve, TpmSt, TpmSu, TpmaNv, TpmaObject, TpmaSession,
    TpmlDigestValues, TpmlPcrSelection, TpmsAuthCommand, TpmsEccParms, TpmsEccPoint, TpmsNvPublic,
    TpmsPcrSelect, TpmsPcrSelection, TpmsSchemeHash, TpmsSensitiveCreate, TpmtEccScheme, TpmtHa,
    TpmtKdfScheme, TpmtPublic, TpmtSigScheme, TpmtSignature, TpmtSymDefObject, TpmuAsymScheme,
    TpmuHa, TpmuPublicId, TpmuPublicParms, TpmuSigScheme,
};
use tpm2_protocol::frame::{
    tpm_marshal_command, TpmCreatePrimaryCommand, TpmFlushContextCommand, TpmFrame,
    TpmGetRandomCommand, TpmGetRandomResponse, TpmNvDefineSpaceCommand, TpmNvIncrementCommand,
    TpmNvReadCommand, TpmNvReadPublicCommand, TpmNvReadPublicResponse, TpmNvReadResponse,
    TpmNvSetBitsCommand, TpmPcrExtendCommand, TpmPcrReadCommand, TpmPcrReadResponse,
    TpmQuoteCommand, TpmResponse, TpmStartupCommand,
};
use tpm2_protocol::{TpmField, TpmWriter};

/// TPM_RS_PW: the password authorisation "session".
pub const RS_PW: u32 = 0x4000_0009;
/// TPM2B_ATTEST starts with TPM_GENERATED_VALUE then TPM_ST_ATTEST_QUOTE.
pub const ATTEST_QUOTE_PREFIX: [u8; 6] = [0xFF, 0x54, 0x43, 0x47, 0x80, 0x18];
/// The AK's object attributes (the value the host verifier requires).
pub use azl_formats::ak::AK_ATTRIBUTES;
/// NV counter attributes: TPM_NT_COUNTER, written and read with the index's
/// own (empty) auth or the owner's, exempt from dictionary-attack lockout.
pub const NV_COUNTER_ATTRIBUTES: u32 = TpmaNv::COUNTER.bits()
    | TpmaNv::OWNERWRITE.bits()
    | TpmaNv::AUTHWRITE.bits()
    | TpmaNv::OWNERREAD.bits()
    | TpmaNv::AUTHREAD.bits()
    | TpmaNv::NO_DA.bits();

/// Largest command this module builds (CreatePrimary is ~70 bytes).
const CMD_BUF: usize = 512;

fn proto(command: &'static str) -> impl Fn(tpm2_protocol::TpmError) -> TpmError {
    move |e| TpmError::Malformed {
        command,
        what: format!("{e}: {e:?}"),
    }
}

fn bad(command: &'static str, what: impl Into<String>) -> TpmError {
    TpmError::Malformed {
        command,
        what: what.into(),
    }
}

/// The empty password session (as swtpm accepts it: `40000009 0000 00 0000`).
fn pw_session() -> TpmsAuthCommand {
    TpmsAuthCommand {
        session_handle: TpmHandle::new(RS_PW),
        nonce: Default::default(),
        session_attributes: TpmaSession::empty(),
        hmac: Tpm2bAuth::default(),
    }
}

fn marshal<C: TpmFrame>(command: &'static str, cmd: &C, auth: bool) -> Result<Vec<u8>, TpmError> {
    let mut buf = [0u8; CMD_BUF];
    let mut w = TpmWriter::new(&mut buf);
    let sessions = [pw_session()];
    let (tag, sessions): (_, &[TpmsAuthCommand]) = if auth {
        (TpmSt::Sessions, &sessions)
    } else {
        (TpmSt::NoSessions, &[])
    };
    tpm_marshal_command(cmd, tag, sessions, &mut w).map_err(proto(command))?;
    Ok(w.as_bytes().to_vec())
}

/// The response code of a response frame (header only is checked).
pub fn response_code(command: &'static str, resp: &[u8]) -> Result<u32, TpmError> {
    match resp {
        [_, _, s0, s1, s2, s3, c0, c1, c2, c3, ..] => {
            let size = u32::from_be_bytes([*s0, *s1, *s2, *s3]);
            if usize::try_from(size).ok() != Some(resp.len()) {
                return Err(bad(
                    command,
                    format!(
                        "response size field {size} but {} bytes received",
                        resp.len()
                    ),
                ));
            }
            Ok(u32::from_be_bytes([*c0, *c1, *c2, *c3]))
        }
        _ => Err(bad(
            command,
            format!("response too short ({} bytes)", resp.len()),
        )),
    }
}

/// Split a success response into its handle area and parameter area,
/// validating the frame (tag, size, session area) on the way.
fn areas<'a>(
    command: &'static str,
    resp: &'a [u8],
    handles: usize,
) -> Result<(&'a [u8], &'a [u8]), TpmError> {
    let frame = TpmResponse::cast(resp).map_err(proto(command))?;
    let tag = frame.tag().map_err(proto(command))?;
    let body = frame.body();
    let hlen = handles * 4;
    let handle_area = body
        .get(..hlen)
        .ok_or_else(|| bad(command, "truncated handle area"))?;
    let rest = body.get(hlen..).unwrap_or(&[]);
    if tag != TpmSt::Sessions {
        return Ok((handle_area, rest));
    }
    let (size, rest) = match rest {
        [a, b, c, d, rest @ ..] => (u32::from_be_bytes([*a, *b, *c, *d]), rest),
        _ => return Err(bad(command, "truncated parameter size")),
    };
    let size = usize::try_from(size).map_err(|_| bad(command, "parameter size"))?;
    let params = rest
        .get(..size)
        .ok_or_else(|| bad(command, "parameter area larger than the response"))?;
    Ok((handle_area, params))
}

fn select(command: &'static str, pcrs: &[u8]) -> Result<TpmlPcrSelection, TpmError> {
    let mut bitmap = [0u8; 3];
    for &p in pcrs {
        if p >= PCR_COUNT {
            return Err(bad(command, format!("PCR {p} out of range")));
        }
        if let Some(b) = bitmap.get_mut(usize::from(p / 8)) {
            *b |= 1 << (p % 8);
        }
    }
    let mut list = TpmlPcrSelection::default();
    list.try_push(TpmsPcrSelection {
        hash: TpmAlgId::Sha256,
        pcr_select: TpmsPcrSelect::try_from(&bitmap[..]).map_err(proto(command))?,
    })
    .map_err(proto(command))?;
    Ok(list)
}

/// TPM2_Startup(TPM_SU_CLEAR).
pub fn startup_clear() -> Result<Vec<u8>, TpmError> {
    let cmd = TpmStartupCommand {
        handles: [],
        startup_type: TpmSu::Clear,
    };
    marshal("Startup", &cmd, false)
}

/// TPM2_GetRandom(bytesRequested).
pub fn get_random(n: u16) -> Result<Vec<u8>, TpmError> {
    let cmd = TpmGetRandomCommand {
        handles: [],
        bytes_requested: TpmUint16::new(n),
    };
    marshal("GetRandom", &cmd, false)
}

pub fn parse_get_random(resp: &[u8]) -> Result<Vec<u8>, TpmError> {
    let frame = TpmResponse::cast(resp).map_err(proto("GetRandom"))?;
    let r: TpmGetRandomResponse = frame.unmarshal().map_err(proto("GetRandom"))?;
    Ok(r.random_bytes.to_vec())
}

/// TPM2_PCR_Read of SHA-256 PCRs (as swtpm accepts it: `8001 00000014 0000017E 00000001 000B 03 <bitmap>`).
pub fn pcr_read(pcrs: &[u8]) -> Result<Vec<u8>, TpmError> {
    let cmd = TpmPcrReadCommand {
        handles: [],
        pcr_selection_in: select("PCR_Read", pcrs)?,
    };
    marshal("PCR_Read", &cmd, false)
}

/// The (PCR, value) pairs a PCR_Read response carries: the TPM returns the
/// selected digests in ascending PCR order, possibly fewer than asked.
pub fn parse_pcr_read(resp: &[u8]) -> Result<Vec<(u8, [u8; 32])>, TpmError> {
    const C: &str = "PCR_Read";
    let frame = TpmResponse::cast(resp).map_err(proto(C))?;
    let r: TpmPcrReadResponse = frame.unmarshal().map_err(proto(C))?;
    let mut indices = Vec::new();
    for sel in r.pcr_selection_out.iter() {
        if sel.hash != TpmAlgId::Sha256 {
            if sel.pcr_select.iter().any(|&b| b != 0) {
                return Err(bad(C, "TPM returned PCRs of another bank"));
            }
            continue;
        }
        for (byte, &bits) in sel.pcr_select.iter().enumerate() {
            for bit in 0..8u8 {
                if bits & (1 << bit) != 0 {
                    let idx = u8::try_from(byte * 8)
                        .ok()
                        .and_then(|b| b.checked_add(bit))
                        .ok_or_else(|| bad(C, "PCR index overflow"))?;
                    indices.push(idx);
                }
            }
        }
    }
    if indices.len() != r.pcr_values.len() {
        return Err(bad(
            C,
            format!(
                "{} PCRs selected but {} digests returned",
                indices.len(),
                r.pcr_values.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(indices.len());
    for (idx, d) in indices.into_iter().zip(r.pcr_values.iter()) {
        let v: [u8; 32] = d
            .as_ref()
            .try_into()
            .map_err(|_| bad(C, format!("PCR {idx}: digest is {} bytes", d.len())))?;
        out.push((idx, v));
    }
    Ok(out)
}

/// TPM2_PCR_Extend of one SHA-256 digest (as swtpm accepts it:
/// `8002 00000041 00000182 <pcr> 00000009 40000009 0000 00 0000 00000001 000B <32 B>`).
pub fn pcr_extend(pcr: u8, digest: &[u8; 32]) -> Result<Vec<u8>, TpmError> {
    const C: &str = "PCR_Extend";
    let mut digests = TpmlDigestValues::default();
    digests
        .try_push(TpmtHa {
            hash_alg: TpmAlgId::Sha256,
            digest: TpmuHa::Digest(digest[..].try_into().map_err(proto(C))?),
        })
        .map_err(proto(C))?;
    let cmd = TpmPcrExtendCommand {
        handles: [TpmHandle::new(u32::from(pcr))],
        digests,
    };
    marshal(C, &cmd, true)
}

/// The AK template: ECC NIST P-256, nameAlg SHA-256, [`AK_ATTRIBUTES`], no
/// auth policy, no symmetric, ECDSA-SHA256, KDF NULL, empty unique.
pub fn ak_template() -> TpmtPublic {
    TpmtPublic {
        object_type: TpmAlgId::Ecc,
        name_alg: TpmAlgId::Sha256,
        object_attributes: TpmaObject::from_bits_truncate(AK_ATTRIBUTES),
        auth_policy: Tpm2bDigest::default(),
        parameters: TpmuPublicParms::Ecc(TpmsEccParms {
            symmetric: TpmtSymDefObject::default(),
            scheme: TpmtEccScheme {
                scheme: TpmAlgId::Ecdsa,
                details: TpmuAsymScheme::Hash(TpmsSchemeHash {
                    hash_alg: TpmAlgId::Sha256,
                }),
            },
            curve_id: TpmEccCurve::NistP256,
            kdf: TpmtKdfScheme::default(),
        }),
        unique: TpmuPublicId::Ecc(TpmsEccPoint::default()),
    }
}

/// TPM2_CreatePrimary(TPM_RH_ENDORSEMENT, empty sensitive, [`ak_template`]).
pub fn create_primary_ak() -> Result<Vec<u8>, TpmError> {
    let cmd = TpmCreatePrimaryCommand {
        handles: [TpmHandle::new(RH_ENDORSEMENT)],
        in_sensitive: Tpm2bSensitiveCreate {
            inner: TpmsSensitiveCreate::default(),
        },
        in_public: Tpm2bPublic {
            inner: ak_template(),
        },
        outside_info: Tpm2bData::default(),
        creation_pcr: TpmlPcrSelection::default(),
    };
    marshal("CreatePrimary", &cmd, true)
}

/// (objectHandle, TPM2B_PUBLIC bytes) of a CreatePrimary response.
pub fn parse_create_primary(resp: &[u8]) -> Result<(u32, &[u8]), TpmError> {
    const C: &str = "CreatePrimary";
    let (handles, params) = areas(C, resp, 1)?;
    let handle = match handles {
        [a, b, c, d] => u32::from_be_bytes([*a, *b, *c, *d]),
        _ => return Err(bad(C, "no object handle")),
    };
    let (public, _rest) = <Tpm2bPublic as TpmField>::cast_prefix_field(params).map_err(proto(C))?;
    Ok((handle, public.as_bytes()))
}

/// TPM2_Quote(AK, qualifyingData = nonce, scheme NULL = the key's, SHA-256 PCRs).
pub fn quote(ak: u32, nonce: &[u8], pcrs: &[u8]) -> Result<Vec<u8>, TpmError> {
    const C: &str = "Quote";
    let cmd = TpmQuoteCommand {
        handles: [TpmHandle::new(ak)],
        qualifying_data: Tpm2bData::try_from(nonce)
            .map_err(|_| bad(C, format!("nonce of {} bytes is too long", nonce.len())))?,
        in_scheme: TpmtSigScheme {
            scheme: TpmAlgId::Null,
            details: TpmuSigScheme::Null,
        },
        pcr_select: select(C, pcrs)?,
    };
    marshal(C, &cmd, true)
}

/// (TPM2B_ATTEST bytes, TPMT_SIGNATURE bytes) of a Quote response.
pub fn parse_quote(resp: &[u8]) -> Result<(&[u8], &[u8]), TpmError> {
    const C: &str = "Quote";
    let (_, params) = areas(C, resp, 0)?;
    let (attest, rest) = <Tpm2bAttest as TpmField>::cast_prefix_field(params).map_err(proto(C))?;
    let attest = attest.as_bytes();
    if !attest
        .get(2..)
        .is_some_and(|a| a.starts_with(&ATTEST_QUOTE_PREFIX))
    {
        return Err(bad(C, "attest is not TPM_GENERATED / TPM_ST_ATTEST_QUOTE"));
    }
    let (_sig, tail) = <TpmtSignature as TpmField>::cast_prefix_field(rest).map_err(proto(C))?;
    let sig_len = rest.len() - tail.len();
    let signature = rest.get(..sig_len).unwrap_or(&[]);
    Ok((attest, signature))
}

/// TPM2_FlushContext(handle).
pub fn flush_context(handle: u32) -> Result<Vec<u8>, TpmError> {
    let cmd = TpmFlushContextCommand {
        handles: [],
        flush_handle: TpmHandle::new(handle),
    };
    marshal("FlushContext", &cmd, false)
}

fn check_nv_index(command: &'static str, index: u32) -> Result<(), TpmError> {
    if index >> 24 != 0x01 {
        return Err(bad(
            command,
            format!("NV index 0x{index:08X} is not in 0x01xxxxxx"),
        ));
    }
    Ok(())
}

/// TPM2_NV_DefineSpace(TPM_RH_OWNER, empty auth, 8-byte counter).
pub fn nv_define_counter(index: u32) -> Result<Vec<u8>, TpmError> {
    const C: &str = "NV_DefineSpace";
    check_nv_index(C, index)?;
    let cmd = TpmNvDefineSpaceCommand {
        handles: [TpmHandle::new(RH_OWNER)],
        auth: Tpm2bAuth::default(),
        public_info: Tpm2bNvPublic {
            inner: TpmsNvPublic {
                nv_index: TpmHandle::new(index),
                name_alg: TpmAlgId::Sha256,
                attributes: TpmaNv::from_bits_truncate(NV_COUNTER_ATTRIBUTES),
                auth_policy: Tpm2bDigest::default(),
                data_size: TpmUint16::new(8),
            },
        },
    };
    marshal(C, &cmd, true)
}

/// TPM2_NV_Increment(authHandle = index, index).
pub fn nv_increment(index: u32) -> Result<Vec<u8>, TpmError> {
    const C: &str = "NV_Increment";
    check_nv_index(C, index)?;
    let cmd = TpmNvIncrementCommand {
        handles: [TpmHandle::new(index), TpmHandle::new(index)],
    };
    marshal(C, &cmd, true)
}

/// TPM2_NV_Read(authHandle = index, index, 8 bytes at 0).
pub fn nv_read_counter(index: u32) -> Result<Vec<u8>, TpmError> {
    const C: &str = "NV_Read";
    check_nv_index(C, index)?;
    let cmd = TpmNvReadCommand {
        handles: [TpmHandle::new(index), TpmHandle::new(index)],
        size: TpmUint16::new(8),
        offset: TpmUint16::new(0),
    };
    marshal(C, &cmd, true)
}

pub fn parse_nv_read_counter(resp: &[u8]) -> Result<u64, TpmError> {
    const C: &str = "NV_Read";
    let frame = TpmResponse::cast(resp).map_err(proto(C))?;
    let r: TpmNvReadResponse = frame.unmarshal().map_err(proto(C))?;
    let bytes: [u8; 8] = r
        .data
        .as_ref()
        .try_into()
        .map_err(|_| bad(C, format!("counter is {} bytes, not 8", r.data.len())))?;
    Ok(u64::from_be_bytes(bytes))
}

/// TPM2_NV_DefineSpace of the anti-rollback floor index
/// (`azl_formats::nvfloor`): a TPM_NT_BITS index, empty auth, under the
/// platform hierarchy (never-delete policy) or the owner's.
pub fn nv_define_floor(protection: azl_formats::nvfloor::Protection) -> Result<Vec<u8>, TpmError> {
    use azl_formats::nvfloor;
    const C: &str = "NV_DefineSpace";
    let auth = match protection {
        nvfloor::Protection::Platform => RH_PLATFORM,
        nvfloor::Protection::Owner => RH_OWNER,
    };
    // The TPM sets PLATFORMCREATE itself from the auth handle; it must
    // still be given as it will read back.
    let cmd = TpmNvDefineSpaceCommand {
        handles: [TpmHandle::new(auth)],
        auth: Tpm2bAuth::default(),
        public_info: Tpm2bNvPublic {
            inner: TpmsNvPublic {
                nv_index: TpmHandle::new(nvfloor::INDEX),
                name_alg: TpmAlgId::Sha256,
                attributes: TpmaNv::from_bits_truncate(protection.attributes()),
                auth_policy: Tpm2bDigest::try_from(protection.policy()).map_err(proto(C))?,
                data_size: TpmUint16::new(nvfloor::SIZE),
            },
        },
    };
    marshal(C, &cmd, true)
}

/// TPM2_NV_ReadPublic(index): no authorisation.
pub fn nv_read_public(index: u32) -> Result<Vec<u8>, TpmError> {
    const C: &str = "NV_ReadPublic";
    check_nv_index(C, index)?;
    let cmd = TpmNvReadPublicCommand {
        handles: [TpmHandle::new(index)],
    };
    marshal(C, &cmd, false)
}

/// The index's public area as an NV_ReadPublic response carries it. The
/// caller checks it against what it expects (`nvfloor::check`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvPublic {
    pub index: u32,
    pub name_alg: u16,
    pub attributes: u32,
    pub auth_policy: Vec<u8>,
    pub data_size: u16,
}

pub fn parse_nv_read_public(resp: &[u8]) -> Result<NvPublic, TpmError> {
    const C: &str = "NV_ReadPublic";
    let frame = TpmResponse::cast(resp).map_err(proto(C))?;
    let r: TpmNvReadPublicResponse = frame.unmarshal().map_err(proto(C))?;
    let p = r.nv_public.inner;
    Ok(NvPublic {
        index: p.nv_index.value(),
        name_alg: p.name_alg as u16,
        attributes: p.attributes.bits(),
        auth_policy: p.auth_policy.to_vec(),
        data_size: p.data_size.value(),
    })
}

/// TPM2_NV_SetBits(authHandle = index, index, bits).
pub fn nv_set_bits(index: u32, bits: u64) -> Result<Vec<u8>, TpmError> {
    const C: &str = "NV_SetBits";
    check_nv_index(C, index)?;
    let cmd = TpmNvSetBitsCommand {
        handles: [TpmHandle::new(index), TpmHandle::new(index)],
        bits: TpmUint64::new(bits),
    };
    marshal(C, &cmd, true)
}

#[cfg(test)]
mod ak_contract {
    use super::*;
    use azl_formats::ak;

    /// The template init sends is the one the host verifier checks for.
    #[test]
    fn template_matches_the_contract() {
        assert_eq!(TpmAlgId::Ecc as u16, ak::AK_TYPE);
        assert_eq!(TpmAlgId::Sha256 as u16, ak::AK_NAME_ALG);
        assert_eq!(TpmEccCurve::NistP256 as u16, ak::AK_CURVE);
        assert_eq!(
            (TpmAlgId::Ecdsa as u16, TpmAlgId::Sha256 as u16),
            ak::AK_SCHEME
        );
        assert_eq!(ak_template().object_attributes.bits(), ak::AK_ATTRIBUTES);
    }

    /// The device's response parsers on the real swtpm bytes the host
    /// verifier is tested with (`host/attest/testdata/swtpm`): the two
    /// sides parse TPM structures with independent code, on the same input.
    const AK_PUB: &[u8] = include_bytes!("../../../../host/attest/testdata/swtpm/ak.pub");
    const QUOTE: &[u8] = include_bytes!("../../../../host/attest/testdata/swtpm/quote.bin");
    const SIG: &[u8] = include_bytes!("../../../../host/attest/testdata/swtpm/sig.bin");

    /// A TPM_ST_SESSIONS response: header, handles, parameter size, params,
    /// one empty password session.
    fn response(handles: &[u8], params: &[u8]) -> Vec<u8> {
        let session = [0u8, 0, 0, 0, 0];
        let len = 10 + handles.len() + 4 + params.len() + session.len();
        let mut r = vec![0x80, 0x02];
        r.extend_from_slice(&(len as u32).to_be_bytes());
        r.extend_from_slice(&0u32.to_be_bytes());
        r.extend_from_slice(handles);
        r.extend_from_slice(&(params.len() as u32).to_be_bytes());
        r.extend_from_slice(params);
        r.extend_from_slice(&session);
        r
    }

    #[test]
    fn device_parsers_read_the_hosts_swtpm_bytes() {
        // CreatePrimary: handle, TPM2B_PUBLIC, then creation data etc.
        // (the parser takes the public area and ignores the rest).
        let mut params = AK_PUB.to_vec();
        params.extend_from_slice(&[0, 0]);
        let resp = response(&0x8000_0000u32.to_be_bytes(), &params);
        let (handle, public) = parse_create_primary(&resp).unwrap();
        assert_eq!((handle, public), (0x8000_0000, AK_PUB));
        // The template part of the swtpm AK is exactly what init asks for.
        let mut buf = [0u8; 256];
        let mut w = TpmWriter::new(&mut buf);
        tpm2_protocol::TpmMarshal::marshal(&ak_template(), &mut w).unwrap();
        let template = w.as_bytes().to_vec();
        // TPM2B size, then everything up to the unique point's coordinates.
        let fixed = template.len() - 4; // empty x and y sizes
        assert_eq!(&AK_PUB[2..2 + fixed], &template[..fixed]);

        let mut q = QUOTE.to_vec();
        q.extend_from_slice(SIG);
        let resp = response(&[], &q);
        let (attest, sig) = parse_quote(&resp).unwrap();
        assert_eq!((attest, sig), (QUOTE, SIG));
    }
}
