//! The output directory of `imagegen build`, and the names `imagegen run`
//! reads back: each file is written to a temporary name and renamed into
//! place, so an interrupted build never leaves a half-written file behind
//! under its real name.
use std::path::{Path, PathBuf};

pub const KERNEL: &str = "kernel";
pub const INITRAMFS: &str = "initramfs.cpio.gz";
pub const CMDLINE: &str = "cmdline";
pub const BOARD: &str = "board.toml";
pub const BOOT_CFG: &str = "boot.cfg";
pub const SERVICES: &str = "services.tbl";
/// The verified disk image (`[image] root = "disk"`).
pub const DISK: &str = "disk.img";
/// The signed manifest envelope, as stored in the root slot.
pub const MANIFEST: &str = "manifest.bin";
/// `imagegen run --tpm`: the software TPM's persistent state (not a build output).
pub const TPM_STATE: &str = "tpm";
/// The raw Ed25519 public key the image trusts (signed builds only).
pub const PUBLIC_KEY: &str = "manifest.pub";

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("creating output directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("copying {from} to {to}: {source}")]
    Copy {
        from: PathBuf,
        to: PathBuf,
        source: std::io::Error,
    },
}

/// What goes into the output directory.
#[derive(Debug)]
pub struct Output<'a> {
    pub kernel: &'a Path,
    pub initramfs: &'a [u8],
    /// Without the trailing newline.
    pub cmdline: &'a str,
    pub board_toml: &'a str,
    pub boot_cfg: &'a [u8],
    pub services_tbl: &'a [u8],
}

fn tmp_name(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.tmp.{}", std::process::id()))
}

pub fn put(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), OutputError> {
    let tmp = tmp_name(dir, name);
    let dst = dir.join(name);
    let res = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, &dst));
    res.map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        OutputError::Write { path: dst, source }
    })
}

/// Write everything into `dir` (created if needed).
pub fn write(dir: &Path, o: &Output) -> Result<(), OutputError> {
    std::fs::create_dir_all(dir).map_err(|source| OutputError::CreateDir {
        path: dir.into(),
        source,
    })?;
    let tmp = tmp_name(dir, KERNEL);
    let dst = dir.join(KERNEL);
    std::fs::copy(o.kernel, &tmp)
        .and_then(|_| std::fs::rename(&tmp, &dst))
        .map_err(|source| {
            let _ = std::fs::remove_file(&tmp);
            OutputError::Copy {
                from: o.kernel.into(),
                to: dst,
                source,
            }
        })?;
    put(dir, INITRAMFS, o.initramfs)?;
    put(dir, CMDLINE, format!("{}\n", o.cmdline).as_bytes())?;
    put(dir, BOARD, o.board_toml.as_bytes())?;
    put(dir, BOOT_CFG, o.boot_cfg)?;
    put(dir, SERVICES, o.services_tbl)?;
    Ok(())
}

/// Remove a file a previous build left that this build does not produce.
pub fn remove(dir: &Path, name: &str) -> Result<(), OutputError> {
    let path = dir.join(name);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(OutputError::Write { path, source: e })
        }
        _ => Ok(()),
    }
}
