//! The device's side of an approval (policy `attested`): reading one
//! (size-capped, a regular file or stdin), what the device knows to check
//! it against (the running trial's verifier key and manifest digest, the
//! quotes answered this boot), and the one check both `update approve`
//! and PID 1's gate run ([`azl_formats::approval::check`]).
use azl_formats::approval::{self, Answer, ApprovalError, Body, Expect};
use azl_formats::manifest::Digest;
use azl_formats::paths;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;

/// Why an approval could not be read.
#[derive(Debug)]
pub enum ReadError {
    Io { path: String, err: std::io::Error },
    NotRegular { path: String },
    TooLarge { path: String },
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io { path, err } => write!(f, "{path}: {err}"),
            Self::NotRegular { path } => {
                write!(f, "{path}: not a regular file (use `-` for stdin)")
            }
            Self::TooLarge { path } => write!(
                f,
                "{path}: more than {} bytes: not an approval",
                approval::MAX_LEN
            ),
        }
    }
}

/// Read at most [`approval::MAX_LEN`] bytes (one more is an error).
fn capped(mut r: impl Read, path: &str) -> Result<Vec<u8>, ReadError> {
    let mut buf = Vec::new();
    r.by_ref()
        .take(approval::MAX_LEN as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|err| ReadError::Io {
            path: path.into(),
            err,
        })?;
    if buf.len() > approval::MAX_LEN {
        return Err(ReadError::TooLarge { path: path.into() });
    }
    Ok(buf)
}

/// The approval at `arg` (`-`: stdin). A FIFO or device is refused
/// before it is read (opened non-blocking, so a FIFO cannot hang it).
pub fn read(arg: &str) -> Result<Vec<u8>, ReadError> {
    if arg == "-" {
        return capped(std::io::stdin().lock(), "stdin");
    }
    let io = |err| ReadError::Io {
        path: arg.into(),
        err,
    };
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(arg)
        .map_err(io)?;
    if !f.metadata().map_err(io)?.file_type().is_file() {
        return Err(ReadError::NotRegular { path: arg.into() });
    }
    capped(f, arg)
}

/// The quotes `initctl attest` answered during this boot (none if the
/// record is missing or unreadable).
pub fn answered() -> Vec<Answer> {
    match std::fs::read(paths::ATTEST_ANSWERS) {
        Ok(text) => approval::parse_answers(&text),
        Err(_) => Vec::new(),
    }
}

/// The device's check of `bytes` for the trial that runs `manifest_sha256`
/// under `verifier_key`.
pub fn check(
    bytes: &[u8],
    verifier_key: &[u8; 32],
    manifest_sha256: &Digest,
) -> Result<Body, ApprovalError> {
    let answered = answered();
    approval::check(
        bytes,
        &Expect {
            verifier_key,
            manifest_sha256,
            answered: &answered,
        },
    )
}

/// Record a quote `initctl attest` answered: appended to
/// [`paths::ATTEST_ANSWERS`] (on /run, so gone at the next boot).
pub fn record_answer(nonce: &[u8], ak_public: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(paths::RUN_DIR)?;
    let line = approval::answer_line(nonce, &azl_formats::sha256(ak_public));
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(paths::ATTEST_ANSWERS)?
        .write_all(line.as_bytes())
}

/// Leave a checked approval for PID 1's gate (temporary file + rename).
pub fn hand_over(bytes: &[u8]) -> std::io::Result<()> {
    let tmp = format!("{}.tmp", paths::APPROVAL);
    std::fs::create_dir_all(paths::RUN_DIR)?;
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, paths::APPROVAL)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_capped_and_typed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a");
        std::fs::write(&p, [1u8; 100]).unwrap();
        assert_eq!(read(p.to_str().unwrap()).unwrap().len(), 100);
        std::fs::write(&p, vec![1u8; approval::MAX_LEN + 1]).unwrap();
        assert!(matches!(
            read(p.to_str().unwrap()),
            Err(ReadError::TooLarge { .. })
        ));
        assert!(matches!(
            read(dir.path().to_str().unwrap()),
            Err(ReadError::NotRegular { .. })
        ));
        assert!(matches!(
            read("/dev/zero"),
            Err(ReadError::NotRegular { .. })
        ));
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(matches!(
            read(fifo.to_str().unwrap()),
            Err(ReadError::NotRegular { .. })
        ));
        assert!(matches!(read("/nonexistent"), Err(ReadError::Io { .. })));
    }
}
