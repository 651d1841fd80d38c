//! EFI variables through efivarfs (`/sys/firmware/efi/efivars`, or any
//! directory of files in tests): a file `NAME-GUID` holds the attributes
//! (u32 LE) then the value (`azl_formats::efi`). A write is one `write()`
//! of attributes and value, after clearing the immutable flag efivarfs
//! puts on existing variables.
use azl_formats::efi::{self, EfiError};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub enum VarError {
    Io {
        var: String,
        path: PathBuf,
        err: std::io::Error,
    },
    /// A write that the kernel took only in part.
    Short {
        var: String,
        path: PathBuf,
        wrote: usize,
        len: usize,
    },
    Format {
        var: String,
        err: EfiError,
    },
}

impl fmt::Display for VarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { var, path, err } => {
                write!(f, "EFI variable {var} ({}): {err}", path.display())
            }
            Self::Short {
                var,
                path,
                wrote,
                len,
            } => write!(
                f,
                "EFI variable {var} ({}): wrote {wrote} of {len} bytes",
                path.display()
            ),
            Self::Format { var, err } => write!(f, "EFI variable {var}: {err}"),
        }
    }
}

/// The global variables of one efivarfs directory.
#[derive(Debug, Clone)]
pub struct EfiVars {
    dir: PathBuf,
}

impl EfiVars {
    pub fn new(dir: impl Into<PathBuf>) -> EfiVars {
        EfiVars { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(efi::efivarfs_name(name))
    }

    fn io(&self, name: &str) -> impl Fn(std::io::Error) -> VarError + '_ {
        let (var, path) = (name.to_string(), self.path(name));
        move |err| VarError::Io {
            var: var.clone(),
            path: path.clone(),
            err,
        }
    }

    /// The value of `name` (without attributes); `None` if it does not exist.
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>, VarError> {
        match std::fs::read(self.path(name)) {
            Ok(bytes) => {
                let (_, value) = efi::efivarfs_decode(&bytes).map_err(|err| VarError::Format {
                    var: name.to_string(),
                    err,
                })?;
                Ok(Some(value.to_vec()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io(name)(e)),
        }
    }

    /// Set `name` (non-volatile, boot and runtime access) to `value`.
    pub fn write(&self, name: &str, value: &[u8]) -> Result<(), VarError> {
        let path = self.path(name);
        self.unlock(&path);
        let bytes = efi::efivarfs_encode(efi::ATTR_NV_BS_RT, value);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            // No O_TRUNC: efivarfs takes a variable's new value from the
            // one write; the length is fixed up below for plain files.
            .truncate(false)
            .open(&path)
            .map_err(self.io(name))?;
        let wrote = f.write(&bytes).map_err(self.io(name))?;
        if wrote != bytes.len() {
            return Err(VarError::Short {
                var: name.to_string(),
                path,
                wrote,
                len: bytes.len(),
            });
        }
        // A regular file (tests) keeps no stale tail; efivarfs sizes the
        // file itself and may refuse a truncate, which changes nothing.
        let _ = f.set_len(bytes.len() as u64);
        Ok(())
    }

    /// Delete `name`; absent is fine.
    pub fn delete(&self, name: &str) -> Result<(), VarError> {
        let path = self.path(name);
        self.unlock(&path);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io(name)(e)),
        }
    }

    /// Clear the immutable flag of an existing variable. Errors are left
    /// to the write or delete that follows (a directory of plain files in
    /// tests may not know the ioctl; nothing is immutable there).
    fn unlock(&self, path: &Path) {
        if let Ok(f) = std::fs::File::open(path) {
            let _ = crate::sys::fsflags::clear_immutable(&f);
        }
    }

    /// The numbers of every `Boot####` variable, ascending.
    pub fn boot_entries(&self) -> Result<Vec<u16>, VarError> {
        let suffix = format!("-{}", efi::GLOBAL_GUID);
        let rd = std::fs::read_dir(&self.dir).map_err(|err| VarError::Io {
            var: "Boot####".into(),
            path: self.dir.clone(),
            err,
        })?;
        let mut out: Vec<u16> = rd
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                efi::parse_boot_var_name(name.strip_suffix(&suffix)?)
            })
            .collect();
        out.sort_unstable();
        Ok(out)
    }

    /// `BootOrder` (empty when absent).
    pub fn boot_order(&self) -> Result<Vec<u16>, VarError> {
        match self.read(efi::BOOT_ORDER)? {
            None => Ok(Vec::new()),
            Some(v) => efi::decode_boot_order(&v).map_err(|err| VarError::Format {
                var: efi::BOOT_ORDER.into(),
                err,
            }),
        }
    }

    /// A u16 variable (`BootNext`, `BootCurrent`), if present.
    pub fn read_u16(&self, name: &'static str) -> Result<Option<u16>, VarError> {
        self.read(name)?
            .map(|v| {
                efi::decode_u16(name, &v).map_err(|err| VarError::Format {
                    var: name.into(),
                    err,
                })
            })
            .transpose()
    }
}
