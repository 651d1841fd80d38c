//! The TPM half of the anti-rollback floor (docs/update.md
//! "Anti-rollback"): a TPM_NT_BITS NV index used as a thermometer
//! (`azl_formats::nvfloor`). Stage 1 reads it (defining it once, on the
//! first boot with a TPM) and boots nothing below it; `commit` raises it
//! after the boot state is written; stage 1 raises it to the boot state's
//! floor when a power cut came between the two. `update status` reads it
//! without defining it.
//!
//! The floor in force is max(boot state floor, NV floor). When a TPM is
//! there but the index cannot be read (or is not the index azl-edge
//! defines), the boot goes on with the boot state's floor alone and says
//! so loudly: a broken TPM never bricks a device (see the threat model in
//! the docs for what that leaves open).
use crate::measure::tpm::{self, wire::NvPublic, Tpm, TpmError, Transport};
use azl_formats::nvfloor::{self, Mismatch, Protection};
use std::fmt;

/// Everything that can stop the NV floor from being read or raised.
#[derive(Debug)]
pub enum FloorError {
    /// A TPM command on the index failed.
    Tpm { op: &'static str, err: TpmError },
    /// Neither the platform nor the owner hierarchy would define it.
    Define { platform: TpmError, owner: TpmError },
    /// Something else lives at the index: not trusted as the floor.
    Untrusted(Mismatch),
    /// The index was defined but then not found.
    Vanished,
    /// After SetBits the index reads lower than asked.
    ReadBack { want: u32, got: u32 },
}

impl fmt::Display for FloorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = nvfloor::INDEX;
        match self {
            Self::Tpm { op, err } => write!(f, "NV index 0x{i:08X}: {op}: {err}"),
            Self::Define { platform, owner } => write!(
                f,
                "NV index 0x{i:08X} cannot be defined: platform hierarchy: {platform}; owner hierarchy: {owner}"
            ),
            Self::Untrusted(m) => write!(
                f,
                "NV index 0x{i:08X} is not the azl-edge floor index ({m}): not trusted"
            ),
            Self::Vanished => write!(f, "NV index 0x{i:08X} is gone right after it was defined"),
            Self::ReadBack { want, got } => write!(
                f,
                "NV index 0x{i:08X} reads floor {got} after raising it to {want}"
            ),
        }
    }
}

/// The NV floor as read.
#[derive(Debug)]
pub enum Nv {
    /// No TPM on this boot: the boot state's floor alone is in force.
    Absent,
    /// The index is not defined yet (only when asked not to define it).
    Undefined,
    /// The index, trusted, holding `floor`.
    At { floor: u32, protection: Protection },
    /// A TPM is there but the floor is unavailable.
    Failed(FloorError),
}

impl Nv {
    /// The floor this adds to the boot state's (0 when there is none).
    pub fn floor(&self) -> u32 {
        match self {
            Nv::At { floor, .. } => *floor,
            _ => 0,
        }
    }

    /// For `update status`: `security version 2 (TPM NV index 0x013A2E01, platform: cannot be deleted)`.
    pub fn describe(&self) -> String {
        let i = nvfloor::INDEX;
        match self {
            Nv::Absent => "absent (no TPM)".to_string(),
            Nv::Undefined => format!("not defined yet (TPM NV index 0x{i:08X})"),
            Nv::At { floor, protection } => format!(
                "security version {floor} (TPM NV index 0x{i:08X}, {}: {})",
                protection.name(),
                match protection {
                    Protection::Platform => "cannot be deleted",
                    Protection::Owner => "the TPM owner can delete it",
                }
            ),
            Nv::Failed(e) => format!("unavailable: {e}"),
        }
    }
}

/// Where the NV floor lives (the TPM; tests use files or swtpm).
pub trait FloorStore {
    /// The NV floor; with `define`, a missing index is defined first.
    fn read(&mut self, define: bool) -> Nv;
    /// Raise the NV floor to at least `to` (never lowers); the floor after.
    fn raise(&mut self, to: u32) -> Nv;
}

/// No TPM: the NV floor is absent.
pub struct NoTpm;

impl FloorStore for NoTpm {
    fn read(&mut self, _define: bool) -> Nv {
        Nv::Absent
    }
    fn raise(&mut self, _to: u32) -> Nv {
        Nv::Absent
    }
}

/// The floor index on a real TPM.
pub struct TpmFloor<T: Transport> {
    tpm: Tpm<T>,
}

impl<T: Transport> TpmFloor<T> {
    pub fn new(tpm: Tpm<T>) -> Self {
        TpmFloor { tpm }
    }

