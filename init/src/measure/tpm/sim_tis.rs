//! A simulated SPI TPM for the unit tests: a byte-level model of the PTP
//! SPI protocol (4-byte header, wait states, 1..64-byte data phase) in front
//! of a TIS register file (TPM_ACCESS, TPM_STS with burstCount,
//! TPM_DATA_FIFO, TPM_DID_VID) whose complete commands are executed by a
//! real TPM behind it (swtpm through a [`Transport`]).
//!
//! It is reachable as an embedded-hal `SpiDevice` ([`SimTis`]) and as a
//! `SpiBus` ([`SimBus`]) plus chip-select `OutputPin` ([`SimCs`]), all
//! sharing one [`SimCore`]. Protocol violations are recorded in
//! [`SimCore::violations`]; tests assert there are none.
#![allow(clippy::indexing_slicing, clippy::unwrap_used)]
use super::tis_spi::*;
use super::Transport;
use embedded_hal::spi::{Operation, SpiBus, SpiDevice};
use std::cell::RefCell;
use std::convert::Infallible;
use std::rc::Rc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    Ready,
    Reception,
    Completion,
}

enum Phase {
    /// Collecting the 4 header bytes.
    Header,
    /// Wait states left to insert before the data phase.
    Wait(u32),
    /// Data phase of `len` bytes at `reg`, `n` clocked so far; `buf` holds
    /// read data (snapshot of the register) or collected write data.
    Data {
        read: bool,
        reg: u16,
        len: usize,
        buf: Vec<u8>,
        n: usize,
    },
    /// Cycle complete; further clocks are a violation.
    Done,
}

pub struct SimCore<B: Transport> {
    backend: B,
    /// Wait-state bytes inserted in each cycle (0 = none).
    pub wait_states: u32,
    /// burstCount the TPM reports (the FIFO room / data ready per burst).
    pub burst: u16,
    /// STS reads after tpmGo during which the TPM is "still executing".
    pub busy_polls: u32,
    pub violations: Vec<String>,
    pub cycles: u32,
    pub aborted_cycles: u32,
    pub wait_bytes: u32,
    pub max_fifo_chunk: usize,
    pub commands: u32,

    active: bool,
    state: State,
    cmd: Vec<u8>,
    resp: Vec<u8>,
    resp_pos: usize,
    busy_left: u32,

    cs: bool,
    hdr: Vec<u8>,
    phase: Phase,
    pending: Option<Phase>,
}

impl<B: Transport> SimCore<B> {
    pub fn new(backend: B) -> Self {
        SimCore {
            backend,
            wait_states: 0,
            burst: 64,
            busy_polls: 0,
            violations: Vec::new(),
            cycles: 0,
            aborted_cycles: 0,
            wait_bytes: 0,
            max_fifo_chunk: 0,
            commands: 0,
            active: false,
            state: State::Idle,
            cmd: Vec::new(),
            resp: Vec::new(),
            resp_pos: 0,
            busy_left: 0,
            cs: false,
            hdr: Vec::new(),
            phase: Phase::Done,
            pending: None,
        }
    }

    fn violation(&mut self, what: String) {
        self.violations.push(what);
    }

    fn cs_low(&mut self) {
        if self.cs {
            self.violation("CS asserted twice".into());
        }
        self.cs = true;
        self.hdr.clear();
        self.phase = Phase::Header;
    }

