//! Stage 1 of a verified boot, run from the initramfs: find the root
//! partition, verify its manifest, map it through dm-verity, and mount
//! (through `mount::sysroot`) the squashfs read-only and the data partition
//! read-write; `pid1` then switches root to it (`mount::switch`).
//!
//! Every step either succeeds or returns an error that names what failed;
//! the caller turns errors into the emergency state, so there is never a
//! half-mounted system running services.
use super::health::DM_NAME;
use super::manifest::{self, ManifestError, Verified};
use super::partition::{self, PartitionError};
use super::verity::{DeviceMapper, DmError};
use crate::measure::Measurer;
use crate::mount::sysroot::{self, MountError};
use azl_formats::measure::Kind as MKind;
use azl_formats::RootSpec;
use std::fmt;
use std::time::Duration;

#[derive(Debug)]
pub enum RootError {
    Partition(PartitionError),
    Manifest(ManifestError),
    Verity(DmError),
    Mount(MountError),
    ServiceTable { expected: String, found: String },
}

impl fmt::Display for RootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Partition(e) => write!(f, "root: {e}"),
            Self::Manifest(e) => write!(f, "{e}"),
            Self::Verity(e) => write!(f, "verity: {e}"),
            Self::Mount(e) => write!(f, "{e}"),
            Self::ServiceTable { expected, found } => write!(
                f,
                "service table in the root filesystem has sha256 {found}, the manifest says {expected}"
            ),
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    azl_formats::manifest::Hex(&azl_formats::sha256(bytes)).to_string()
}

/// Assemble the verified root at `/sysroot` from the slot partition
/// `partname` (chosen by `update::select`, or `spec.partition`). Returns
/// the verified manifest.
pub fn assemble(
    spec: &RootSpec,
    partname: &str,
    board: &str,
    measurer: &mut Measurer,
) -> Result<Verified, RootError> {
    let wait = Duration::from_secs(u64::from(spec.wait_s));
    let part = partition::find(partname, wait).map_err(RootError::Partition)?;
    log::info!(
        "root: {} is {} (GPT entry {} of {}, {} MiB)",
        partname,
        part.dev,
        part.number,
        part.disk,
        part.size_bytes >> 20
    );
    let verified =
        manifest::load(&part, partname, board, spec.allow_unsigned).map_err(RootError::Manifest)?;
    let m = &verified.manifest;
    if verified.signed {
        log::info!(
            "manifest: {} {} signature OK",
            m.image_name,
            m.image_version
        );
    } else {
        log::warn!("INSECURE: manifest is UNSIGNED (image built with --insecure-unsigned); do not ship this image");
    }
    // Measure the manifest before anything it describes is used.
    match m.identity_bytes() {
        Ok(identity) => measurer.measure(MKind::Manifest, &identity),
        Err(e) => log::error!("measure: cannot encode the manifest identity: {e}"),
    }
    if let Err(e) = std::fs::create_dir_all(azl_formats::paths::RUN_DIR)
        .and_then(|()| std::fs::write(crate::measure::MANIFEST_COPY, &verified.envelope))
    {
        log::error!(
            "cannot keep the manifest in {}: {e}",
            crate::measure::MANIFEST_COPY
        );
    }
    let v = &m.rootfs.verity;
    measurer.measure(MKind::RootHash, &v.root_hash);
    let dm = DeviceMapper::open().map_err(RootError::Verity)?;
    let mapped = dm
        .create_verity(
            DM_NAME,
            m.rootfs.data_size / 512,
            &v.table_params(&part.dev),
        )
        .map_err(RootError::Verity)?;
    log::info!(
        "verity: {} → {} root hash {}",
        part.dev,
        mapped.node,
        azl_formats::manifest::Hex(&v.root_hash)
    );
    sysroot::mount_root(&mapped.node).map_err(RootError::Mount)?;
    // The service table stage 2 will run must be the one the build signed.
    let table = sysroot::read(azl_formats::paths::SERVICE_TABLE).map_err(RootError::Mount)?;
    let found = sha256_hex(&table);
    let expected = azl_formats::manifest::Hex(&m.service_table_sha256).to_string();
    if found != expected {
        return Err(RootError::ServiceTable { expected, found });
    }
    if let Some(data) = &spec.data_partition {
        let dp = partition::find(data, wait).map_err(RootError::Partition)?;
        sysroot::mount_data(&dp.dev).map_err(RootError::Mount)?;
        log::info!("data: {} mounted read-write on /data", dp.dev);
    }
    Ok(verified)
}
