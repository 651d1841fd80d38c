//! The control socket server inside PID 1: accepts `initctl` connections
//! without ever blocking the main loop (non-blocking sockets, a request
//! must arrive within a second), checks the peer's credentials and hands
//! parsed requests to the caller.
use crate::initctl::protocol::{self, Request};
use crate::pid1::poller::{Poller, Token};
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

const MAX_REQUEST: usize = 256;
const MAX_CONNS: usize = 16;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);

struct Conn {
    stream: UnixStream,
    buf: Vec<u8>,
    uid: u32,
    opened: Instant,
}

pub struct Control {
    listener: UnixListener,
    conns: Vec<Option<Conn>>,
}

/// A request that arrived, with the connection to answer on.
pub struct Pending {
    pub request: Request,
    stream: UnixStream,
}

impl Pending {
    pub fn answer(mut self, result: Result<String, String>) {
        let _ = self.stream.set_nonblocking(false);
        let _ = self
            .stream
            .set_write_timeout(Some(Duration::from_millis(500)));
        let _ = self
            .stream
            .write_all(protocol::response(&result).as_bytes());
    }
}

impl Control {
    pub fn bind(path: &str, poller: &Poller) -> std::io::Result<Control> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        poller.add(listener.as_fd(), Token::Listener);
        Ok(Control {
            listener,
            conns: Vec::new(),
        })
    }

    pub fn on_listener(&mut self, poller: &Poller) {
        while let Ok((stream, _)) = self.listener.accept() {
            let uid = getsockopt(&stream, PeerCredentials)
                .map(|c| c.uid())
                .unwrap_or(u32::MAX);
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let slot = match self.conns.iter().position(Option::is_none) {
                Some(s) => s,
                None if self.conns.len() < MAX_CONNS => {
                    self.conns.push(None);
                    self.conns.len() - 1
                }
                None => {
                    log::warn!("control: too many connections, refusing one");
                    continue;
                }
            };
            poller.add(
                stream.as_fd(),
                Token::Conn(u32::try_from(slot).unwrap_or(u32::MAX)),
            );
            if let Some(c) = self.conns.get_mut(slot) {
                *c = Some(Conn {
                    stream,
                    buf: Vec::new(),
                    uid,
                    opened: Instant::now(),
                });
            }
        }
    }

    /// A connection is readable: returns a complete request, if any. Bad
    /// requests are answered here.
    pub fn on_conn(&mut self, slot: u32, poller: &Poller) -> Option<Pending> {
        let entry = self.conns.get_mut(slot as usize)?;
        let conn = entry.as_mut()?;
        let mut chunk = [0u8; 128];
        let done = loop {
            match conn.stream.read(&mut chunk) {
                Ok(0) => break true,
                Ok(n) => {
                    conn.buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
                    if conn.buf.contains(&b'\n') || conn.buf.len() > MAX_REQUEST {
                        break true;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break false,
                Err(_) => break true,
            }
        };
        if !done {
            return None;
        }
        let conn = entry.take()?;
        poller.remove(conn.stream.as_fd());
        let line = String::from_utf8_lossy(&conn.buf);
        let words: Vec<&str> = line.split_whitespace().collect();
        let pending = |request| Pending {
            request,
            stream: conn.stream,
        };
        match Request::parse(&words) {
            Ok(r) if !r.read_only() && conn.uid != 0 => {
                pending(r).answer(Err("permission denied: only root may do that".into()));
                None
            }
            Ok(r) => Some(pending(r)),
            Err(e) => {
                pending(Request::Status).answer(Err(e.0));
                None
            }
        }
    }

    /// Drop connections that sent no complete request in time.
    pub fn expire(&mut self, poller: &Poller, now: Instant) {
        for entry in &mut self.conns {
            if entry
                .as_ref()
                .is_some_and(|c| now.saturating_duration_since(c.opened) > REQUEST_TIMEOUT)
            {
                if let Some(c) = entry.take() {
                    poller.remove(c.stream.as_fd());
                }
            }
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.conns
            .iter()
            .flatten()
            .map(|c| c.opened + REQUEST_TIMEOUT)
            .min()
    }
}
