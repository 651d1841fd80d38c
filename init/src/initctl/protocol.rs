//! The control protocol between `initctl` and PID 1, over the unix stream
//! socket `/run/initctl.sock`: the client sends one request line, the server
//! answers `ok` or `error: <reason>` on the first line, then any output, and
//! closes the connection.
//!
//! ```text
//! > restart hello\n
//! < ok\n
//! < restarting hello\n
//! ```
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Status,
    Start(String),
    Stop(String),
    Restart(String),
    Reboot,
    Poweroff,
    /// Stop the main loop so the hardware watchdog must reset the board
    /// (board bring-up: prove the watchdog works).
    WatchdogTest,
    Version,
    /// Hand the approval `update approve` checked and left in
    /// `/run/azl-edge/approval.bin` to the trial's gate (policy attested).
    Approve,
}

/// Commands, with their argument and help text, for the client's usage.
pub const COMMANDS: &[(&str, &str, &str)] = &[
    ("status", "", "list services and their state"),
    ("start", "SERVICE", "start a stopped or failed service"),
    ("stop", "SERVICE", "stop a service (it stays stopped)"),
    ("restart", "SERVICE", "stop, then start a service"),
    ("reboot", "", "orderly reboot"),
    ("poweroff", "", "orderly power off"),
    (
        "watchdog-test",
        "",
        "wedge init's main loop: the watchdog must reset the board",
    ),
    ("version", "", "print init's version"),
    (
        "approve",
        "",
        "hand the checked approval to the trial's gate (`update approve FILE` does this)",
    ),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Request {
    /// Parse from words (`["restart", "hello"]`).
    pub fn parse<S: AsRef<str>>(words: &[S]) -> Result<Request, ParseError> {
        let mut it = words.iter().map(|w| w.as_ref());
        let cmd = it
            .next()
            .ok_or_else(|| ParseError("missing command".into()))?;
        let arg = it.next();
        if let Some(extra) = it.next() {
            return Err(ParseError(format!("unexpected argument {extra:?}")));
        }
        let need = |a: Option<&str>| {
            a.filter(|s| azl_formats::valid_name(s))
                .map(str::to_string)
                .ok_or_else(|| ParseError(format!("{cmd} needs a service name")))
        };
        let none = |r: Request| match arg {
            Some(a) => Err(ParseError(format!("{cmd} takes no argument (got {a:?})"))),
            None => Ok(r),
        };
        match cmd {
            "status" => none(Request::Status),
            "start" => Ok(Request::Start(need(arg)?)),
            "stop" => Ok(Request::Stop(need(arg)?)),
            "restart" => Ok(Request::Restart(need(arg)?)),
            "reboot" => none(Request::Reboot),
            "poweroff" => none(Request::Poweroff),
            "watchdog-test" => none(Request::WatchdogTest),
            "version" => none(Request::Version),
            "approve" => none(Request::Approve),
            other => Err(ParseError(format!("unknown command {other:?}"))),
        }
    }

    /// The wire form (one line, no newline).
    pub fn to_line(&self) -> String {
        match self {
            Request::Status => "status".into(),
            Request::Start(s) => format!("start {s}"),
            Request::Stop(s) => format!("stop {s}"),
            Request::Restart(s) => format!("restart {s}"),
            Request::Reboot => "reboot".into(),
            Request::Poweroff => "poweroff".into(),
            Request::WatchdogTest => "watchdog-test".into(),
            Request::Version => "version".into(),
            Request::Approve => "approve".into(),
        }
    }

    /// Only `status` and `version` are allowed to non-root peers.
    pub fn read_only(&self) -> bool {
        matches!(self, Request::Status | Request::Version)
    }
}

/// Format a response.
pub fn response(result: &Result<String, String>) -> String {
    match result {
        Ok(body) if body.is_empty() => "ok\n".into(),
        Ok(body) => format!(
            "ok\n{}{}",
            body,
            if body.ends_with('\n') { "" } else { "\n" }
        ),
        Err(e) => format!("error: {e}\n"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parse_roundtrip() {
        for r in [
            Request::Status,
            Request::Start("a".into()),
            Request::Stop("b-c".into()),
            Request::Restart("x".into()),
            Request::Reboot,
            Request::Poweroff,
            Request::WatchdogTest,
            Request::Version,
            Request::Approve,
        ] {
            let line = r.to_line();
            let words: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(Request::parse(&words).unwrap(), r);
        }
    }

    #[test]
    fn parse_errors() {
        assert!(Request::parse::<&str>(&[]).is_err());
        assert!(Request::parse(&["start"])
            .unwrap_err()
            .0
            .contains("needs a service name"));
        assert!(Request::parse(&["start", "../x"]).is_err());
        assert!(Request::parse(&["status", "x"]).is_err());
        assert!(Request::parse(&["frobnicate"])
            .unwrap_err()
            .0
            .contains("unknown command"));
        assert!(Request::parse(&["stop", "a", "b"]).is_err());
    }

    #[test]
    fn responses() {
        assert_eq!(response(&Ok(String::new())), "ok\n");
        assert_eq!(response(&Ok("x".into())), "ok\nx\n");
        assert_eq!(response(&Err("bad".into())), "error: bad\n");
    }
}
