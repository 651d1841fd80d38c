//! A signed manifest as stage 1 reads it: the region, the signature check
//! against the seeds' key, and what init then computes from the manifest.
#![no_main]
use azl_formats::envelope::Enveloped;
use azl_formats::manifest::SignedManifest;
use azl_formats::signature;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static KEY: OnceLock<Vec<u8>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let key = KEY.get_or_init(azl_fuzz::public_key);
    let sm = match SignedManifest::from_bytes(data) {
        Ok(sm) => sm,
        Err(_) => match SignedManifest::from_region(data) {
            Ok(sm) => sm,
            Err(_) => return,
        },
    };
    let _ = signature::verify(&sm, key);
    for allow in [false, true] {
        if let Ok(a) = signature::accept(&sm, Some(key), allow) {
            let m = a.manifest;
            let _ = m.identity_bytes();
            let _ = m.rootfs.verity.table_params("/dev/vda2");
        }
    }
    let _ = signature::accept(&sm, None, true);
});
