//! TPM 2.0 command layer: one set of typed commands ([`Tpm`]) over
//! interchangeable transports ([`Transport`]).
//!
//! # Transports, and which one init uses when
//!
//! - [`DeviceTransport`]: the kernel's TPM character device, `/dev/tpmrm0`
//!   (the in-kernel resource manager; preferred) or `/dev/tpm0`. One whole
//!   command is written, one whole response read, with a poll timeout so a
//!   wedged TPM can never hang PID 1. The kernel has already sent
//!   `TPM2_Startup`, so callers must not. [`open_default`] tries both nodes and
//!   returns `None` when the board has no TPM driver bound.
//! - [`SocketTransport`]: swtpm's raw command socket
//!   (`swtpm socket --server type=unixio,path=…`); used by the host tests. The
//!   caller sends [`Tpm::startup_clear`] (unless swtpm runs with
//!   `--flags startup-clear`).
//! - `TisSpiTransport` (cargo feature `spi-tpm`, about 7 KiB when used): the
//!   TCG PC Client PTP "TIS over SPI" FIFO protocol spoken directly to a
//!   discrete TPM through `embedded-hal` SPI (Linux: `tis_spi::open_spidev`),
//!   for boards whose kernel has no TPM driver. No firmware or kernel has
//!   started that TPM: call [`Tpm::startup_clear`]. See `tis_spi` for why a
//!   plain `SpiDevice` cannot follow SPI wait states and what is offered
//!   instead.
//!
//! The board → transport choice is made by the caller (pid1 wiring): the
//! device node when present, otherwise SPI if the board configuration names a
//! spidev; otherwise the boot is "software only".
//!
//! # Marshalling
//!
//! Commands are marshalled and responses validated with the `tpm2-protocol`
//! crate (no_std, no alloc, no dependencies, panic-free); see [`wire`]. It
//! expresses every command here including the exact AK template, and its
//! zero-copy views hand TPM2B_PUBLIC / TPM2B_ATTEST / TPMT_SIGNATURE on as
//! the TPM's own bytes. Cost in the shipped aarch64 init: the whole layer
//! (device transport, all commands, response-code descriptions) is about
//! 38 KiB, of which the crate's code is about 10 KiB — kept, as a
//! hand-written marshaller would save only part of that. (The crate needs
//! Rust 1.95, edition 2024.) Unit tests pin the wire bytes checked against swtpm.
//! Every response code other than success goes through [`rc::describe`], so
//! every failure names the command, the code, and what the code means.
//!
//! # Retries
//!
//! `TPM_RC_RETRY`, `TPM_RC_YIELDED` and `TPM_RC_TESTING` are transient: the
//! command is resent after a short sleep, at most [`MAX_TRIES`] times
//! (about 5 s), then [`TpmError::Busy`]. swtpm answers the first Quote with
//! `TPM_RC_RETRY`, so this path is exercised by every quote.
//!
//! Only the SHA-256 PCR bank is used. Authorisation is always the empty
//! password session (`TPM_RS_PW`): azl-edge never sets hierarchy passwords.
// The lead wires what boot needs; the NV counters serve the update issue.
#![allow(dead_code, unused_imports)]

pub mod device;
pub mod rc;
pub mod socket;
#[cfg(feature = "spi-tpm")]
pub mod tis_spi;
pub mod wire;

#[cfg(all(test, feature = "spi-tpm"))]
mod sim_tis;
#[cfg(test)]
mod tests;

use std::fmt;
use std::time::Duration;

pub use device::{open_default, DeviceTransport};
pub use socket::SocketTransport;
#[cfg(feature = "spi-tpm")]
pub use tis_spi::TisSpiTransport;

