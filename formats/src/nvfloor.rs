//! The anti-rollback floor in TPM NV (docs/update.md "Anti-rollback"): one
//! NV index of type TPM_NT_BITS used as a thermometer. Bit `k` set means
//! "the floor is at least `k + 1`"; raising the floor to `F` is one
//! `TPM2_NV_SetBits` of the low `F` bits. The TPM only ever ORs bits into
//! such an index, so nobody — not even with owner or platform
//! authorisation — can lower the value while the index exists; and the
//! index is defined (where the TPM lets the OS use the platform
//! hierarchy) with `TPMA_NV_POLICY_DELETE` and an authorisation policy no
//! policy session can reach, so it cannot be deleted either.
//!
//! Everything both sides need about the index is here once: handle,
//! attributes, size, the delete policy and the bit rule.

/// The NV index handle. In the TCG owner range (0x01000000–0x013FFFFF,
/// which the TCG handle registry assigns to no vendor); "3A2E" is "AZE".
pub const INDEX: u32 = 0x013A_2E01;

/// Data size: one 64-bit bit field (TPM_NT_BITS indices are always 8 bytes).
pub const SIZE: u16 = 8;

/// The highest floor the index can hold (64 bits).
pub const MAX: u32 = 64;

// TPMA_NV bits (TPM 2.0 Part 2, TPMA_NV).
pub const TPMA_NV_AUTHWRITE: u32 = 0x0000_0004;
/// TPM_NT_BITS in the TPM_NT field (bits 7:4).
pub const TPMA_NV_NT_BITS: u32 = 0x0000_0020;
pub const TPMA_NV_TPM_NT_MASK: u32 = 0x0000_00F0;
pub const TPMA_NV_POLICY_DELETE: u32 = 0x0000_0400;
pub const TPMA_NV_AUTHREAD: u32 = 0x0004_0000;
pub const TPMA_NV_NO_DA: u32 = 0x0200_0000;
/// Set by the TPM on the first write; not part of what is defined.
pub const TPMA_NV_WRITTEN: u32 = 0x2000_0000;
pub const TPMA_NV_PLATFORMCREATE: u32 = 0x4000_0000;

/// TPM_ALG_SHA256: the index's name algorithm.
pub const NAME_ALG: u16 = 0x000B;

/// Attributes of the owner-defined variant: a bit field, read and
/// SetBits with the index's own (empty) authorisation, no
/// dictionary-attack lockout. Deletable by the owner (`TPM2_NV_UndefineSpace`).
pub const ATTRIBUTES_OWNER: u32 =
    TPMA_NV_NT_BITS | TPMA_NV_AUTHWRITE | TPMA_NV_AUTHREAD | TPMA_NV_NO_DA;

/// Attributes of the platform-defined variant (preferred): as the owner
/// variant, plus `POLICY_DELETE` (only `TPM2_NV_UndefineSpaceSpecial`
/// with the index's policy satisfied may delete it) and `PLATFORMCREATE`
/// (`TPM2_Clear` keeps it).
pub const ATTRIBUTES_PLATFORM: u32 =
    ATTRIBUTES_OWNER | TPMA_NV_POLICY_DELETE | TPMA_NV_PLATFORMCREATE;

/// The authorisation policy of the platform variant: SHA-256 of
/// [`POLICY_SEED`]. A policy session's digest starts at zero and only ever
/// becomes a hash of its previous value and a command's data, so reaching
/// this value needs a SHA-256 preimage: the delete policy can never be
/// satisfied. (All zeros would not do: an empty policy session has it.)
pub const DELETE_POLICY: [u8; 32] = [
    0x45, 0x15, 0xbf, 0xa5, 0x20, 0x84, 0x9b, 0x59, 0x7d, 0x9c, 0x3f, 0x2c, 0x8e, 0x8d, 0x2b, 0x9e,
    0x06, 0xc2, 0x08, 0xbe, 0x07, 0x09, 0x5b, 0x91, 0xe1, 0x5d, 0xf4, 0xe7, 0x54, 0x01, 0xa4, 0x78,
];
/// What [`DELETE_POLICY`] is the SHA-256 of.
pub const POLICY_SEED: &[u8] = b"azl-edge anti-rollback floor: this index is never deleted";

/// How the index is protected against deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// Platform-created with an unsatisfiable delete policy: cannot be
    /// deleted, survives `TPM2_Clear`.
    Platform,
    /// Owner-created (the platform hierarchy was not available): the
    /// owner can delete and redefine it, which resets it to 0.
    Owner,
}

impl Protection {
    pub fn name(self) -> &'static str {
        match self {
            Protection::Platform => "platform",
            Protection::Owner => "owner",
        }
    }

    pub fn attributes(self) -> u32 {
        match self {
            Protection::Platform => ATTRIBUTES_PLATFORM,
            Protection::Owner => ATTRIBUTES_OWNER,
        }
    }

    pub fn policy(self) -> &'static [u8] {
        match self {
            Protection::Platform => &DELETE_POLICY,
            Protection::Owner => &[],
        }
    }
}

