//! The kernel TPM character device: `/dev/tpmrm0` (resource-managed, so
//! transient objects and sessions are cleaned up when the fd closes) or
//! `/dev/tpm0`. Protocol: write one whole command, read one whole response.
use super::{TpmError, Transport};
use nix::poll::{poll, PollFd, PollFlags};
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

/// Device nodes tried by [`open_default`], in order.
pub const DEVICE_NODES: [&str; 2] = ["/dev/tpmrm0", "/dev/tpm0"];
/// How long one command may take before PID 1 gives up on the TPM. Slow
/// TPMs need a few seconds for key generation; 30 s is generous.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response the kernel hands out (TPM_BUFSIZE).
const MAX_RESPONSE: usize = 4096;

pub struct DeviceTransport {
    file: File,
    timeout: Duration,
}

impl DeviceTransport {
    pub fn open(path: &Path) -> Result<DeviceTransport, TpmError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|err| TpmError::Io { op: "open", err })?;
        Ok(DeviceTransport {
            file,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// The kernel TPM device, if the kernel has a TPM driver bound: tries
/// `/dev/tpmrm0` then `/dev/tpm0`; `None` if neither exists. A node that
/// exists but cannot be opened (busy, permissions) is reported through the
/// log and skipped.
pub fn open_default() -> Option<(&'static str, DeviceTransport)> {
    for node in DEVICE_NODES {
        let path = Path::new(node);
        if !path.exists() {
            continue;
        }
        match DeviceTransport::open(path) {
            Ok(t) => return Some((node, t)),
            Err(e) => log::warn!("{node}: {e}"),
        }
    }
    None
}

impl Transport for DeviceTransport {
    fn transact(&mut self, cmd: &[u8]) -> Result<Vec<u8>, TpmError> {
        // The driver takes the command in one write().
        loop {
            match self.file.write(cmd) {
                Ok(n) if n == cmd.len() => break,
                Ok(n) => {
                    return Err(TpmError::Transport(format!(
                        "short write to TPM device ({n} of {} bytes)",
                        cmd.len()
                    )))
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(err) => return Err(TpmError::Io { op: "write", err }),
            }
        }
        let deadline = Instant::now() + self.timeout;
        let mut resp = vec![0u8; MAX_RESPONSE];
        let mut len = 0usize;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(TpmError::Timeout { op: "read" });
            }
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(self.file.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, ms) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    return Err(TpmError::Io {
                        op: "poll",
                        err: e.into(),
                    })
                }
            }
            let buf = resp.get_mut(len..).unwrap_or(&mut []);
            if buf.is_empty() {
                return Err(TpmError::Transport(
                    "response larger than 4096 bytes".into(),
                ));
            }
            match self.file.read(buf) {
                Ok(0) => {
                    return Err(TpmError::Transport(format!(
                        "TPM device returned end of file after {len} bytes"
                    )))
                }
                Ok(n) => len += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(err) => return Err(TpmError::Io { op: "read", err }),
            }
            // Normally the whole response arrives in one read; keep reading
            // only until the header's size is satisfied.
            if let Some(size) = header_size(resp.get(..len).unwrap_or(&[])) {
                if len >= size {
                    resp.truncate(len);
                    return Ok(resp);
                }
            }
        }
    }
}

/// The responseSize field of a response header, once 6 bytes are in.
pub(crate) fn header_size(buf: &[u8]) -> Option<usize> {
    match buf {
        [_, _, a, b, c, d, ..] => usize::try_from(u32::from_be_bytes([*a, *b, *c, *d])).ok(),
        _ => None,
    }
}
