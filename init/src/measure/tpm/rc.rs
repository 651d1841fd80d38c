//! TPM 2.0 response codes: the few the command layer acts on, and a
//! description for every code (TPM 2.0 Part 2, 6.6 "TPM_RC").
//!
//! Format 0 (bit 7 clear): version-1 errors (bit 8), warnings (bit 11),
//! vendor codes (bit 10). Format 1 (bit 7 set): a six-bit error plus the
//! parameter (bit 6 set) or handle / session number (bits 8..11) it is about.
//! Codes with bits above 15 set come from a software layer (TSS, resource
//! manager), not from the TPM itself.
use tpm2_protocol::data::TpmRcBase;

pub const SUCCESS: u32 = 0x000;
pub const INITIALIZE: u32 = 0x100;
pub const NV_UNINITIALIZED: u32 = 0x14A;
pub const NV_DEFINED: u32 = 0x14C;
/// TPM_RC_HANDLE (format 1): e.g. an NV index that is not defined.
pub const HANDLE: u32 = 0x08B;
pub const YIELDED: u32 = 0x908;
pub const TESTING: u32 = 0x90A;
pub const RETRY: u32 = 0x922;

const FMT1: u32 = 0x080;
const VER1: u32 = 0x100;
const VENDOR: u32 = 0x400;
const P_BIT: u32 = 0x040;

/// Codes after which the same command may simply be sent again.
pub fn is_transient(rc: u32) -> bool {
    matches!(rc, RETRY | YIELDED | TESTING)
}

/// The code without the format-1 parameter/handle/session number.
pub fn base(rc: u32) -> u32 {
    if rc & FMT1 != 0 && rc >> 16 == 0 {
        FMT1 | (rc & 0x3F)
    } else {
        rc
    }
}

/// A human-readable description of any response code, e.g.
/// `TPM_RC_VALUE (value is out of range or not correct for the context), parameter 1`.
pub fn describe(rc: u32) -> String {
    let layer = rc >> 16;
    if layer != 0 {
        let who = match layer {
            0x0B => "resource manager",
            0x0A => "TCTI",
            0x08 => "SAPI",
            0x07 => "ESAPI",
            _ => "software layer",
        };
        return format!(
            "error from the {who} (layer {layer}), code 0x{:03X}",
            rc & 0xFFFF
        );
    }
    if rc & FMT1 != 0 {
        let b = base(rc);
        let n = (rc >> 8) & 0xF;
        let location = if rc & P_BIT != 0 {
            format!(", parameter {n}")
        } else if n == 0 {
            String::new()
        } else if n < 8 {
            format!(", handle {n}")
        } else {
            format!(", session {}", n - 8)
        };
        return format!("{}{location}", named(b));
    }
    if rc & VER1 == 0 {
        return "not a TPM 2.0 response code (TPM 1.2 format)".to_string();
    }
    if rc & VENDOR != 0 {
        return format!("vendor-specific code 0x{:03X}", rc & 0x7F);
    }
    named(rc)
}

fn named(code: u32) -> String {
    let name = match TpmRcBase::try_from(code) {
        Ok(b) => b.to_string(),
        Err(_) => return format!("unknown response code 0x{code:03X}"),
    };
    match hint(code) {
        Some(h) => format!("{name} ({h})"),
        None => name,
    }
}

/// Plain words for the codes an operator is likely to meet.
fn hint(code: u32) -> Option<&'static str> {
    Some(match code {
        0x01E => "bad command tag (not a TPM 2.0 command)",
        0x100 => "TPM not initialised: TPM2_Startup not sent, or sent twice",
        0x101 => "TPM in failure mode",
        0x120 => "command disabled",
        0x124 => "authorisation session type not allowed",
        0x125 => "command needs authorisation but none given",
        0x127 => "PCR check failed / PCR not extendable here",
        0x142 => "command size wrong",
        0x143 => "command not supported",
        0x144 => "authorisation area size wrong",
        0x146 => "NV offset/size out of the index",
        0x147 => "NV size wrong for this index type",
        0x148 => "NV index locked",
        0x149 => "NV access not authorised by these attributes",
        0x14A => "NV index defined but never written",
        0x14B => "no NV space left",
        0x14C => "NV index already defined",
        0x156 => "TPM is read-only",
        0x082 => "attributes inconsistent",
        0x084 => "value out of range or wrong for the context",
        0x085 => "hierarchy disabled or not allowed",
        0x08B => "handle not loaded or wrong type",
        0x08E => "authorisation failed (wrong password/HMAC)",
        0x095 => "structure size wrong",
        0x098 => "union selector wrong",
        0x09A => "input too short",
        0x09B => "signature invalid",
        0x0A2 => "authorisation value wrong",
        0x0A6 => "curve not supported",
        0x902 => "out of object slots: flush transient objects",
        0x903 => "out of session slots",
        0x907 => "command not allowed at this locality",
        0x908 => "TPM yielded: resend",
        0x909 => "command cancelled",
        0x90A => "TPM self-test in progress: resend",
        0x920 => "NV written too often: rate limited",
        0x921 => "dictionary-attack lockout",
        0x922 => "TPM busy: resend",
        0x923 => "NV not available",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_every_format() {
        assert_eq!(describe(0x922), "TPM_RC_RETRY (TPM busy: resend)");
        assert_eq!(
            describe(0x1C4),
            "TPM_RC_VALUE (value out of range or wrong for the context), parameter 1"
        );
        assert_eq!(
            describe(0x98B),
            "TPM_RC_HANDLE (handle not loaded or wrong type), session 1"
        );
        assert_eq!(
            describe(0x18B),
            "TPM_RC_HANDLE (handle not loaded or wrong type), handle 1"
        );
        assert_eq!(
            describe(0x14C),
            "TPM_RC_NV_DEFINED (NV index already defined)"
        );
        assert!(describe(0x0B0003).contains("resource manager"));
        assert!(describe(0x17F).starts_with("unknown response code 0x17F"));
        assert!(describe(0x57F).starts_with("vendor-specific"));
        assert!(describe(0x010).contains("TPM 1.2"));
        assert_eq!(base(0x1C4), 0x084);
        assert_eq!(base(0x14C), NV_DEFINED);
        assert!(is_transient(RETRY) && is_transient(YIELDED) && is_transient(TESTING));
        assert!(!is_transient(0x921));
    }
}
