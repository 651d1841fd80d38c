//! Errors in configuration files, each tied to a `file:line`, and the
//! collector that gathers them so one run reports every problem at once.
use crate::expand::ExpandError;
use crate::source::Loc;
use std::fmt;

/// One problem in a configuration file.
#[derive(Debug, thiserror::Error)]
#[error("{loc}: {kind}")]
pub struct ConfigError {
    pub loc: Loc,
    pub kind: ConfigErrorKind,
}

/// What is wrong; each module that checks part of the config owns a variant.
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
    Board(#[from] crate::board::BoardProblem),
    #[error(transparent)]
    User(#[from] crate::users::UserError),
    #[error(transparent)]
    File(#[from] crate::files::FileError),
    #[error(transparent)]
    Service(#[from] crate::services::ServiceError),
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
    #[error("no kernel: set `path` in [kernel] or pass --kernel")]
    NoKernel,
}

/// Several problems, printed one per line.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        Self(vec![e])
    }
}

/// Collects problems while a config is checked.
#[derive(Debug, Default)]
pub struct Diagnostics {
    errors: Vec<ConfigError>,
}

impl Diagnostics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, loc: Loc, kind: impl Into<ConfigErrorKind>) {
        self.errors.push(ConfigError {
            loc,
            kind: kind.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// `Err` with everything collected, if anything was.
    pub fn finish(self) -> Result<(), ConfigErrors> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(self.errors))
        }
    }
}
