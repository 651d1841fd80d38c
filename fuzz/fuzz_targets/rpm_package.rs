//! A .rpm file from a repository → `package::check` (lead, headers, header
//! and payload digests; no key) → `unpack` (bounded decompression, cpio,
//! header/payload match, paths, links) → `Tree::add`. Oracle: every
//! accepted item has a plain absolute path and a symlink target inside
//! the root.
#![no_main]
use azl_rpm::package::entries::{link_stays_inside, plain_path, Kind, Options};
use azl_rpm::package::{check, tree::Tree, Trust};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(pkg) = check("fuzz.rpm", data, None, Trust::NoSignature) else {
        return;
    };
    let _ = pkg.scriptlets();
    let Ok(items) = pkg.unpack(&Options { allow_devices: true }) else {
        return;
    };
    for i in &items {
        assert!(plain_path(&i.path).is_ok(), "{}", i.path);
        if let Kind::Symlink(t) = &i.kind {
            assert!(link_stays_inside(&i.path, t), "{} -> {t}", i.path);
        }
    }
    let _ = Tree::new().add(&pkg.nevra, items);
});
