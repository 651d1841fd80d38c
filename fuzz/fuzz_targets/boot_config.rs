//! The boot configuration init reads first.
#![no_main]
use azl_formats::envelope::Enveloped;
use azl_formats::BootConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = BootConfig::from_bytes(data) {
        let again = c.to_bytes().expect("encodes");
        assert_eq!(BootConfig::from_bytes(&again).expect("re-decodes"), c);
    }
});
