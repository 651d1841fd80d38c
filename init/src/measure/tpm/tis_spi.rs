//! TPM 2.0 over SPI without a kernel driver: the TCG PC Client Platform TPM
//! Profile (PTP) FIFO interface ("TIS") on the SPI bus, locality 0.
//!
//! # SPI cycle
//!
//! Every register access is one cycle with chip-select held: a 4-byte header
//! `[R/W | (size − 1), 0xD4, addr_hi, addr_lo]` (bit 7 of byte 0 set = read;
//! at most 64 data bytes; the register space of locality 0 is at 0xD4_0000),
//! then the data phase. On the last header byte the TPM may ask for *wait
//! states* by driving MISO bit 0 low; the host then clocks single bytes until
//! one has bit 0 set, and the data phase starts with the next byte.
//!
//! Flow control means deciding in the middle of a chip-select assertion
//! whether to clock more bytes. embedded-hal's `SpiDevice` runs a fixed list
//! of operations per assertion, so two links are offered:
//!
//! - [`DeviceLink`] (`SpiDevice`, e.g. linux-embedded-hal's `SpidevDevice`):
//!   header and data in one transaction. Right for TPMs that do not insert
//!   wait states at the configured clock (e.g. Infineon SLB9670 as used by the
//!   Raspberry Pi `tpm-slb9670` overlay) or controllers that do TPM flow
//!   control in hardware. If the TPM does ask for wait states the cycle is
//!   void and the command fails with a clear error instead of corrupting data.
//! - [`BusLink`] (`SpiBus` + chip-select `OutputPin`): full flow control per
//!   the PTP: the header, each wait-state poll byte and the data phase are
//!   separate bus transfers under one chip-select assertion.
//!
//! # FIFO protocol (per command)
//!
//! Request locality 0 (TPM_ACCESS requestUse → activeLocality), set
//! TPM_STS.commandReady, write the command into TPM_DATA_FIFO in chunks of at
//! most burstCount bytes checking TPM_STS.Expect (set until the last byte,
//! clear after it), set TPM_STS.tpmGo, wait for dataAvail, read the 10-byte
//! header then the rest in burstCount chunks, check dataAvail clears, and set
//! commandReady again to idle the TPM. Every wait has a deadline.
use super::{TpmError, Transport};
use embedded_hal::digital::OutputPin;
use embedded_hal::spi::{Operation, SpiBus, SpiDevice};
use std::time::{Duration, Instant};

pub const TPM_ACCESS: u16 = 0x0000;
pub const TPM_STS: u16 = 0x0018;
pub const TPM_DATA_FIFO: u16 = 0x0024;
pub const TPM_DID_VID: u16 = 0x0F00;

pub const ACCESS_VALID: u8 = 0x80;
pub const ACCESS_ACTIVE_LOCALITY: u8 = 0x20;
pub const ACCESS_REQUEST_USE: u8 = 0x02;

pub const STS_VALID: u8 = 0x80;
pub const STS_COMMAND_READY: u8 = 0x40;
pub const STS_GO: u8 = 0x20;
pub const STS_DATA_AVAIL: u8 = 0x10;
pub const STS_EXPECT: u8 = 0x08;

/// Largest data phase of one SPI cycle.
pub const MAX_XFER: usize = 64;
/// Wait-state bytes clocked before giving up on one cycle.
pub const MAX_WAIT_STATES: u32 = 50;

const TIMEOUT_LOCALITY: Duration = Duration::from_millis(750);
const TIMEOUT_READY: Duration = Duration::from_secs(2);
const TIMEOUT_BURST: Duration = Duration::from_secs(2);
const TIMEOUT_VALID: Duration = Duration::from_secs(2);
/// Longest command (key generation on a slow TPM).
const TIMEOUT_COMMAND: Duration = Duration::from_secs(30);
const POLL_PAUSE: Duration = Duration::from_micros(500);

