//! Problems in the image config's own sections (syntax, `${VAR}`
//! expansion, `[image]` and `[kernel]`). The stages that check the rest
//! (users, files, services, the board file) own their problem types; the
//! pipeline combines them.
use crate::diag::{Located, Problems};
use crate::expand::ExpandError;

/// One problem in the image config's own sections, at its `file:line`.
pub type ConfigError = Located<ConfigErrorKind>;
/// Several of them.
pub type ConfigErrors = Problems<ConfigErrorKind>;

/// What is wrong in the image config's own sections.
#[derive(Debug, thiserror::Error)]
pub enum ConfigErrorKind {
    /// TOML syntax, unknown keys, wrong value types (toml's own message).
    #[error("{0}")]
    Syntax(String),
    #[error("{key} {value:?}: {source}")]
    Expand {
        key: &'static str,
        value: String,
        source: ExpandError,
    },
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Update(super::update::UpdateError),
    #[error(transparent)]
    Packages(super::packages::PackagesConfigError),
}

/// Problems in `[image]` and `[kernel]`.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("image name {0:?} is invalid: use 1-32 letters, digits, `_`, `.`, `-`, not starting with `.` or `-`")]
    InvalidName(String),
    #[error("image version {0:?} is invalid: use 1-64 printable characters without spaces")]
    InvalidVersion(String),
    #[error("hostname {0:?} is invalid: use 1-63 letters, digits and `-`, not starting or ending with `-`")]
    InvalidHostname(String),
    #[error("kernel cmdline must be a single line without control characters")]
    BadCmdline,
    #[error("no board: set `board` in [image] or pass --board")]
    NoBoard,
    #[error("no kernel: set `path` or `rpm` in [kernel], or pass --kernel")]
    NoKernel,
}
