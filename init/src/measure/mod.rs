//! Measured boot on the device: before each thing is used, PID 1 extends
//! its digest into a TPM PCR (when there is a TPM) and appends the event to
//! a TCG crypto-agile event log under `/run/azl-edge/` (always), so a
//! verifier can replay the log to the quoted PCRs. The PCR map and event
//! format are `azl_formats::measure` (docs/pcr-map.md).
//!
//! Stage 1 (initramfs) starts the log; the exec'd stage 2 finds it on the
//! moved `/run` and continues it. Without a TPM the log is still kept and
//! every report says `software-only`.
pub mod attest;
pub mod tpm;

use azl_formats::eventlog::EventLog;
use azl_formats::measure::Kind;
use tpm::{DeviceTransport, Tpm};

pub use azl_formats::paths::{
    EVENT_LOG as LOG_PATH, FIRMWARE_EVENT_LOG as FIRMWARE_LOG, MANIFEST_COPY,
};

/// SHA-256 PCR values as read from a TPM, `(index, value)`.
pub type PcrValues = Vec<(u8, [u8; 32])>;

/// Where measurements go besides the log.
pub trait PcrSink {
    fn extend(&mut self, pcr: u8, digest: &[u8; 32]) -> Result<(), String>;
    /// The SHA-256 bank's values of `pcrs` (TPM2_PCR_Read).
    fn read(&mut self, pcrs: &[u8]) -> Result<PcrValues, String>;
}

/// The kernel's TPM device as a [`PcrSink`].
struct DevicePcrs(Tpm<DeviceTransport>);

impl PcrSink for DevicePcrs {
    fn extend(&mut self, pcr: u8, digest: &[u8; 32]) -> Result<(), String> {
        self.0.pcr_extend(pcr, digest).map_err(|e| e.to_string())
    }

    fn read(&mut self, pcrs: &[u8]) -> Result<PcrValues, String> {
        self.0.pcr_read(pcrs).map_err(|e| e.to_string())
    }
}

fn open_tpm() -> Option<Box<dyn PcrSink>> {
    let (path, transport) = tpm::open_default()?;
    log::info!("measure: TPM at {path}");
    Some(Box::new(DevicePcrs(Tpm::new(transport))))
}

pub struct Measurer {
    log: EventLog,
    tpm: Option<Box<dyn PcrSink>>,
    /// Events appended since the log file was last written.
    dirty: bool,
}

impl Measurer {
    /// Continue the log stage 1 left in /run, or start one; open the TPM.
    pub fn start() -> Measurer {
        let continued = std::fs::read(LOG_PATH).ok();
        let log = match &continued {
            Some(bytes) => EventLog::from_bytes(bytes).unwrap_or_else(|e| {
                log::error!("measure: {LOG_PATH} is damaged ({e}); starting a new log");
                EventLog::new()
            }),
            None => EventLog::new(),
        };
        let tpm = open_tpm();
        // Said once per boot (stage 2 continues stage 1's log).
        if tpm.is_none() && continued.is_none() {
            log::warn!(
                "measure: no TPM; measurements are kept in the log only (software-only trust tier)"
            );
        }
        Measurer {
            log,
            tpm,
            dirty: false,
        }
    }

    /// Measure `content` as `kind`: extend the PCR, append to the log. The
    /// log file follows at the next [`Measurer::flush`].
    pub fn measure(&mut self, kind: Kind, content: &[u8]) {
        let digest = self.log.append_azl(kind, content);
        if let Some(t) = self.tpm.as_mut() {
            if let Err(e) = t.extend(kind.pcr(), &digest) {
                // The log now has an event the PCR lacks: attestation of
                // this boot will fail, as it must.
                log::error!(
                    "measure: extending PCR {} with {}: {e}",
                    kind.pcr(),
                    kind.tag()
                );
            }
        }
        self.dirty = true;
    }

    /// Read `pcrs` back from the TPM; `None` without one (the trial's
    /// self-check compares them with the log's replay).
    pub fn read_pcrs(&mut self, pcrs: &[u8]) -> Option<Result<PcrValues, String>> {
        self.tpm.as_mut().map(|t| t.read(pcrs))
    }

    /// Write the log to /run if events were added (pid1 calls this before
    /// it waits for events and before it execs stage 2).
    pub fn flush(&mut self) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        let tmp = format!("{LOG_PATH}.tmp");
        let res = std::fs::create_dir_all(azl_formats::paths::RUN_DIR)
            .and_then(|()| std::fs::write(&tmp, self.log.as_bytes()))
            .and_then(|()| std::fs::rename(&tmp, LOG_PATH));
        if let Err(e) = res {
            log::error!("measure: cannot write {LOG_PATH}: {e}");
        }
    }
}

/// The kernel command line as measured ([`azl_formats::measure::measured_cmdline`],
/// the rule imagegen predicts with).
pub fn cmdline() -> Vec<u8> {
    let raw = std::fs::read(azl_formats::paths::PROC_CMDLINE).unwrap_or_default();
    azl_formats::measure::measured_cmdline(&raw).to_vec()
}