/// The SPI TIS header of one cycle at `reg` (locality 0).
pub fn header(read: bool, reg: u16, len: usize) -> [u8; 4] {
    let size = u8::try_from(len.clamp(1, MAX_XFER) - 1).unwrap_or(0);
    let [hi, lo] = reg.to_be_bytes();
    [if read { 0x80 } else { 0x00 } | size, 0xD4, hi & 0x0F, lo]
}

fn spi_err(e: impl embedded_hal::spi::Error) -> TpmError {
    TpmError::Transport(format!("SPI: {:?}", e.kind()))
}

/// One SPI TIS cycle with flow control.
pub trait TisLink {
    /// The header for `reg` then the data phase: `data` is filled on a read
    /// and sent on a write. `data.len()` is 1..=64.
    fn cycle(&mut self, read: bool, reg: u16, data: &mut [u8]) -> Result<(), TpmError>;
}

/// A `SpiDevice`: one transaction per cycle, no wait states (see module doc).
pub struct DeviceLink<S>(pub S);

impl<S: SpiDevice> TisLink for DeviceLink<S> {
    fn cycle(&mut self, read: bool, reg: u16, data: &mut [u8]) -> Result<(), TpmError> {
        let mut hdr = header(read, reg, data.len());
        let data_op = if read {
            Operation::Read(data)
        } else {
            Operation::Write(data)
        };
        self.0
            .transaction(&mut [Operation::TransferInPlace(&mut hdr), data_op])
            .map_err(spi_err)?;
        if hdr[3] & 1 == 0 {
            return Err(TpmError::Transport(format!(
                "TPM inserted SPI wait states (register 0x{reg:03X}); a SpiDevice cannot \
                 hold chip-select for flow control: use a BusLink (SpiBus + CS pin) \
                 or a lower SPI clock"
            )));
        }
        Ok(())
    }
}

/// A `SpiBus` with a chip-select pin: full PTP flow control.
pub struct BusLink<B, P> {
    pub bus: B,
    pub cs: P,
}

impl<B: SpiBus, P: OutputPin> BusLink<B, P> {
    fn in_cycle(&mut self, read: bool, reg: u16, data: &mut [u8]) -> Result<(), TpmError> {
        let mut hdr = header(read, reg, data.len());
        self.bus.transfer_in_place(&mut hdr).map_err(spi_err)?;
        if hdr[3] & 1 == 0 {
            let mut ready = false;
            for _ in 0..MAX_WAIT_STATES {
                let mut b = [0u8];
                self.bus.transfer_in_place(&mut b).map_err(spi_err)?;
                if b[0] & 1 == 1 {
                    ready = true;
                    break;
                }
            }
            if !ready {
                return Err(TpmError::Transport(format!(
                    "TPM still in SPI wait state after {MAX_WAIT_STATES} bytes (register 0x{reg:03X})"
                )));
            }
        }
        if read {
            self.bus.read(data).map_err(spi_err)
        } else {
            self.bus.write(data).map_err(spi_err)
        }
    }
}

impl<B: SpiBus, P: OutputPin> TisLink for BusLink<B, P> {
    fn cycle(&mut self, read: bool, reg: u16, data: &mut [u8]) -> Result<(), TpmError> {
        self.cs.set_low().map_err(|e| {
            TpmError::Transport(format!("CS: {:?}", embedded_hal::digital::Error::kind(&e)))
        })?;
        let r = self.in_cycle(read, reg, data);
        let f = self.bus.flush().map_err(spi_err);
        let c = self.cs.set_high().map_err(|e| {
            TpmError::Transport(format!("CS: {:?}", embedded_hal::digital::Error::kind(&e)))
        });
        r.and(f).and(c)
    }
}

/// [`Transport`] over SPI TIS. Construct with [`TisSpiTransport::new`]
/// (SpiDevice) or [`TisSpiTransport::with_cs`] (SpiBus + CS pin).
pub struct TisSpiTransport<L: TisLink> {
    link: L,
    have_locality: bool,
}

