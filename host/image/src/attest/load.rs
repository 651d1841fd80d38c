//! Reading the verifier's inputs: the report, the reference manifest (a
//! `manifest.bin`, a disk image, or an output directory) and the keys.
use crate::output;
use azl_attest::input::{self, ReadError};
use azl_disk::{self as disk, place, DiskError};
use azl_formats::attest::Report;
use azl_formats::envelope::Enveloped;
use azl_formats::manifest::{
    Manifest, PartitionKind, RegionError, SignedManifest, MANIFEST_REGION,
};
use azl_formats::FormatError;
use azl_sign::{self as sign, KeyError, VerifyError};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not an attestation report: {source}")]
    Report { path: PathBuf, source: FormatError },
    #[error("{path}: not a signed manifest (manifest.bin): {source}")]
    Manifest { path: PathBuf, source: FormatError },
    #[error(transparent)]
    Disk(#[from] DiskError),
    #[error("{path}: no root slot holds a manifest ({detail})")]
    NoManifest { path: PathBuf, detail: String },
    #[error(
        "{path} is neither a signed manifest, a disk image nor an output directory with {} or {}",
        output::MANIFEST,
        output::DISK
    )]
    NotAnImage { path: PathBuf },
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A capped read refused the file (not regular, too large, I/O); the
    /// error names the path.
    #[error("reading {0}")]
    File(#[from] ReadError),
    #[error("{path}: is a {kind}, not a manifest file, disk image or output directory")]
    NotRegular { path: PathBuf, kind: &'static str },
}

/// Read and decode a report file (`AZAR` envelope, at most
/// [`input::REPORT_MAX`] bytes, a regular file).
pub fn report(path: &Path) -> Result<(Vec<u8>, Report), LoadError> {
    let bytes = input::read_report(path)?;
    let report = Report::from_bytes(&bytes).map_err(|source| LoadError::Report {
        path: path.to_path_buf(),
        source,
    })?;
    Ok((bytes, report))
}

/// Where the reference manifest came from, for messages.
#[derive(Debug, Clone)]
pub struct Found {
    pub signed: SignedManifest,
    pub origin: String,
}

/// The signed manifest at `path`: a `SignedManifest` envelope file, a disk
/// image (the manifest region of a root slot), or an output directory
/// (`manifest.bin`, else `disk.img`). With several filled root slots, the
/// one whose manifest is measured in `prefer` (the identity digest a report
/// claims) is taken, else the first; either way the caller verifies it.
pub fn manifest(path: &Path, prefer: &dyn Fn(&SignedManifest) -> bool) -> Result<Found, LoadError> {
    let meta = std::fs::metadata(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let ft = meta.file_type();
    // Opening a FIFO blocks and a character device never ends: refuse all
    // but directories, regular files and block devices (a disk) by stat.
    {
        use std::os::unix::fs::FileTypeExt;
        let kind = if ft.is_fifo() {
            Some("FIFO")
        } else if ft.is_char_device() {
            Some("character device")
        } else if ft.is_socket() {
            Some("socket")
        } else {
            None
        };
        if let Some(kind) = kind {
            return Err(LoadError::NotRegular {
                path: path.to_path_buf(),
                kind,
            });
        }
    }
    if meta.is_dir() {
        let m = path.join(output::MANIFEST);
        if m.is_file() {
            return manifest_file(&m);
        }
        let d = path.join(output::DISK);
        if d.is_file() {
            return from_disk(&d, prefer);
        }
        return Err(LoadError::NotAnImage {
            path: path.to_path_buf(),
        });
    }
    let mut magic = [0u8; 4];
    let mut f = std::fs::File::open(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let n = f.read(&mut magic).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if n == 4 && magic == SignedManifest::MAGIC {
        manifest_file(path)
    } else {
        from_disk(path, prefer)
    }
}

fn manifest_file(path: &Path) -> Result<Found, LoadError> {
    let signed = SignedManifest::from_bytes(&input::read_manifest(path)?).map_err(|source| {
        LoadError::Manifest {
            path: path.to_path_buf(),
            source,
        }
    })?;
    Ok(Found {
        signed,
        origin: path.display().to_string(),
    })
}

fn from_disk(path: &Path, prefer: &dyn Fn(&SignedManifest) -> bool) -> Result<Found, LoadError> {
    let gpt = disk::read_gpt(path)?;
    let io = |source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let mut found: Vec<(String, SignedManifest)> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    for p in gpt
        .partitions
        .iter()
        .filter(|p| p.type_guid == place::type_guid(PartitionKind::Root))
    {
        if p.size < MANIFEST_REGION {
            problems.push(format!("{}: smaller than the manifest region", p.name));
            continue;
        }
        let mut region = vec![0u8; MANIFEST_REGION as usize];
        f.seek(SeekFrom::Start(p.offset + p.size - MANIFEST_REGION))
            .and_then(|_| f.read_exact(&mut region))
            .map_err(io)?;
        match SignedManifest::from_region(&region) {
            Ok(sm) => found.push((p.name.clone(), sm)),
            Err(RegionError::Empty) => problems.push(format!("{}: empty", p.name)),
            Err(e) => problems.push(format!("{}: {e}", p.name)),
        }
    }
    let pick = found.iter().position(|(_, sm)| prefer(sm)).unwrap_or(0);
    if found.is_empty() {
        return Err(LoadError::NoManifest {
            path: path.to_path_buf(),
            detail: if problems.is_empty() {
                "no root partition".into()
            } else {
                problems.join("; ")
            },
        });
    }
    let (name, signed) = found.swap_remove(pick);
    Ok(Found {
        signed,
        origin: format!("{} partition {name}", path.display()),
    })
}

/// The manifest signing key: `key` if given, else `manifest.pub` in the
/// output directory or next to the manifest / disk image.
pub fn public_key(
    manifest_path: &Path,
    key: Option<&Path>,
) -> Result<(PathBuf, [u8; 32]), LoadError> {
    let path = match key {
        Some(k) => k.to_path_buf(),
        None if manifest_path.is_dir() => manifest_path.join(output::PUBLIC_KEY),
        None => manifest_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .join(output::PUBLIC_KEY),
    };
    let k = sign::load_public_key(&path)?;
    Ok((path, k))
}

/// Check the reference manifest's signature; an unsigned manifest is
/// refused (it cannot vouch for reference values).
pub fn verify_manifest(
    signed: &SignedManifest,
    public: &[u8; 32],
) -> Result<Manifest, VerifyError> {
    sign::verify(signed, public)
}
