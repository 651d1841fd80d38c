//! A repository's `repomd.xml` (the first file read from any repository).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = azl_rpm::repomd::Repomd::parse(data) {
        for d in &m.data {
            assert!(azl_rpm::repomd::relative_href_ok(&d.href), "{}", d.href);
        }
    }
});