impl<S: SpiDevice> TisSpiTransport<DeviceLink<S>> {
    pub fn new(spi: S) -> Self {
        TisSpiTransport::from_link(DeviceLink(spi))
    }
}

impl<B: SpiBus, P: OutputPin> TisSpiTransport<BusLink<B, P>> {
    pub fn with_cs(bus: B, cs: P) -> Self {
        TisSpiTransport::from_link(BusLink { bus, cs })
    }
}

/// Open a Linux spidev node (e.g. `/dev/spidev0.1`) as a [`DeviceLink`]
/// transport: SPI mode 0, 8-bit words, `hz` clock.
pub fn open_spidev(
    path: &str,
    hz: u32,
) -> Result<TisSpiTransport<DeviceLink<linux_embedded_hal::SpidevDevice>>, TpmError> {
    use linux_embedded_hal::spidev::{SpiModeFlags, SpidevOptions};
    let mut dev = linux_embedded_hal::SpidevDevice::open(path)
        .map_err(|e| TpmError::Transport(format!("{path}: {}", e.inner())))?;
    let opts = SpidevOptions::new()
        .bits_per_word(8)
        .max_speed_hz(hz)
        .mode(SpiModeFlags::SPI_MODE_0)
        .build();
    dev.configure(&opts).map_err(|err| TpmError::Io {
        op: "spidev configure",
        err,
    })?;
    Ok(TisSpiTransport::new(dev))
}

fn wait_until<F>(what: &'static str, timeout: Duration, mut check: F) -> Result<u8, TpmError>
where
    F: FnMut() -> Result<Option<u8>, TpmError>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check()? {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(TpmError::Timeout { op: what });
        }
        std::thread::sleep(POLL_PAUSE);
    }
}

impl<L: TisLink> TisSpiTransport<L> {
    pub fn from_link(link: L) -> Self {
        TisSpiTransport {
            link,
            have_locality: false,
        }
    }

    pub fn link_mut(&mut self) -> &mut L {
        &mut self.link
    }

    fn read_u8(&mut self, reg: u16) -> Result<u8, TpmError> {
        let mut b = [0u8];
        self.link.cycle(true, reg, &mut b)?;
        Ok(b[0])
    }

    fn write_u8(&mut self, reg: u16, v: u8) -> Result<(), TpmError> {
        self.link.cycle(false, reg, &mut [v])
    }

    /// TPM_STS: (status byte, burstCount).
    fn status(&mut self) -> Result<(u8, u16), TpmError> {
        let mut b = [0u8; 4];
        self.link.cycle(true, TPM_STS, &mut b)?;
        Ok((b[0], u16::from_le_bytes([b[1], b[2]])))
    }