/// One whole TPM command in, one whole TPM response out.
pub trait Transport {
    fn transact(&mut self, cmd: &[u8]) -> Result<Vec<u8>, TpmError>;
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn transact(&mut self, cmd: &[u8]) -> Result<Vec<u8>, TpmError> {
        (**self).transact(cmd)
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn transact(&mut self, cmd: &[u8]) -> Result<Vec<u8>, TpmError> {
        (**self).transact(cmd)
    }
}

/// Everything that can go wrong talking to a TPM.
#[derive(Debug)]
pub enum TpmError {
    /// The transport failed (open, read, write, poll).
    Io {
        op: &'static str,
        err: std::io::Error,
    },
    /// The TPM did not answer in time.
    Timeout { op: &'static str },
    /// A transport-level protocol failure (e.g. the SPI TIS state machine).
    Transport(String),
    /// The TPM answered with a non-success response code.
    Rc {
        command: &'static str,
        rc: u32,
        meaning: String,
    },
    /// The TPM kept answering "retry later" past the retry budget.
    Busy {
        command: &'static str,
        rc: u32,
        tries: u32,
    },
    /// The response (or a command argument) did not have the expected shape.
    Malformed { command: &'static str, what: String },
}

impl TpmError {
    /// The response code, if this is a TPM response-code error.
    pub fn rc(&self) -> Option<u32> {
        match self {
            TpmError::Rc { rc, .. } | TpmError::Busy { rc, .. } => Some(*rc),
            _ => None,
        }
    }

    /// The response code with the format-1 parameter/handle/session number
    /// stripped, for comparing against `rc::*` constants.
    pub fn rc_base(&self) -> Option<u32> {
        self.rc().map(rc::base)
    }

    fn malformed(command: &'static str, what: impl fmt::Display) -> TpmError {
        TpmError::Malformed {
            command,
            what: what.to_string(),
        }
    }
}

impl fmt::Display for TpmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TpmError::Io { op, err } => write!(f, "TPM {op}: {err}"),
            TpmError::Timeout { op } => write!(f, "TPM {op}: timed out"),
            TpmError::Transport(msg) => write!(f, "TPM transport: {msg}"),
            TpmError::Rc {
                command,
                rc,
                meaning,
            } => {
                write!(f, "TPM2_{command} failed: 0x{rc:03X} {meaning}")
            }
            TpmError::Busy { command, rc, tries } => write!(
                f,
                "TPM2_{command}: TPM still busy after {tries} tries (0x{rc:03X} {})",
                rc::describe(*rc)
            ),
            TpmError::Malformed { command, what } => write!(f, "TPM2_{command}: {what}"),
        }
    }
}

impl std::error::Error for TpmError {}

/// How many times a command answered with a transient code is sent in all.
pub const MAX_TRIES: u32 = 50;
/// Pause between such tries (50 × 100 ms ≈ 5 s).
pub const RETRY_DELAY: Duration = Duration::from_millis(100);

/// TPM_RH_ENDORSEMENT: the hierarchy the attestation key lives under.
pub const RH_ENDORSEMENT: u32 = 0x4000_000B;
/// TPM_RH_OWNER: authorises NV_DefineSpace.
pub const RH_OWNER: u32 = 0x4000_0001;
/// TPM_RH_PLATFORM: authorises NV_DefineSpace of undeletable indices.
pub const RH_PLATFORM: u32 = 0x4000_000C;
/// SHA-256 PCR bank: PCRs 0..23.
pub const PCR_COUNT: u8 = 24;

/// The attestation key as created by [`Tpm::create_ak`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ak {
    /// Transient handle; flush with [`Tpm::flush_context`] when done.
    pub handle: u32,
    /// TPM2B_PUBLIC exactly as the TPM returned it (with its size prefix).
    pub public: Vec<u8>,
}

/// A TPM2_Quote result, both parts as the raw bytes the TPM returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// TPM2B_ATTEST including its 2-byte size prefix.
    pub attest: Vec<u8>,
    /// TPMT_SIGNATURE (sigAlg, hash, r, s for ECDSA).
    pub signature: Vec<u8>,
}

impl Quote {
    /// The TPMS_ATTEST bytes (what the signature covers): `attest` without
    /// its size prefix.
    pub fn attest_body(&self) -> &[u8] {
        self.attest.get(2..).unwrap_or(&[])
    }
}

/// Typed TPM 2.0 commands over a [`Transport`].
pub struct Tpm<T: Transport> {
    transport: T,
    retry_delay: Duration,
    max_tries: u32,
}

impl<T: Transport> Tpm<T> {
    pub fn new(transport: T) -> Self {
        Tpm {
            transport,
            retry_delay: RETRY_DELAY,
            max_tries: MAX_TRIES,
        }
    }

