//! A private swtpm driven by tpm2-tools, for the attestation tests and the
//! benchmark: makes real quotes on the host. Not used by `imagegen` itself.
//!
//! swtpm listens on a Unix socket in a temporary directory (the
//! `swtpm:path=` TCTI expects the control socket at `<path>.ctrl`); every
//! tool runs with `TPM2TOOLS_TCTI` pointing there, and transient objects
//! are flushed after each command (there is no resource manager).
use azl_formats::manifest::Digest;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Swtpm {
    child: Child,
    dir: tempfile::TempDir,
    tcti: String,
}

impl Swtpm {
    /// Are swtpm and the tpm2-tools this helper uses installed?
    pub fn available() -> bool {
        [
            "swtpm",
            "tpm2_startup",
            "tpm2_createprimary",
            "tpm2_quote",
            "tpm2_pcrextend",
            "tpm2_sign",
        ]
        .iter()
        .all(|t| which::which(t).is_ok())
    }

    /// Start swtpm and run TPM2_Startup(CLEAR).
    pub fn start() -> Result<Swtpm, String> {
        let dir = tempfile::Builder::new()
            .prefix("azl-attest-swtpm-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let sock = dir.path().join("tpm");
        let ctrl = dir.path().join("tpm.ctrl");
        let child = Command::new("swtpm")
            .args(["socket", "--tpm2", "--flags", "not-need-init", "--tpmstate"])
            .arg(format!("dir={}", dir.path().display()))
            .arg("--server")
            .arg(format!("type=unixio,path={}", sock.display()))
            .arg("--ctrl")
            .arg(format!("type=unixio,path={}", ctrl.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // swtpm logs every client disconnect on stderr.
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting swtpm: {e}"))?;
        let mut tpm = Swtpm {
            child,
            tcti: format!("swtpm:path={}", sock.display()),
            dir,
        };
        let start = Instant::now();
        while !(sock.exists() && ctrl.exists()) {
            if let Ok(Some(st)) = tpm.child.try_wait() {
                return Err(format!("swtpm exited at startup ({st})"));
            }
            if start.elapsed() > Duration::from_secs(10) {
                return Err("swtpm did not create its sockets within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        tpm.run("tpm2_startup", &["-c"])?;
        Ok(tpm)
    }

    /// A file in the TPM's scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Run a tpm2-tools command against this TPM; stdout on success.
    pub fn run(&self, tool: &str, args: &[&str]) -> Result<Vec<u8>, String> {
        let out = Command::new(tool)
            .args(args)
            .env("TPM2TOOLS_TCTI", &self.tcti)
            .current_dir(self.dir.path())
            .output()
            .map_err(|e| format!("{tool}: {e}"))?;
        // No resource manager: flush what the tool left loaded.
        if tool != "tpm2_flushcontext" && tool != "tpm2_startup" {
            let _ = Command::new("tpm2_flushcontext")
                .arg("-t")
                .env("TPM2TOOLS_TCTI", &self.tcti)
                .output();
        }
        if !out.status.success() {
            return Err(format!(
                "{tool} {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(out.stdout)
    }

    fn read(&self, name: &str) -> Result<Vec<u8>, String> {
        std::fs::read(self.path(name)).map_err(|e| format!("reading {name}: {e}"))
    }

    /// CreatePrimary an ECC P-256 ECDSA-SHA256 key under `hierarchy`
    /// (`e`, `o`) with `attrs` (tpm2-tools syntax); saves `<name>.ctx` and
    /// returns its TPM2B_PUBLIC.
    pub fn create_key(&self, name: &str, hierarchy: &str, attrs: &str) -> Result<Vec<u8>, String> {
        let ctx = format!("{name}.ctx");
        let public = format!("{name}.pub");
        self.run(
            "tpm2_createprimary",
            &[
                "-C",
                hierarchy,
                "-G",
                "ecc256:ecdsa-sha256:null",
                "-a",
                attrs,
                "-c",
                &ctx,
            ],
        )?;
        self.run("tpm2_readpublic", &["-c", &ctx, "-o", &public])?;
        self.read(&public)
    }

    /// A restricted signing AK in the endorsement hierarchy (as init makes).
    pub fn create_ak(&self, name: &str) -> Result<Vec<u8>, String> {
        self.create_key(
            name,
            "e",
            "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign",
        )
    }

    /// TPM2_PCR_Extend of the SHA-256 bank.
    pub fn extend(&self, pcr: u8, digest: &Digest) -> Result<(), String> {
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        self.run("tpm2_pcrextend", &[&format!("{pcr}:sha256={hex}")])?;
        Ok(())
    }

    /// SHA-256 values of `pcrs` (ascending) as the TPM has them.
    pub fn read_pcrs(&self, pcrs: &[u8]) -> Result<Vec<(u8, Digest)>, String> {
        let list: Vec<String> = pcrs.iter().map(u8::to_string).collect();
        self.run(
            "tpm2_pcrread",
            &[&format!("sha256:{}", list.join(",")), "-o", "pcrs.bin"],
        )?;
        let raw = self.read("pcrs.bin")?;
        if raw.len() != 32 * pcrs.len() {
            return Err(format!("tpm2_pcrread wrote {} bytes", raw.len()));
        }
        Ok(pcrs
            .iter()
            .zip(raw.chunks_exact(32))
            .map(|(&p, v)| {
                let mut d = [0u8; 32];
                d.copy_from_slice(v);
                (p, d)
            })
            .collect())
    }

    /// TPM2_Quote with key `name` over `selection` (tpm2-tools syntax, e.g.
    /// `sha256:8,9,11`): (TPMS_ATTEST bytes, TPMT_SIGNATURE). The files
    /// `<out>.msg`, `<out>.sig` and `<out>.pcrs` stay for tpm2_checkquote.
    pub fn quote(
        &self,
        name: &str,
        selection: &str,
        nonce: &[u8],
        out: &str,
    ) -> Result<(Vec<u8>, Vec<u8>), String> {
        let hex: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
        let (msg, sig, pcrs) = (
            format!("{out}.msg"),
            format!("{out}.sig"),
            format!("{out}.pcrs"),
        );
        let ctx = format!("{name}.ctx");
        // swtpm may answer TPM_RC_RETRY; tpm2-tools retries internally, but
        // try the command again if it still fails once.
        let args = [
            "-c", &ctx, "-l", selection, "-q", &hex, "-g", "sha256", "-m", &msg, "-s", &sig, "-o",
            &pcrs,
        ];
        if self.run("tpm2_quote", &args).is_err() {
            self.run("tpm2_quote", &args)?;
        }
        Ok((self.read(&msg)?, self.read(&sig)?))
    }

    /// TPM2_Sign of `message` with key `name` (the tool hashes it in the
    /// TPM, which refuses for restricted keys when `message` starts with
    /// TPM_GENERATED_VALUE): the TPMT_SIGNATURE.
    pub fn sign(&self, name: &str, message: &[u8]) -> Result<Vec<u8>, String> {
        std::fs::write(self.path("to-sign.bin"), message).map_err(|e| e.to_string())?;
        self.run(
            "tpm2_sign",
            &[
                "-c",
                &format!("{name}.ctx"),
                "-g",
                "sha256",
                "-s",
                "ecdsa",
                "-o",
                "signed.sig",
                "to-sign.bin",
            ],
        )?;
        self.read("signed.sig")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
