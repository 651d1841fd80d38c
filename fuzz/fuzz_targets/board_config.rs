//! The board TOML (`boards/*.toml`): parse and check. Errors must carry
//! the file name.
#![no_main]
use azl_image::board;
use azl_image::source::SourceFile;
use libfuzzer_sys::fuzz_target;

const NAME: &str = "fuzz.toml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = board::parse(SourceFile::new(NAME.into(), text.into()), None) {
        for line in e.to_string().lines() {
            assert!(line.starts_with(NAME), "unlocated error: {line}");
        }
    }
});
