//! azl-edge init: one static binary with several faces, chosen by the name
//! it is called by (argv[0]) or by its first argument:
//!
//! - as PID 1 (or `init`): the system's init, see [`pid1`];
//! - `initctl …` (or `init initctl …` / `init ctl …`): the control client;
//! - `update …` (or `init update …`): A/B updates, see [`update::cli`].
#![deny(unsafe_code)]

use azl_init::{initctl, pid1, update};

fn main() {
    // PID 1 ignores its arguments: the kernel passes unknown cmdline words.
    if std::process::id() == 1 {
        pid1::run();
    }
    let args: Vec<String> = std::env::args().collect();
    let argv0 = args
        .first()
        .map(|a| a.rsplit('/').next().unwrap_or(a))
        .unwrap_or("init");
    let code = match (argv0, args.get(1).map(String::as_str)) {
        ("initctl", _) => initctl::client::main(args.get(1..).unwrap_or(&[])),
        (_, Some("initctl" | "ctl")) => initctl::client::main(args.get(2..).unwrap_or(&[])),
        ("update", _) => update::cli::main(args.get(1..).unwrap_or(&[])),
        (_, Some("update")) => update::cli::main(args.get(2..).unwrap_or(&[])),
        _ => {
            eprintln!(
                "azl-edge init {}: not PID 1.\nusage: initctl COMMAND [SERVICE]   (or: init ctl COMMAND [SERVICE])\n       update COMMAND              (or: init update COMMAND)",
                env!("CARGO_PKG_VERSION")
            );
            2
        }
    };
    std::process::exit(code);
}
