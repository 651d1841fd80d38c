//! A repository's decompressed `primary.xml`, and every dependency string
//! in it re-parsed from its printed form (the printer and the rich parser
//! agree).
#![no_main]
use azl_rpm::dep::Rich;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(pkgs) = azl_rpm::primary::parse(data) else {
        // The rich-dependency parser on its own, with the same bytes.
        if let Ok(s) = std::str::from_utf8(data) {
            if let Ok(r) = Rich::parse(s) {
                let back = Rich::parse(&r.to_string()).expect("printed form parses");
                assert_eq!(back, r);
            }
        }
        return;
    };
    for p in pkgs {
        for r in &p.requires {
            if matches!(r.dep, Rich::Dep(_)) {
                continue;
            }
            let back = Rich::parse(&r.dep.to_string()).expect("printed form parses");
            assert_eq!(back, r.dep);
        }
    }
});
