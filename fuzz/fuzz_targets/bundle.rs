//! The head of an update bundle as a device reads it before any payload:
//! preamble → (manifest section) → signed header → header → layout check
//! against a fixed manifest and slot. Nothing here may panic or allocate by
//! a declared size.
#![no_main]
use azl_formats::bundle::{
    check_layout, Header, Preamble, SignedHeader, SlotGeometry, PREAMBLE_LEN,
};
use azl_formats::envelope::Enveloped;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let manifest = azl_formats::manifest::example();
    let Ok(p) = Preamble::decode(data) else {
        return;
    };
    let rest = data.get(PREAMBLE_LEN..).unwrap_or_default();
    let m_len = p.manifest_len as usize;
    let Some(section) = rest.get(..m_len) else {
        return;
    };
    let Some(header_bytes) = rest.get(m_len..m_len + p.header_len as usize) else {
        return;
    };
    let Ok(sh) = SignedHeader::from_bytes(header_bytes) else {
        return;
    };
    let Ok(h) = Header::from_bytes(&sh.header) else {
        return;
    };
    for size in [0, 1 << 20, 1 << 30, u64::MAX] {
        let _ = check_layout(&h, section, &manifest, SlotGeometry { size });
    }
});
