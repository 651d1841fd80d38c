//! `initctl`: the client face of the init binary. Sends one request to the
//! running PID 1 over the control socket and prints the answer. Exit codes:
//! 0 ok, 1 init refused or failed, 2 usage error, 3 cannot reach init.
use crate::initctl::protocol::{Request, COMMANDS};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

fn usage() -> String {
    let mut s = String::from("usage: initctl COMMAND [SERVICE]\n\ncommands:\n");
    s.push_str("  attest --nonce HEX [-o FILE]  write an attestation report (TPM quote, event log, manifest)\n");
    for (cmd, arg, help) in COMMANDS {
        s.push_str(&format!("  {:<22} {help}\n", format!("{cmd} {arg}")));
    }
    s
}

pub fn main(args: &[String]) -> i32 {
    if args.is_empty() || args.iter().any(|a| a == "-h" || a == "--help") {
        eprint!("{}", usage());
        return if args.is_empty() { 2 } else { 0 };
    }
    if args.first().map(String::as_str) == Some("attest") {
        return crate::measure::attest::main(args.get(1..).unwrap_or(&[]));
    }
    let request = match Request::parse(args) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("initctl: {e}\n\n{}", usage());
            return 2;
        }
    };
    let path = std::env::var("INITCTL_SOCKET")
        .unwrap_or_else(|_| azl_formats::paths::CONTROL_SOCKET.to_string());
    let mut stream = match UnixStream::connect(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("initctl: cannot reach init at {path}: {e}");
            return 3;
        }
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    if let Err(e) = stream.write_all(format!("{}\n", request.to_line()).as_bytes()) {
        eprintln!("initctl: cannot send request: {e}");
        return 3;
    }
    let mut answer = String::new();
    if let Err(e) = stream.read_to_string(&mut answer) {
        eprintln!("initctl: no answer from init: {e}");
        return 3;
    }
    let (first, rest) = answer.split_once('\n').unwrap_or((answer.as_str(), ""));
    if first == "ok" {
        print!("{rest}");
        0
    } else if let Some(reason) = first.strip_prefix("error: ") {
        eprintln!("initctl: {reason}");
        1
    } else {
        eprintln!("initctl: unexpected answer from init: {first:?}");
        3
    }
}