    fn cs_high(&mut self) {
        if !self.cs {
            self.violation("CS released while not asserted".into());
        }
        self.cs = false;
        self.pending = None;
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Done => self.cycles += 1,
            // Deasserting CS mid-cycle aborts it: a partial write is dropped.
            _ => self.aborted_cycles += 1,
        }
    }

    fn expected_len(&self) -> Option<usize> {
        super::device::header_size(&self.cmd)
    }

    fn sts(&mut self) -> [u8; 4] {
        let mut s = STS_VALID;
        let mut burst = 0u16;
        match self.state {
            State::Idle => {}
            State::Ready => {
                s |= STS_COMMAND_READY;
                burst = self.burst;
            }
            State::Reception => {
                if self.expected_len().is_none_or(|n| self.cmd.len() < n) {
                    s |= STS_EXPECT;
                    burst = self.burst;
                }
            }
            State::Completion => {
                if self.busy_left > 0 {
                    self.busy_left -= 1;
                } else if self.resp_pos < self.resp.len() {
                    s |= STS_DATA_AVAIL;
                    let left = self.resp.len() - self.resp_pos;
                    burst = self.burst.min(u16::try_from(left).unwrap_or(u16::MAX));
                }
            }
        }
        let [b0, b1] = burst.to_le_bytes();
        // Byte 3: tpmFamily = 01 (TPM 2.0).
        [s, b0, b1, 0x04]
    }

    /// Register contents for a read of `len` bytes at `reg` (FIFO reads are
    /// served byte by byte in `clock`).
    fn read_reg(&mut self, reg: u16, len: usize) -> Vec<u8> {
        if !self.active && reg != TPM_ACCESS {
            return vec![0xFF; len];
        }
        let mut v = match reg {
            TPM_ACCESS => vec![
                ACCESS_VALID
                    | if self.active {
                        ACCESS_ACTIVE_LOCALITY
                    } else {
                        0
                    },
            ],
            TPM_STS => self.sts().to_vec(),
            TPM_DID_VID => 0x001B_15D1u32.to_le_bytes().to_vec(),
            _ => {
                self.violation(format!("read of unmodelled register 0x{reg:03X}"));
                vec![]
            }
        };
        v.resize(len, 0);
        v
    }

    fn write_reg(&mut self, reg: u16, data: &[u8]) {
        match reg {
            TPM_ACCESS => match data {
                [ACCESS_REQUEST_USE] => self.active = true,
                [ACCESS_ACTIVE_LOCALITY] => self.active = false,
                _ => self.violation(format!("TPM_ACCESS write {data:02X?}")),
            },
            _ if !self.active => self.violation(format!("write to 0x{reg:03X} without locality")),
            TPM_STS => match data {
                [STS_COMMAND_READY] => {
                    self.state = State::Ready;
                    self.cmd.clear();
                    self.resp.clear();
                    self.resp_pos = 0;
                }
                [STS_GO] => {
                    if self.state != State::Reception || self.expected_len() != Some(self.cmd.len())
                    {
                        self.violation(format!(
                            "tpmGo in {:?} with {} bytes",
                            self.state,
                            self.cmd.len()
                        ));
                        return;
                    }
                    self.commands += 1;
                    self.resp = match self.backend.transact(&self.cmd) {
                        Ok(r) => r,
                        Err(e) => {
                            self.violation(format!("backend: {e}"));
                            // TPM_RC_FAILURE
                            vec![0x80, 0x01, 0, 0, 0, 10, 0, 0, 1, 1]
                        }
                    };
                    self.resp_pos = 0;
                    self.busy_left = self.busy_polls;
                    self.state = State::Completion;
                }
                _ => self.violation(format!("TPM_STS write {data:02X?}")),
            },
            TPM_DATA_FIFO => {
                if self.state == State::Ready {
                    self.state = State::Reception;
                }
                if self.state != State::Reception {
                    self.violation(format!("FIFO write in {:?}", self.state));
                    return;
                }
                self.max_fifo_chunk = self.max_fifo_chunk.max(data.len());
                if usize::from(self.burst) < data.len() {
                    self.violation(format!(
                        "FIFO write of {} bytes exceeds burstCount {}",
                        data.len(),
                        self.burst
                    ));
                }
                for &b in data {
                    if self.expected_len().is_some_and(|n| self.cmd.len() >= n) {
                        self.violation("FIFO write past the command size".into());
                        return;
                    }
                    self.cmd.push(b);
                }
            }
            _ => self.violation(format!("write of unmodelled register 0x{reg:03X}")),
        }
    }

    /// One SPI byte: MOSI in, MISO out.
    fn clock(&mut self, mosi: u8) -> u8 {
        if !self.cs {
            self.violation("clock without CS".into());
            return 0xFF;
        }
        let (out, next) = match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Header => {
                self.hdr.push(mosi);
                if self.hdr.len() < 4 {
                    (0x00, Phase::Header)
                } else {
                    let h = [self.hdr[0], self.hdr[1], self.hdr[2], self.hdr[3]];
                    let read = h[0] & 0x80 != 0;
                    if h[0] & 0x40 != 0 || h[1] != 0xD4 || h[2] & 0xF0 != 0 {
                        self.violation(format!("bad header {h:02X?}"));
                    }
                    let len = usize::from(h[0] & 0x3F) + 1;
                    let reg = u16::from_be_bytes([h[2], h[3]]);
                    let buf = if read && reg != TPM_DATA_FIFO {
                        self.read_reg(reg, len)
                    } else {
                        Vec::new()
                    };
                    let data = Phase::Data {
                        read,
                        reg,
                        len,
                        buf,
                        n: 0,
                    };
                    if self.wait_states > 0 {
                        self.pending = Some(data);
                        (0x00, Phase::Wait(self.wait_states))
                    } else {
                        (0x01, data)
                    }
                }
            }
            Phase::Wait(left) => {
                self.wait_bytes += 1;
                if left <= 1 {
                    (0x01, self.pending.take().unwrap_or(Phase::Done))
                } else {
                    (0x00, Phase::Wait(left - 1))
                }
            }
            Phase::Data {
                read,
                reg,
                len,
                mut buf,
                n,
            } => {
                let out = if !read {
                    buf.push(mosi);
                    0xFF
                } else if reg == TPM_DATA_FIFO {
                    self.fifo_read_byte()
                } else {
                    buf.get(n).copied().unwrap_or(0)
                };
                let n = n + 1;
                if n < len {
                    (
                        out,
                        Phase::Data {
                            read,
                            reg,
                            len,
                            buf,
                            n,
                        },
                    )
                } else {
                    if !read {
                        self.write_reg(reg, &buf);
                    } else if reg == TPM_DATA_FIFO {
                        self.max_fifo_chunk = self.max_fifo_chunk.max(len);
                    }
                    (out, Phase::Done)
                }
            }
            Phase::Done => {
                self.violation("clock after the data phase".into());
                (0xFF, Phase::Done)
            }
        };
        self.phase = next;
        out
    }

    fn fifo_read_byte(&mut self) -> u8 {
        if !self.active || self.state != State::Completion || self.busy_left > 0 {
            self.violation(format!("FIFO read in {:?}", self.state));
            return 0xFF;
        }
        match self.resp.get(self.resp_pos) {
            Some(&b) => {
                self.resp_pos += 1;
                b
            }
            None => {
                self.violation("FIFO read past the response".into());
                0xFF
            }
        }
    }
}

