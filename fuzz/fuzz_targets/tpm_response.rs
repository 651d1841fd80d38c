//! The device's parsers of TPM responses (`init/src/measure/tpm/wire.rs`):
//! a TPM — or whatever answers on its device node or SPI bus — is outside
//! input to PID 1. Each parser gets the same bytes; none may panic, and an
//! accepted response is internally consistent.
#![no_main]
use azl_init::measure::tpm::wire;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = wire::response_code("fuzz", data);
    if let Ok(r) = wire::parse_get_random(data) {
        assert!(r.len() <= data.len());
    }
    if let Ok(pcrs) = wire::parse_pcr_read(data) {
        assert!(pcrs.len() * 32 <= data.len());
    }
    if let Ok((_, public)) = wire::parse_create_primary(data) {
        assert!(public.len() <= data.len());
    }
    if let Ok((quoted, sig)) = wire::parse_quote(data) {
        assert!(quoted.len() + sig.len() <= data.len());
    }
    let _ = wire::parse_nv_read_counter(data);
    let _ = wire::parse_nv_read_public(data);
});
