//! Every envelope type and the manifest region from the same bytes: decode
//! must return a value or an error, and a decoded value re-encodes to bytes
//! that decode to the same value.
#![no_main]
use azl_formats::attest::Report;
use azl_formats::envelope::Enveloped;
use azl_formats::manifest::{Manifest, SignedManifest};
use azl_formats::{BootConfig, ServiceTable};
use libfuzzer_sys::fuzz_target;

fn roundtrip<T: Enveloped + PartialEq + core::fmt::Debug>(data: &[u8]) {
    if let Ok(v) = T::from_bytes(data) {
        let again = v.to_bytes().expect("a decoded value encodes");
        assert_eq!(T::from_bytes(&again).expect("re-decodes"), v);
    }
}

fuzz_target!(|data: &[u8]| {
    roundtrip::<BootConfig>(data);
    roundtrip::<ServiceTable>(data);
    roundtrip::<Manifest>(data);
    roundtrip::<SignedManifest>(data);
    roundtrip::<Report>(data);
    let _ = SignedManifest::from_region(data);
});