    /// Change the transient-error pause (tests use a short one).
    pub fn with_retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = delay;
        self
    }

    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    pub fn into_transport(self) -> T {
        self.transport
    }

    /// Send one marshalled command and return the whole success response.
    /// Transient codes are retried; any other non-zero code is an error
    /// naming `command`.
    pub fn execute(&mut self, command: &'static str, cmd: &[u8]) -> Result<Vec<u8>, TpmError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let resp = self.transport.transact(cmd)?;
            let code = wire::response_code(command, &resp)?;
            if code == rc::SUCCESS {
                return Ok(resp);
            }
            if !rc::is_transient(code) {
                return Err(TpmError::Rc {
                    command,
                    rc: code,
                    meaning: rc::describe(code),
                });
            }
            if tries >= self.max_tries {
                return Err(TpmError::Busy {
                    command,
                    rc: code,
                    tries,
                });
            }
            std::thread::sleep(self.retry_delay);
        }
    }

    /// TPM2_Startup(CLEAR). Only for transports the kernel does not drive
    /// (SPI, swtpm). A TPM that is already started (TPM_RC_INITIALIZE)
    /// counts as success.
    pub fn startup_clear(&mut self) -> Result<(), TpmError> {
        let cmd = wire::startup_clear()?;
        match self.execute("Startup", &cmd) {
            Err(e) if e.rc() == Some(rc::INITIALIZE) => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// `n` bytes from the TPM's RNG (several commands if the TPM returns
    /// fewer per call than asked).
    pub fn get_random(&mut self, n: usize) -> Result<Vec<u8>, TpmError> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let want = u16::try_from(n - out.len()).unwrap_or(u16::MAX).min(64);
            let cmd = wire::get_random(want)?;
            let resp = self.execute("GetRandom", &cmd)?;
            let bytes = wire::parse_get_random(&resp)?;
            if bytes.is_empty() {
                return Err(TpmError::malformed("GetRandom", "TPM returned no bytes"));
            }
            let take = bytes.len().min(n - out.len());
            out.extend_from_slice(bytes.get(..take).unwrap_or(&[]));
        }
        Ok(out)
    }

    /// Read SHA-256 PCRs, in the order asked. A TPM may return fewer PCRs
    /// per call than selected; the rest are asked for again.
    pub fn pcr_read(&mut self, pcrs: &[u8]) -> Result<Vec<(u8, [u8; 32])>, TpmError> {
        let mut got: Vec<(u8, [u8; 32])> = Vec::with_capacity(pcrs.len());
        let mut missing: Vec<u8> = Vec::new();
        for &p in pcrs {
            if p >= PCR_COUNT {
                return Err(TpmError::malformed(
                    "PCR_Read",
                    format!("PCR {p} out of range"),
                ));
            }
            if !missing.contains(&p) {
                missing.push(p);
            }
        }
        while !missing.is_empty() {
            let cmd = wire::pcr_read(&missing)?;
            let resp = self.execute("PCR_Read", &cmd)?;
            let values = wire::parse_pcr_read(&resp)?;
            let before = missing.len();
            for (p, v) in values {
                if let Some(i) = missing.iter().position(|&m| m == p) {
                    missing.remove(i);
                    got.push((p, v));
                }
            }
            if missing.len() == before {
                return Err(TpmError::malformed(
                    "PCR_Read",
                    format!("TPM returned none of PCRs {missing:?} (bank not allocated?)"),
                ));
            }
        }
        let mut out = Vec::with_capacity(pcrs.len());
        for &p in pcrs {
            if let Some(&(_, v)) = got.iter().find(|(q, _)| *q == p) {
                out.push((p, v));
            }
        }
        Ok(out)
    }

    /// Extend a SHA-256 PCR: PCR ← SHA-256(PCR ‖ digest).
    pub fn pcr_extend(&mut self, pcr: u8, digest: &[u8; 32]) -> Result<(), TpmError> {
        if pcr >= PCR_COUNT {
            return Err(TpmError::malformed(
                "PCR_Extend",
                format!("PCR {pcr} out of range"),
            ));
        }
        let cmd = wire::pcr_extend(pcr, digest)?;
        self.execute("PCR_Extend", &cmd).map(|_| ())
    }

    /// Create the attestation key: a primary, restricted ECC P-256 ECDSA-SHA256
    /// signing key under the endorsement hierarchy ([`wire::ak_template`]).
    /// Deterministic: the same TPM (endorsement seed) gives the same key.
    pub fn create_ak(&mut self) -> Result<Ak, TpmError> {
        let cmd = wire::create_primary_ak()?;
        let resp = self.execute("CreatePrimary", &cmd)?;
        let (handle, public) = wire::parse_create_primary(&resp)?;
        Ok(Ak {
            handle,
            public: public.to_vec(),
        })
    }

    /// TPM2_Quote over the given SHA-256 PCRs with `nonce` as qualifying
    /// data, signed by `ak_handle` with its own scheme.
    pub fn quote(&mut self, ak_handle: u32, nonce: &[u8], pcrs: &[u8]) -> Result<Quote, TpmError> {
        let cmd = wire::quote(ak_handle, nonce, pcrs)?;
        let resp = self.execute("Quote", &cmd)?;
        let (attest, signature) = wire::parse_quote(&resp)?;
        Ok(Quote {
            attest: attest.to_vec(),
            signature: signature.to_vec(),
        })
    }

    /// Unload a transient object or session.
    pub fn flush_context(&mut self, handle: u32) -> Result<(), TpmError> {
        let cmd = wire::flush_context(handle)?;
        self.execute("FlushContext", &cmd).map(|_| ())
    }

    /// Define a 64-bit NV counter at `index` (owner range 0x01xxxxxx),
    /// authorised by the owner hierarchy, read/incremented with the index's
    /// own (empty) auth or the owner's. Returns `false` if it already existed
    /// (TPM_RC_NV_DEFINED), so calling it every boot is fine.
    pub fn nv_define_counter(&mut self, index: u32) -> Result<bool, TpmError> {
        let cmd = wire::nv_define_counter(index)?;
        match self.execute("NV_DefineSpace", &cmd) {
            Ok(_) => Ok(true),
            Err(e) if e.rc_base() == Some(rc::NV_DEFINED) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Increment the NV counter at `index` by one.
    pub fn nv_increment(&mut self, index: u32) -> Result<(), TpmError> {
        let cmd = wire::nv_increment(index)?;
        self.execute("NV_Increment", &cmd).map(|_| ())
    }

    /// Read the NV counter at `index`. A defined counter that was never
    /// incremented (TPM_RC_NV_UNINITIALIZED) reads as 0.
    pub fn nv_read_counter(&mut self, index: u32) -> Result<u64, TpmError> {
        let cmd = wire::nv_read_counter(index)?;
        match self.execute("NV_Read", &cmd) {
            Ok(resp) => wire::parse_nv_read_counter(&resp),
            Err(e) if e.rc_base() == Some(rc::NV_UNINITIALIZED) => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Define the anti-rollback floor index (`azl_formats::nvfloor`) with
    /// the given protection. `false` if an index already exists there.
    pub fn nv_define_floor(
        &mut self,
        protection: azl_formats::nvfloor::Protection,
    ) -> Result<bool, TpmError> {
        let cmd = wire::nv_define_floor(protection)?;
        match self.execute("NV_DefineSpace", &cmd) {
            Ok(_) => Ok(true),
            Err(e) if e.rc_base() == Some(rc::NV_DEFINED) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The public area of NV index `index`; `None` if it is not defined
    /// (TPM_RC_HANDLE).
    pub fn nv_read_public(&mut self, index: u32) -> Result<Option<wire::NvPublic>, TpmError> {
        let cmd = wire::nv_read_public(index)?;
        match self.execute("NV_ReadPublic", &cmd) {
            Ok(resp) => wire::parse_nv_read_public(&resp).map(Some),
            Err(e) if e.rc_base() == Some(rc::HANDLE) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// OR `bits` into the TPM_NT_BITS index `index`.
    pub fn nv_set_bits(&mut self, index: u32, bits: u64) -> Result<(), TpmError> {
        let cmd = wire::nv_set_bits(index, bits)?;
        self.execute("NV_SetBits", &cmd).map(|_| ())
    }
}
