//! `imagegen inspect BUNDLE` (host/image/src/inspect/bundle.rs): a bundle
//! file someone downloaded, read by the host tool before it is trusted.
//! The bytes go to a file next to the fixture's public key (`--key`), so
//! mutations past the signatures reach the payload checks. Oracle: no
//! panic, no unbounded allocation, and a bundle reported OK has every
//! check passed.
#![no_main]
use azl_image::inspect::{inspect, InspectOptions};
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

const KEY: &[u8] = include_bytes!("../../init/src/update/install/fixtures/root-b.azb.pub");

fn dir() -> &'static PathBuf {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let d = base.join(format!("azl-fuzz-inspect-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("scratch dir");
        std::fs::write(d.join("bundle.pub"), KEY).expect("key");
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let d = dir();
    let path = d.join("bundle.azb");
    std::fs::write(&path, data).expect("write input");
    let opts = InspectOptions {
        path,
        key: Some(d.join("bundle.pub")),
    };
    if let Ok(r) = inspect(&opts) {
        if let Some(b) = &r.bundle {
            if r.ok {
                assert!(b.checks.iter().all(|c| c.ok), "ok with a failed check");
            }
        }
    }
});
