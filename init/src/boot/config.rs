//! Loading the compiled configuration files from the initramfs / root:
//! the boot config and the service table, with errors that name the file.
use azl_formats::envelope::Enveloped;
use azl_formats::{BootConfig, ServiceTable};
use std::fmt;

#[derive(Debug)]
pub enum ConfigError {
    Read {
        path: &'static str,
        err: std::io::Error,
    },
    Decode {
        path: &'static str,
        err: azl_formats::FormatError,
    },
    Table {
        path: &'static str,
        err: azl_formats::services::TableError,
    },
    /// A service over a limit init enforces (a table not made by imagegen).
    Limit {
        path: &'static str,
        err: azl_formats::limits::LimitError,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { path, err } => write!(f, "cannot read {path}: {err}"),
            Self::Decode { path, err } => write!(f, "{path}: {err}"),
            Self::Table { path, err } => write!(f, "{path}: {err}"),
            Self::Limit { path, err } => write!(f, "{path}: {err}"),
        }
    }
}

fn load<T: Enveloped>(path: &'static str) -> Result<T, ConfigError> {
    let bytes = std::fs::read(path).map_err(|err| ConfigError::Read { path, err })?;
    T::from_bytes(&bytes).map_err(|err| ConfigError::Decode { path, err })
}

pub fn boot_config() -> Result<BootConfig, ConfigError> {
    load(azl_formats::paths::BOOT_CONFIG)
}

/// The service table, and its exact bytes (which get measured).
pub fn service_table() -> Result<(ServiceTable, Vec<u8>), ConfigError> {
    let path = azl_formats::paths::SERVICE_TABLE;
    let bytes = std::fs::read(path).map_err(|err| ConfigError::Read { path, err })?;
    let t = ServiceTable::from_bytes(&bytes).map_err(|err| ConfigError::Decode { path, err })?;
    t.validate()
        .map_err(|err| ConfigError::Table { path, err })?;
    azl_formats::limits::check_table(&t).map_err(|err| ConfigError::Limit { path, err })?;
    Ok((t, bytes))
}
