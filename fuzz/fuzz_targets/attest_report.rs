//! An attestation report as the host verifier receives it: the envelope,
//! then the event log and signed manifest it carries.
#![no_main]
use azl_formats::attest::Report;
use azl_formats::envelope::Enveloped;
use azl_formats::eventlog;
use azl_formats::manifest::SignedManifest;
use azl_formats::measure::{self, QUOTED_PCRS};
use azl_formats::{nonce, signature};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static KEY: OnceLock<Vec<u8>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Ok(r) = Report::from_bytes(data) else {
        return;
    };
    if let Ok(events) = eventlog::parse(&r.event_log) {
        let _ = eventlog::replay(&events, &QUOTED_PCRS);
        for e in &events {
            let _ = measure::parse_event_data(&e.data);
        }
    }
    if let Ok(sm) = SignedManifest::from_bytes(&r.manifest) {
        let _ = signature::verify(&sm, KEY.get_or_init(azl_fuzz::public_key));
    }
    let hex: String = r.nonce.iter().map(|b| format!("{b:02x}")).collect();
    if (nonce::MIN_LEN..=nonce::MAX_LEN).contains(&r.nonce.len()) {
        assert_eq!(nonce::parse_hex(&hex).as_ref(), Ok(&r.nonce));
    }
});
