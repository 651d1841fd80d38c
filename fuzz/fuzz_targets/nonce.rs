//! The nonce hex rule: never panics; what it accepts round-trips.
#![no_main]
use azl_formats::nonce;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(n) = nonce::parse_hex(s) {
        assert!((nonce::MIN_LEN..=nonce::MAX_LEN).contains(&n.len()));
        let hex: String = n.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(nonce::parse_hex(&hex), Ok(n));
    }
    let _ = azl_formats::measure::measured_cmdline(data);
});
