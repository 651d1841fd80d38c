//! The image config TOML (`images/*.toml`): parse, then every check that
//! needs no host file ([image]/[kernel] settings, [[user]], [[service]]
//! against the base layout). Errors must carry the file name.
#![no_main]
use azl_image::config::Config;
use azl_image::diag::Diagnostics;
use azl_image::expand::MapEnv;
use azl_image::pipeline::CheckProblem;
use azl_image::rootfs::FileSet;
use azl_image::source::SourceFile;
use azl_image::users::UserDb;
use azl_image::{services, skeleton};
use libfuzzer_sys::fuzz_target;

const NAME: &str = "fuzz.toml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let cfg = match Config::parse(SourceFile::new(NAME.into(), text.into())) {
        Ok(c) => c,
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with(NAME), "unlocated error: {msg}");
            return;
        }
    };
    let env = MapEnv::new([("HOME", "/home/fuzz"), ("AZL_CACHE", "/cache")]);
    let mut d = Diagnostics::<CheckProblem>::new();
    let settings = cfg.image_settings(&env, &mut d);
    let users = UserDb::compile(&cfg, &mut d);
    let mut set = FileSet::new();
    if skeleton::add_base(&mut set, Vec::new(), &settings.hostname, &users).is_err() {
        return;
    }
    let table = services::compile(&cfg, &users, &set, &mut d);
    match d.finish() {
        Ok(()) => {
            // What the build accepts, init accepts.
            table.validate().expect("a compiled table validates");
            azl_formats::limits::check_table(&table).expect("within init's limits");
        }
        Err(e) => {
            for line in e.to_string().lines() {
                assert!(line.starts_with(NAME), "unlocated error: {line}");
            }
        }
    }
});