    fn public(&mut self) -> Result<Option<Protection>, FloorError> {
        let p: Option<NvPublic> =
            self.tpm
                .nv_read_public(nvfloor::INDEX)
                .map_err(|err| FloorError::Tpm {
                    op: "NV_ReadPublic",
                    err,
                })?;
        match p {
            None => Ok(None),
            Some(p) => nvfloor::check(&nvfloor::Public {
                index: p.index,
                name_alg: p.name_alg,
                attributes: p.attributes,
                auth_policy: &p.auth_policy,
                data_size: p.data_size,
            })
            .map(Some)
            .map_err(FloorError::Untrusted),
        }
    }

    /// The index's protection, defining it first if asked and missing:
    /// under the platform hierarchy when the TPM allows it (undeletable),
    /// else under the owner's.
    fn ensure(&mut self, define: bool) -> Result<Option<Protection>, FloorError> {
        if let Some(p) = self.public()? {
            return Ok(Some(p));
        }
        if !define {
            return Ok(None);
        }
        match self.tpm.nv_define_floor(Protection::Platform) {
            Ok(_) => log::info!(
                "update: TPM NV floor index 0x{:08X} defined (platform hierarchy, cannot be deleted)",
                nvfloor::INDEX
            ),
            Err(platform) => match self.tpm.nv_define_floor(Protection::Owner) {
                Ok(_) => log::warn!(
                    "update: TPM NV floor index 0x{:08X} defined under the owner hierarchy (the platform hierarchy refused: {platform}); the TPM owner can delete it",
                    nvfloor::INDEX
                ),
                Err(owner) => return Err(FloorError::Define { platform, owner }),
            },
        }
        self.public()?.map(Some).ok_or(FloorError::Vanished)
    }

    fn value(&mut self) -> Result<u32, FloorError> {
        // NV_Read of 8 bytes; never written (TPM_RC_NV_UNINITIALIZED) is 0.
        let bits = self
            .tpm
            .nv_read_counter(nvfloor::INDEX)
            .map_err(|err| FloorError::Tpm { op: "NV_Read", err })?;
        Ok(nvfloor::floor_of(bits))
    }

    fn try_read(&mut self, define: bool) -> Result<Nv, FloorError> {
        match self.ensure(define)? {
            None => Ok(Nv::Undefined),
            Some(protection) => Ok(Nv::At {
                floor: self.value()?,
                protection,
            }),
        }
    }

    fn try_raise(&mut self, to: u32) -> Result<Nv, FloorError> {
        let protection = self.ensure(true)?.ok_or(FloorError::Vanished)?;
        let now = self.value()?;
        let want = to.min(nvfloor::MAX);
        if now >= want {
            return Ok(Nv::At {
                floor: now,
                protection,
            });
        }
        self.tpm
            .nv_set_bits(nvfloor::INDEX, nvfloor::bits_for(want))
            .map_err(|err| FloorError::Tpm {
                op: "NV_SetBits",
                err,
            })?;
        let got = self.value()?;
        if got < want {
            return Err(FloorError::ReadBack { want, got });
        }
        Ok(Nv::At {
            floor: got,
            protection,
        })
    }
}

impl<T: Transport> FloorStore for TpmFloor<T> {
    fn read(&mut self, define: bool) -> Nv {
        self.try_read(define).unwrap_or_else(Nv::Failed)
    }
    fn raise(&mut self, to: u32) -> Nv {
        self.try_raise(to).unwrap_or_else(Nv::Failed)
    }
}

/// The kernel's TPM device if there is one, else [`NoTpm`].
pub fn device() -> Box<dyn FloorStore> {
    match tpm::open_default() {
        Some((_, t)) => Box::new(TpmFloor::new(Tpm::new(t))),
        None => Box::new(NoTpm),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
pub mod tests {
    use super::*;

    /// An NV floor in memory, for the boot-state tests.
    #[derive(Default)]
    pub struct MemFloor {
        pub bits: u64,
        pub fail: bool,
        pub raises: Vec<u32>,
    }

    impl FloorStore for MemFloor {
        fn read(&mut self, _define: bool) -> Nv {
            if self.fail {
                return Nv::Failed(FloorError::Vanished);
            }
            Nv::At {
                floor: nvfloor::floor_of(self.bits),
                protection: Protection::Platform,
            }
        }
        fn raise(&mut self, to: u32) -> Nv {
            self.raises.push(to);
            if self.fail {
                return Nv::Failed(FloorError::Vanished);
            }
            self.bits |= nvfloor::bits_for(to);
            self.read(false)
        }
    }
}
