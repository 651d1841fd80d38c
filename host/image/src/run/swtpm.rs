//! A software TPM (swtpm) for one QEMU run. Its state lives in the output
//! directory (`OUT/tpm/`), so like a real device's TPM it keeps its seeds —
//! and therefore its attestation key — from one boot to the next; delete the
//! directory for a factory-fresh TPM. The control socket is in a private
//! temporary directory (unix socket paths are short). swtpm is waited for
//! until its socket exists and stopped when dropped; `--terminate` makes it
//! exit by itself when QEMU disconnects, should imagegen be killed first.
use super::RunError;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long swtpm gets to create its socket.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Swtpm {
    child: Child,
    socket: PathBuf,
    // Removed on drop, after the child is gone.
    _sockdir: tempfile::TempDir,
}

impl Swtpm {
    pub fn start(program: &Path, state: &Path) -> Result<Self, RunError> {
        std::fs::create_dir_all(state).map_err(|source| RunError::Io {
            what: format!("creating the TPM state directory {}", state.display()),
            source,
        })?;
        let sockdir = tempfile::Builder::new()
            .prefix("azl-swtpm-")
            .tempdir()
            .map_err(|source| RunError::Io {
                what: "creating the swtpm socket directory".into(),
                source,
            })?;
        let socket = sockdir.path().join("sock");
        let mut cmd = Command::new(program);
        cmd.args(["socket", "--tpm2", "--terminate", "--tpmstate"])
            .arg(format!("dir={}", state.display()))
            .arg("--ctrl")
            .arg(format!("type=unixio,path={}", socket.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let child = cmd.spawn().map_err(|source| RunError::Spawn {
            program: program.into(),
            source,
        })?;
        let mut tpm = Self {
            child,
            socket,
            _sockdir: sockdir,
        };
        tpm.wait_ready()?;
        Ok(tpm)
    }

    fn wait_ready(&mut self) -> Result<(), RunError> {
        let start = Instant::now();
        while !self.socket.exists() {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(RunError::Swtpm(format!(
                    "swtpm exited at startup ({status})"
                )));
            }
            if start.elapsed() > STARTUP_TIMEOUT {
                return Err(RunError::Swtpm(format!(
                    "swtpm did not create {} within {} s",
                    self.socket.display(),
                    STARTUP_TIMEOUT.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = super::process::terminate(&self.child);
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