/// The public area of the index as `TPM2_NV_ReadPublic` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Public<'a> {
    pub index: u32,
    pub name_alg: u16,
    pub attributes: u32,
    pub auth_policy: &'a [u8],
    pub data_size: u16,
}

/// Why an index found at [`INDEX`] is not trusted as the floor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    Index(u32),
    NameAlg(u16),
    Size(u16),
    /// Neither attribute set (WRITTEN ignored).
    Attributes(u32),
    /// The attributes of a variant but not its policy.
    Policy,
}

impl core::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Mismatch::Index(i) => write!(f, "the TPM answered for index 0x{i:08X}"),
            Mismatch::NameAlg(a) => write!(f, "name algorithm 0x{a:04X}, not SHA-256"),
            Mismatch::Size(s) => write!(f, "{s} bytes, not {SIZE}"),
            Mismatch::Attributes(a) => write!(
                f,
                "attributes 0x{a:08X}, expected 0x{ATTRIBUTES_PLATFORM:08X} (platform) or 0x{ATTRIBUTES_OWNER:08X} (owner)"
            ),
            Mismatch::Policy => f.write_str("its authorisation policy is not the never-delete policy"),
        }
    }
}

/// Is `p` the floor index as azl-edge defines it, and which variant?
pub fn check(p: &Public<'_>) -> Result<Protection, Mismatch> {
    if p.index != INDEX {
        return Err(Mismatch::Index(p.index));
    }
    if p.name_alg != NAME_ALG {
        return Err(Mismatch::NameAlg(p.name_alg));
    }
    if p.data_size != SIZE {
        return Err(Mismatch::Size(p.data_size));
    }
    let attrs = p.attributes & !TPMA_NV_WRITTEN;
    let prot = if attrs == ATTRIBUTES_PLATFORM {
        Protection::Platform
    } else if attrs == ATTRIBUTES_OWNER {
        Protection::Owner
    } else {
        return Err(Mismatch::Attributes(p.attributes));
    };
    if p.auth_policy != prot.policy() {
        return Err(Mismatch::Policy);
    }
    Ok(prot)
}

/// The floor a bit field holds: the number of the highest set bit (bit 0
/// is floor 1). Not being a thermometer (a gap) does not lower it.
pub fn floor_of(bits: u64) -> u32 {
    MAX - bits.leading_zeros()
}

/// The bits to OR in for floor `f` (capped at [`MAX`]).
pub fn bits_for(f: u32) -> u64 {
    if f >= MAX {
        u64::MAX
    } else {
        (1u64 << f) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thermometer() {
        assert_eq!(floor_of(0), 0);
        assert_eq!(bits_for(0), 0);
        for f in 1..=MAX {
            assert_eq!(floor_of(bits_for(f)), f);
            // ORing a lower floor in never lowers it.
            assert_eq!(floor_of(bits_for(f) | bits_for(f / 2)), f);
        }
        assert_eq!(floor_of(bits_for(1000)), MAX);
        assert_eq!(floor_of(0b1000), 4, "a gap does not lower the floor");
    }

    #[test]
    fn delete_policy_is_the_hash_of_its_seed() {
        assert_eq!(crate::sha256(POLICY_SEED), DELETE_POLICY);
        assert_ne!(DELETE_POLICY, [0; 32]);
    }

    #[test]
    fn check_accepts_exactly_the_two_variants() {
        let good = Public {
            index: INDEX,
            name_alg: NAME_ALG,
            attributes: ATTRIBUTES_PLATFORM | TPMA_NV_WRITTEN,
            auth_policy: &DELETE_POLICY,
            data_size: 8,
        };
        assert_eq!(check(&good), Ok(Protection::Platform));
        let owner = Public {
            attributes: ATTRIBUTES_OWNER,
            auth_policy: &[],
            ..good.clone()
        };
        assert_eq!(check(&owner), Ok(Protection::Owner));
        // An ordinary index, a counter, a readable-by-owner-only field, a
        // deletable platform index: all refused.
        for attrs in [0x0004_0004, 0x0204_0014, ATTRIBUTES_OWNER | 0x0002_0000] {
            let p = Public {
                attributes: attrs,
                ..owner.clone()
            };
            assert_eq!(check(&p), Err(Mismatch::Attributes(attrs)));
        }
        let no_policy = Public {
            auth_policy: &[],
            ..good.clone()
        };
        assert_eq!(check(&no_policy), Err(Mismatch::Policy));
        let zero = [0u8; 32];
        let zero_policy = Public {
            auth_policy: &zero,
            ..good.clone()
        };
        assert_eq!(check(&zero_policy), Err(Mismatch::Policy));
        assert_eq!(
            check(&Public {
                data_size: 16,
                ..good.clone()
            }),
            Err(Mismatch::Size(16))
        );
        assert_eq!(
            check(&Public {
                name_alg: 4,
                ..good.clone()
            }),
            Err(Mismatch::NameAlg(4))
        );
        assert_eq!(check(&Public { index: 1, ..good }), Err(Mismatch::Index(1)));
    }
}
