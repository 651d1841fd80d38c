//! swtpm's raw TPM command socket (`swtpm socket --tpm2 --server
//! type=unixio,path=P`): the same one-command/one-response exchange as the
//! kernel device, over a Unix stream. The host tests use it; swtpm's
//! `--ctrl` channel is not needed when swtpm runs with
//! `--flags not-need-init`.
use super::{TpmError, Transport};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

pub struct SocketTransport {
    stream: UnixStream,
}

impl SocketTransport {
    pub fn connect(path: &Path) -> Result<SocketTransport, TpmError> {
        let stream =
            UnixStream::connect(path).map_err(|err| TpmError::Io { op: "connect", err })?;
        let t = Some(super::device::DEFAULT_TIMEOUT);
        stream
            .set_read_timeout(t)
            .and_then(|()| stream.set_write_timeout(t))
            .map_err(|err| TpmError::Io {
                op: "set timeout",
                err,
            })?;
        Ok(SocketTransport { stream })
    }

    pub fn set_timeout(&mut self, timeout: Duration) -> Result<(), TpmError> {
        self.stream
            .set_read_timeout(Some(timeout))
            .map_err(|err| TpmError::Io {
                op: "set timeout",
                err,
            })
    }
}

fn io(op: &'static str) -> impl Fn(std::io::Error) -> TpmError {
    move |err| match err.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => TpmError::Timeout { op },
        _ => TpmError::Io { op, err },
    }
}

impl Transport for SocketTransport {
    fn transact(&mut self, cmd: &[u8]) -> Result<Vec<u8>, TpmError> {
        self.stream.write_all(cmd).map_err(io("write"))?;
        let mut header = [0u8; 10];
        self.stream.read_exact(&mut header).map_err(io("read"))?;
        let size = super::device::header_size(&header).unwrap_or(0);
        if !(10..=4096).contains(&size) {
            return Err(TpmError::Transport(format!("bad response size {size}")));
        }
        let mut resp = vec![0u8; size];
        if let Some(h) = resp.get_mut(..10) {
            h.copy_from_slice(&header);
        }
        self.stream
            .read_exact(resp.get_mut(10..).unwrap_or(&mut []))
            .map_err(io("read"))?;
        Ok(resp)
    }
}