    /// TPM_DID_VID (vendor ID in the low 16 bits); also a cheap "is a TIS
    /// TPM answering on this bus" probe.
    pub fn did_vid(&mut self) -> Result<u32, TpmError> {
        if !self.have_locality {
            self.request_locality()?;
        }
        let mut b = [0u8; 4];
        self.link.cycle(true, TPM_DID_VID, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn request_locality(&mut self) -> Result<(), TpmError> {
        let want = ACCESS_VALID | ACCESS_ACTIVE_LOCALITY;
        if self.read_u8(TPM_ACCESS)? & want == want {
            self.have_locality = true;
            return Ok(());
        }
        self.write_u8(TPM_ACCESS, ACCESS_REQUEST_USE)?;
        wait_until("request locality 0", TIMEOUT_LOCALITY, || {
            let a = self.read_u8(TPM_ACCESS)?;
            Ok((a & want == want).then_some(a))
        })?;
        self.have_locality = true;
        Ok(())
    }

    /// Give up locality 0 (e.g. before handing the TPM to a kernel driver).
    pub fn release_locality(&mut self) -> Result<(), TpmError> {
        self.have_locality = false;
        self.write_u8(TPM_ACCESS, ACCESS_ACTIVE_LOCALITY)
    }

    fn wait_status(
        &mut self,
        what: &'static str,
        timeout: Duration,
        mask: u8,
    ) -> Result<u8, TpmError> {
        wait_until(what, timeout, || {
            let (s, _) = self.status()?;
            Ok((s & mask == mask).then_some(s))
        })
    }

    fn burst_count(&mut self) -> Result<usize, TpmError> {
        let deadline = Instant::now() + TIMEOUT_BURST;
        loop {
            let (_, burst) = self.status()?;
            if burst > 0 {
                return Ok(usize::from(burst).min(MAX_XFER));
            }
            if Instant::now() >= deadline {
                return Err(TpmError::Timeout { op: "burstCount" });
            }
            std::thread::sleep(POLL_PAUSE);
        }
    }

    fn send(&mut self, cmd: &[u8]) -> Result<(), TpmError> {
        let (s, _) = self.status()?;
        if s & STS_COMMAND_READY == 0 {
            self.write_u8(TPM_STS, STS_COMMAND_READY)?;
            self.wait_status("commandReady", TIMEOUT_READY, STS_COMMAND_READY)?;
        }
        let mut sent = 0;
        while sent < cmd.len() {
            let n = self.burst_count()?.min(cmd.len() - sent);
            let mut chunk = [0u8; MAX_XFER];
            let (Some(dst), Some(src)) = (chunk.get_mut(..n), cmd.get(sent..sent + n)) else {
                return Err(TpmError::Transport("FIFO chunk out of range".into()));
            };
            dst.copy_from_slice(src);
            self.link.cycle(false, TPM_DATA_FIFO, dst)?;
            sent += n;
            let s = self.wait_status("stsValid", TIMEOUT_VALID, STS_VALID)?;
            let expect = s & STS_EXPECT != 0;
            if sent < cmd.len() && !expect {
                return Err(TpmError::Transport(format!(
                    "TPM stopped expecting data after {sent} of {} bytes",
                    cmd.len()
                )));
            }
            if sent == cmd.len() && expect {
                return Err(TpmError::Transport(
                    "TPM still expects data after the whole command".into(),
                ));
            }
        }
        self.write_u8(TPM_STS, STS_GO)
    }

    fn read_fifo(&mut self, buf: &mut [u8]) -> Result<(), TpmError> {
        let mut got = 0;
        while got < buf.len() {
            let n = self.burst_count()?.min(buf.len() - got);
            let dst = buf
                .get_mut(got..got + n)
                .ok_or_else(|| TpmError::Transport("FIFO chunk out of range".into()))?;
            self.link.cycle(true, TPM_DATA_FIFO, dst)?;
            got += n;
        }
        Ok(())
    }

    fn receive(&mut self) -> Result<Vec<u8>, TpmError> {
        self.wait_status("response", TIMEOUT_COMMAND, STS_VALID | STS_DATA_AVAIL)?;
        let mut resp = vec![0u8; 10];
        self.read_fifo(&mut resp)?;
        let size = super::device::header_size(&resp).unwrap_or(0);
        if !(10..=4096).contains(&size) {
            return Err(TpmError::Transport(format!("bad response size {size}")));
        }
        resp.resize(size, 0);
        self.read_fifo(resp.get_mut(10..).unwrap_or(&mut []))?;
        let s = self.wait_status("stsValid", TIMEOUT_VALID, STS_VALID)?;
        if s & STS_DATA_AVAIL != 0 {
            return Err(TpmError::Transport(
                "TPM has more data than the response size says".into(),
            ));
        }
        Ok(resp)
    }
}

impl<L: TisLink> Transport for TisSpiTransport<L> {
    fn transact(&mut self, cmd: &[u8]) -> Result<Vec<u8>, TpmError> {
        if !self.have_locality {
            self.request_locality()?;
        }
        let r = self.send(cmd).and_then(|()| self.receive());
        // Idle the TPM (also aborts a half-sent command after an error).
        let idle = self.write_u8(TPM_STS, STS_COMMAND_READY);
        let resp = r?;
        idle?;
        Ok(resp)
    }
}