/// The simulated TPM as an embedded-hal `SpiDevice`.
pub struct SimTis<B: Transport>(pub Rc<RefCell<SimCore<B>>>);
/// The simulated TPM's bus side (`SpiBus`); CS through [`SimCs`].
pub struct SimBus<B: Transport>(pub Rc<RefCell<SimCore<B>>>);
/// The chip-select line of [`SimBus`].
pub struct SimCs<B: Transport>(pub Rc<RefCell<SimCore<B>>>);

impl<B: Transport> embedded_hal::spi::ErrorType for SimTis<B> {
    type Error = Infallible;
}
impl<B: Transport> embedded_hal::spi::ErrorType for SimBus<B> {
    type Error = Infallible;
}
impl<B: Transport> embedded_hal::digital::ErrorType for SimCs<B> {
    type Error = Infallible;
}

fn exchange<B: Transport>(core: &mut SimCore<B>, buf: &mut [u8]) {
    for b in buf {
        *b = core.clock(*b);
    }
}

impl<B: Transport> SpiDevice for SimTis<B> {
    fn transaction(&mut self, ops: &mut [Operation<'_, u8>]) -> Result<(), Infallible> {
        let mut core = self.0.borrow_mut();
        core.cs_low();
        for op in ops {
            match op {
                Operation::Read(buf) => {
                    buf.fill(0);
                    exchange(&mut core, buf);
                }
                Operation::Write(buf) => {
                    for &b in buf.iter() {
                        core.clock(b);
                    }
                }
                Operation::Transfer(read, write) => {
                    for i in 0..read.len().max(write.len()) {
                        let o = core.clock(write.get(i).copied().unwrap_or(0));
                        if let Some(r) = read.get_mut(i) {
                            *r = o;
                        }
                    }
                }
                Operation::TransferInPlace(buf) => exchange(&mut core, buf),
                Operation::DelayNs(_) => {}
            }
        }
        core.cs_high();
        Ok(())
    }
}

impl<B: Transport> SpiBus for SimBus<B> {
    fn read(&mut self, words: &mut [u8]) -> Result<(), Infallible> {
        words.fill(0);
        exchange(&mut self.0.borrow_mut(), words);
        Ok(())
    }
    fn write(&mut self, words: &[u8]) -> Result<(), Infallible> {
        let mut core = self.0.borrow_mut();
        for &b in words {
            core.clock(b);
        }
        Ok(())
    }
    fn transfer(&mut self, read: &mut [u8], write: &[u8]) -> Result<(), Infallible> {
        let mut core = self.0.borrow_mut();
        for i in 0..read.len().max(write.len()) {
            let o = core.clock(write.get(i).copied().unwrap_or(0));
            if let Some(r) = read.get_mut(i) {
                *r = o;
            }
        }
        Ok(())
    }
    fn transfer_in_place(&mut self, words: &mut [u8]) -> Result<(), Infallible> {
        exchange(&mut self.0.borrow_mut(), words);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

impl<B: Transport> embedded_hal::digital::OutputPin for SimCs<B> {
    fn set_low(&mut self) -> Result<(), Infallible> {
        self.0.borrow_mut().cs_low();
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        self.0.borrow_mut().cs_high();
        Ok(())
    }
}
