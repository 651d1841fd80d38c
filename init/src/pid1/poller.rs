//! The main loop's readiness source: one epoll instance, with each
//! registered fd tagged by a [`Token`] that says what it is.
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token {
    Signal,
    Listener,
    Conn(u32),
    Output(u32),
    Notify(u32),
    Exec(u32),
    /// Output of the trial boot's health check.
    Check,
}

impl Token {
    fn encode(self) -> u64 {
        let (kind, idx) = match self {
            Token::Signal => (1u64, 0u32),
            Token::Listener => (2, 0),
            Token::Conn(i) => (3, i),
            Token::Output(i) => (4, i),
            Token::Notify(i) => (5, i),
            Token::Exec(i) => (6, i),
            Token::Check => (7, 0),
        };
        (kind << 32) | u64::from(idx)
    }

    fn decode(v: u64) -> Option<Token> {
        let idx = (v & 0xffff_ffff) as u32;
        Some(match v >> 32 {
            1 => Token::Signal,
            2 => Token::Listener,
            3 => Token::Conn(idx),
            4 => Token::Output(idx),
            5 => Token::Notify(idx),
            6 => Token::Exec(idx),
            7 => Token::Check,
            _ => return None,
        })
    }
}

pub struct Poller {
    epoll: Epoll,
}

impl Poller {
    pub fn new() -> nix::Result<Poller> {
        Ok(Poller {
            epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?,
        })
    }

    pub fn add(&self, fd: impl AsFd, token: Token) {
        let ev = EpollEvent::new(EpollFlags::EPOLLIN, token.encode());
        if let Err(e) = self.epoll.add(fd, ev) {
            log::error!("epoll add {token:?}: {}", e.desc());
        }
    }

    pub fn remove(&self, fd: impl AsFd) {
        let _ = self.epoll.delete(fd);
    }

    /// Wait until something is ready or `deadline` passes; returns the
    /// ready tokens (possibly none).
    pub fn wait(&self, deadline: Option<Instant>) -> Vec<Token> {
        let timeout = match deadline {
            None => EpollTimeout::NONE,
            Some(d) => {
                let ms = d.saturating_duration_since(Instant::now()).as_millis();
                // Round up so we do not spin just before a deadline.
                let ms = u16::try_from(ms.saturating_add(1)).unwrap_or(u16::MAX);
                EpollTimeout::from(ms)
            }
        };
        let mut events = [EpollEvent::empty(); 32];
        match self.epoll.wait(&mut events, timeout) {
            Ok(n) => events
                .iter()
                .take(n)
                .filter_map(|e| Token::decode(e.data()))
                .collect(),
            Err(nix::errno::Errno::EINTR) => Vec::new(),
            Err(e) => {
                log::error!("epoll wait: {}", e.desc());
                std::thread::sleep(Duration::from_millis(100));
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_roundtrip() {
        for t in [
            Token::Signal,
            Token::Listener,
            Token::Conn(7),
            Token::Output(0),
            Token::Notify(u32::MAX),
            Token::Check,
        ] {
            assert_eq!(Token::decode(t.encode()), Some(t));
        }
        assert_eq!(Token::decode(0), None);
    }
}
