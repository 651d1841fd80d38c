//! The output directory of `imagegen build`, and the names `imagegen run`
//! reads back: each file is written to a temporary name and renamed into
//! place, so an interrupted build never leaves a half-written file behind
//! under its real name.
//!
//! The output directory may hold files someone else planted. Temporary
//! files are therefore created exclusively (`O_EXCL` under an unpredictable
//! name, via `tempfile`), never by opening a path that could already be a
//! symlink, and the final name is only ever replaced by `rename`, which
//! swaps out a symlink found there instead of writing through it.
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

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
/// UEFI boards: the firmware's variable store (a copy of the AAVMF vars
/// template made by the first `imagegen run`, kept so boot entries persist).
pub const EFI_VARS: &str = "efi-vars.fd";
/// The raw Ed25519 public key the image trusts (signed builds only).
pub const PUBLIC_KEY: &str = "manifest.pub";

/// Mode of every file the build writes (before the umask), as `fs::write` had.
const FILE_MODE: u32 = 0o644;

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

/// A new, exclusively created temporary file in `dir` for `name`.
fn temp_for(dir: &Path, name: &str) -> std::io::Result<NamedTempFile> {
    tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(FILE_MODE))
        .tempfile_in(dir)
}

/// Sync `tmp` and rename it over `dst` (replacing whatever is there,
/// a symlink included, without following it). On error the temporary
/// file is removed when `tmp` is dropped.
fn commit(tmp: NamedTempFile, dst: &Path) -> std::io::Result<()> {
    tmp.as_file().sync_all()?;
    tmp.persist(dst).map(drop).map_err(|e| e.error)
}

pub fn put(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), OutputError> {
    put_parts(dir, name, &[bytes])
}

/// Write `dir/name` as the concatenation of `parts`, the same way as [`put`].
fn put_parts(dir: &Path, name: &str, parts: &[&[u8]]) -> Result<(), OutputError> {
    let dst = dir.join(name);
    temp_for(dir, name)
        .and_then(|mut tmp| {
            for p in parts {
                tmp.write_all(p)?;
            }
            commit(tmp, &dst)
        })
        .map_err(|source| OutputError::Write { path: dst, source })
}

/// Write the file `path` (a name the user gave, e.g. `imagegen bundle -o`)
/// as the concatenation of `parts`, like [`put`]: a temporary file created
/// exclusively in the same directory, synced, renamed over `path` (a
/// symlink there is replaced, never written through). The directory must
/// exist.
pub fn put_file(path: &Path, parts: &[&[u8]]) -> Result<(), OutputError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| OutputError::Write {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a file name (a path ending in a UTF-8 file name is needed)",
            ),
        })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    put_parts(dir, name, parts)
}

/// Copy the file at `from` (followed if a link: it is an input the user
/// named, not something in the output directory) to `dir/name`.
fn put_copy(dir: &Path, name: &str, from: &Path) -> Result<(), OutputError> {
    let dst = dir.join(name);
    let res = File::open(from).and_then(|mut src| {
        let mut tmp = temp_for(dir, name)?;
        std::io::copy(&mut src, tmp.as_file_mut())?;
        commit(tmp, &dst)
    });
    res.map_err(|source| OutputError::Copy {
        from: from.into(),
        to: dst,
        source,
    })
}

/// Write everything into `dir` (created if needed).
pub fn write(dir: &Path, o: &Output) -> Result<(), OutputError> {
    std::fs::create_dir_all(dir).map_err(|source| OutputError::CreateDir {
        path: dir.into(),
        source,
    })?;
    put_copy(dir, KERNEL, o.kernel)?;
    put(dir, INITRAMFS, o.initramfs)?;
    put(dir, CMDLINE, format!("{}\n", o.cmdline).as_bytes())?;
    put(dir, BOARD, o.board_toml.as_bytes())?;
    put(dir, BOOT_CFG, o.boot_cfg)?;
    put(dir, SERVICES, o.services_tbl)?;
    Ok(())
}

