//! The service table: decode, then the checks init runs before supervising.
#![no_main]
use azl_formats::envelope::Enveloped;
use azl_formats::{limits, ServiceTable};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = ServiceTable::from_bytes(data) {
        let _ = t.validate();
        let _ = limits::check_table(&t);
        if let Some(s) = t.services.first() {
            assert_eq!(t.index_of(&s.name), Some(0));
        }
    }
});
