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
    match send(&request) {
        Ok(Ok(body)) => {
            print!("{body}");
            0
        }
        Ok(Err(reason)) => {
            eprintln!("initctl: {reason}");
            1
        }
        Err(e) => {
            eprintln!("initctl: {e}");
            3
        }
    }
}

/// Send one request to the running PID 1: `Ok(Ok(output))` when it did
/// it, `Ok(Err(reason))` when it refused, `Err` when it cannot be reached
/// or answered nonsense.
pub fn send(request: &Request) -> Result<Result<String, String>, String> {
    let path = std::env::var("INITCTL_SOCKET")
        .unwrap_or_else(|_| azl_formats::paths::CONTROL_SOCKET.to_string());
    let mut stream =
        UnixStream::connect(&path).map_err(|e| format!("cannot reach init at {path}: {e}"))?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    stream
        .write_all(format!("{}\n", request.to_line()).as_bytes())
        .map_err(|e| format!("cannot send request: {e}"))?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| format!("no answer from init: {e}"))?;
    let (first, rest) = answer.split_once('\n').unwrap_or((answer.as_str(), ""));
    if first == "ok" {
        Ok(Ok(rest.to_string()))
    } else if let Some(reason) = first.strip_prefix("error: ") {
        Ok(Err(reason.to_string()))
    } else {
        Err(format!("unexpected answer from init: {first:?}"))
    }
}