/// Remove a file a previous build left that this build does not produce
/// (a symlink there is removed itself; its target is left alone).
pub fn remove(dir: &Path, name: &str) -> Result<(), OutputError> {
    let path = dir.join(name);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(OutputError::Write { path, source: e })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    const ALL: [&str; 6] = [KERNEL, INITRAMFS, CMDLINE, BOARD, BOOT_CFG, SERVICES];

    /// The name the build used for temporary files before they were created
    /// exclusively: `OUT/.NAME.tmp.PID`, predictable by anyone who can
    /// guess the pid.
    fn old_tmp_name(dir: &Path, name: &str) -> PathBuf {
        dir.join(format!(".{name}.tmp.{}", std::process::id()))
    }

    fn output<'a>(kernel: &'a Path) -> Output<'a> {
        Output {
            kernel,
            initramfs: b"initramfs",
            cmdline: "console=ttyAMA0",
            board_toml: "[board]\n",
            boot_cfg: b"bootcfg",
            services_tbl: b"services",
        }
    }

    #[test]
    fn planted_symlinks_are_never_written_through() {
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let out = t.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let kernel = t.path().join("Image");
        std::fs::write(&kernel, b"kernel bytes").unwrap();

        // A victim for each temporary name and each final name.
        let mut victims = Vec::new();
        for name in ALL.iter().chain([MANIFEST, PUBLIC_KEY].iter()) {
            for (link, tag) in [(old_tmp_name(&out, name), "tmp"), (out.join(name), "final")] {
                let victim = outside.join(format!("{name}.{tag}"));
                std::fs::write(&victim, b"precious").unwrap();
                symlink(&victim, &link).unwrap();
                victims.push(victim);
            }
        }
        write(&out, &output(&kernel)).unwrap();
        put(&out, MANIFEST, b"manifest").unwrap();
        remove(&out, PUBLIC_KEY).unwrap();

        for v in &victims {
            assert_eq!(
                std::fs::read(v).unwrap(),
                b"precious",
                "{} was overwritten",
                v.display()
            );
        }
        for name in ALL.iter().chain([MANIFEST].iter()) {
            let m = std::fs::symlink_metadata(out.join(name)).unwrap();
            assert!(m.file_type().is_file(), "{name} is not a regular file");
        }
        assert_eq!(std::fs::read(out.join(KERNEL)).unwrap(), b"kernel bytes");
        assert_eq!(
            std::fs::read(out.join(CMDLINE)).unwrap(),
            b"console=ttyAMA0\n"
        );
        assert_eq!(std::fs::read(out.join(MANIFEST)).unwrap(), b"manifest");
        assert!(std::fs::symlink_metadata(out.join(PUBLIC_KEY)).is_err());
        // No temporary file is left behind (the planted links stay).
        for e in std::fs::read_dir(&out).unwrap() {
            let e = e.unwrap();
            let n = e.file_name().into_string().unwrap();
            if n.starts_with('.') {
                assert!(e.file_type().unwrap().is_symlink(), "left behind: {n}");
            }
        }
    }

    #[test]
    fn put_file_replaces_a_planted_symlink_and_leaves_no_temporary() {
        let t = tempfile::tempdir().unwrap();
        let victim = t.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let dst = t.path().join("update.azb");
        symlink(&victim, &dst).unwrap();
        put_file(&dst, &[b"head", b"tree", b"data"]).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(std::fs::symlink_metadata(&dst).unwrap().is_file());
        assert_eq!(std::fs::read(&dst).unwrap(), b"headtreedata");
        let names: Vec<_> = std::fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        // A directory that does not exist: an error naming the file.
        let e = put_file(&t.path().join("no/such/x.azb"), &[b"x"]).unwrap_err();
        assert!(e.to_string().contains("no/such/x.azb"), "{e}");
        assert!(put_file(Path::new("/"), &[b"x"]).is_err());
    }

    #[test]
    fn files_are_written_with_mode_0644_at_most() {
        let t = tempfile::tempdir().unwrap();
        let kernel = t.path().join("Image");
        std::fs::write(&kernel, b"k").unwrap();
        let out = t.path().join("new/out");
        write(&out, &output(&kernel)).unwrap();
        for name in ALL {
            let mode = std::fs::metadata(out.join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & !0o644 & 0o7777, 0, "{name}: {mode:o}");
            assert_ne!(mode & 0o600, 0, "{name}: {mode:o}");
        }
    }

    #[test]
    fn a_failed_copy_names_the_source_and_leaves_nothing() {
        let t = tempfile::tempdir().unwrap();
        let e = write(t.path(), &output(&t.path().join("missing"))).unwrap_err();
        assert!(matches!(e, OutputError::Copy { .. }), "{e}");
        assert!(e.to_string().contains("missing"), "{e}");
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
    }
}
