//! A repository's decompressed `filelists.xml` → `filelists::parse` with
//! a few wanted paths. Oracle: every path returned was asked for, under a
//! lower-case pkgid.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeSet;

fuzz_target!(|data: &[u8]| {
    let wanted: BTreeSet<String> = ["/usr/share/foo/data", "/usr/bin/foo", "/etc/x"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let Ok(owners) = azl_rpm::filelists::parse(data, &wanted) else {
        return;
    };
    for (id, files) in owners {
        assert_eq!(id, id.to_ascii_lowercase());
        assert!(files.iter().all(|f| wanted.contains(f)), "{files:?}");
    }
});
