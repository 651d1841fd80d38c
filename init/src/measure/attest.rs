//! `initctl attest --nonce HEX [-o FILE]`: the device's answer to "prove
//! what you are running". With a TPM: a fresh attestation key (a restricted
//! P-256 signing primary under the endorsement hierarchy, the same key every
//! time for the same TPM), a quote over the azl-edge PCRs with the
//! verifier's nonce, and the PCR values; always: the event log (merged
//! after the firmware's, if any) and the running slot's signed manifest.
//! Without a TPM the report says `software-only`.
use crate::measure::tpm::{DeviceTransport, Tpm, TpmError};
use crate::measure::{FIRMWARE_LOG, LOG_PATH, MANIFEST_COPY};
use azl_formats::attest::{Report, Tier};
use azl_formats::envelope::Enveloped;
use azl_formats::measure::QUOTED_PCRS;
use std::io::Write;

struct Quoted {
    ak_public: Vec<u8>,
    quote: Vec<u8>,
    signature: Vec<u8>,
    pcrs: Vec<(u8, [u8; 32])>,
}

fn quote(tpm: &mut Tpm<DeviceTransport>, nonce: &[u8]) -> Result<Quoted, TpmError> {
    let ak = tpm.create_ak()?;
    let q = tpm.quote(ak.handle, nonce, &QUOTED_PCRS);
    let _ = tpm.flush_context(ak.handle);
    let q = q?;
    let pcrs = tpm.pcr_read(&QUOTED_PCRS)?;
    Ok(Quoted {
        ak_public: ak.public,
        quote: q.attest,
        signature: q.signature,
        pcrs,
    })
}

fn build(nonce: Vec<u8>) -> Result<Report, String> {
    let ours = std::fs::read(LOG_PATH)
        .map_err(|e| format!("cannot read the event log {LOG_PATH}: {e}"))?;
    let event_log = match std::fs::read(FIRMWARE_LOG) {
        Ok(fw) if !fw.is_empty() => azl_formats::eventlog::merge(&fw, &ours)
            .map_err(|e| format!("merging the firmware event log: {e}"))?,
        _ => ours,
    };
    let manifest = std::fs::read(MANIFEST_COPY).unwrap_or_default();
    let mut report = Report {
        tier: Tier::SoftwareOnly,
        nonce,
        ak_public: Vec::new(),
        quote: Vec::new(),
        signature: Vec::new(),
        pcrs: Vec::new(),
        event_log,
        manifest,
    };
    if let Some((path, transport)) = crate::measure::tpm::open_default() {
        let q = quote(&mut Tpm::new(transport), &report.nonce)
            .map_err(|e| format!("TPM {path}: {e}"))?;
        // The quote this boot answered: what an approval of this trial
        // must name (policy attested, docs/update.md).
        if let Err(e) = crate::update::gate::approval::record_answer(&report.nonce, &q.ak_public) {
            eprintln!(
                "initctl: attest: cannot record the answered nonce in {}: {e} (an approval of this quote will be refused)",
                azl_formats::paths::ATTEST_ANSWERS
            );
        }
        report.tier = Tier::Tpm;
        report.ak_public = q.ak_public;
        report.quote = q.quote;
        report.signature = q.signature;
        report.pcrs = q.pcrs;
    }
    Ok(report)
}

fn usage() -> i32 {
    eprintln!("usage: initctl attest --nonce HEX [-o FILE]\n  writes an attestation report (stdout if no -o)");
    2
}

/// Entry point of `initctl attest ARGS`.
pub fn main(args: &[String]) -> i32 {
    let mut nonce = None;
    let mut out = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--nonce" => nonce = it.next(),
            "-o" | "--output" => out = it.next(),
            _ => return usage(),
        }
    }
    let Some(nonce) = nonce else { return usage() };
    let nonce = match azl_formats::nonce::parse_hex(nonce) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("initctl: --nonce: {e}");
            return 2;
        }
    };
    let report = match build(nonce) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("initctl: attest: {e}");
            return 1;
        }
    };
    let bytes = match report.to_bytes() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("initctl: attest: encoding the report: {e}");
            return 1;
        }
    };
    let tier = match report.tier {
        Tier::Tpm => "tpm",
        Tier::SoftwareOnly => "software-only",
    };
    let written = match out {
        Some(path) => {
            let tmp = format!("{path}.tmp");
            std::fs::write(&tmp, &bytes)
                .and_then(|()| std::fs::File::open(&tmp).and_then(|f| f.sync_all()))
                .and_then(|()| std::fs::rename(&tmp, path))
                .map_err(|e| format!("{path}: {e}"))
        }
        None => std::io::stdout()
            .write_all(&bytes)
            .map_err(|e| format!("stdout: {e}")),
    };
    match written {
        Ok(()) => {
            eprintln!(
                "initctl: attestation report ({tier}, {} bytes) written",
                bytes.len()
            );
            0
        }
        Err(e) => {
            eprintln!("initctl: attest: cannot write the report: {e}");
            1
        }
    }
}
