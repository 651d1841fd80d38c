//! The image config (`image.toml`): its TOML schema, loading with line
//! numbers, and the checks of the `[image]` and `[kernel]` sections (and,
//! in [`update`], of `[update]`, in [`packages`], of `[[repo]]` and
//! `[packages]`).
//!
//! Unknown keys are rejected (`deny_unknown_fields`), values that errors
//! point at are `toml::Spanned`. `[[user]]`, `[[file]]` and `[[service]]`
//! are checked by [`crate::users`], [`crate::rootfs`] and [`crate::services`].
pub mod error;
pub mod packages;
pub mod update;
pub mod values;

pub use error::{ConfigError, ConfigErrorKind, ConfigErrors, ImageError};
pub use values::NameOrNumber;

use crate::diag::Diagnostics;
use crate::expand::{self, Env};
use crate::source::SourceFile;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// The whole document.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageConfig {
    pub image: ImageSection,
    #[serde(default)]
    pub kernel: KernelSection,
    #[serde(default)]
    pub user: Vec<Spanned<UserEntry>>,
    #[serde(default)]
    pub file: Vec<Spanned<FileEntry>>,
    #[serde(default)]
    pub service: Vec<Spanned<ServiceEntry>>,
    /// How a trial boot is judged and committed (defaults when absent).
    pub update: Option<update::UpdateSection>,
    /// RPM repositories ([`packages`]).
    #[serde(default)]
    pub repo: Vec<Spanned<packages::RepoEntry>>,
    /// What to install from them.
    pub packages: Option<Spanned<packages::PackagesSection>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSection {
    pub name: Spanned<String>,
    pub version: Spanned<String>,
    /// Anti-rollback security version written to the manifest (default 0).
    #[serde(default)]
    pub security_version: u32,
    pub hostname: Spanned<String>,
    /// Board name, or a path to a board file (contains `/` or ends in `.toml`).
    pub board: Option<Spanned<String>>,
    /// Path of the aarch64 init binary.
    pub init: Option<Spanned<String>>,
    /// Where the root filesystem lives; default: `disk` when the board has
    /// a `[disk]` layout, else `initramfs`.
    pub root: Option<Spanned<RootMode>>,
    /// Seed for every GUID, UUID and salt of the disk image (default: the
    /// image name), so rebuilds are byte-identical.
    pub seed: Option<Spanned<String>>,
}

/// `[image] root`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RootMode {
    /// squashfs under dm-verity on the board's disk layout, signed manifest.
    Disk,
    /// Everything in the initramfs (development and tiny images).
    Initramfs,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelSection {
    /// Unpacked kernel package directory.
    pub path: Option<Spanned<String>>,
    /// The RPM (from the `[[repo]]`s) whose kernel and modules to use, instead of `path`.
    pub rpm: Option<Spanned<String>>,
    /// Appended to the board's cmdline.
    pub cmdline: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    pub name: Spanned<String>,
    pub uid: Spanned<u32>,
    pub gid: Spanned<u32>,
    pub home: Option<Spanned<String>>,
    pub shell: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub dst: Spanned<String>,
    /// Host file to copy.
    pub src: Option<Spanned<String>>,
    /// Make `dst` a symlink to this target.
    pub symlink: Option<Spanned<String>>,
    /// Make `dst` an (empty) directory.
    pub dir: Option<Spanned<bool>>,
    pub mode: Option<Spanned<String>>,
    pub uid: Option<Spanned<u32>>,
    pub gid: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceEntry {
    pub name: Spanned<String>,
    pub exec: Spanned<Vec<String>>,
    #[serde(default)]
    pub env: Option<Spanned<BTreeMap<String, String>>>,
    pub user: Option<Spanned<NameOrNumber>>,
    pub group: Option<Spanned<NameOrNumber>>,
    pub workdir: Option<Spanned<String>>,
    pub restart: Option<Restart>,
    pub restart_delay_ms: Option<Spanned<u32>>,
    pub restart_delay_max_ms: Option<Spanned<u32>>,
    pub crash_loop: Option<Spanned<CrashLoopEntry>>,
    #[serde(default)]
    pub after: Vec<Spanned<String>>,
    pub memory_max: Option<Spanned<NameOrNumber>>,
    pub ready: Option<Ready>,
    pub stop_timeout_ms: Option<Spanned<u32>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    Always,
    OnFailure,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ready {
    Started,
    Notify,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CrashAction {
    GiveUp,
    Reboot,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrashLoopEntry {
    pub max_restarts: Option<u16>,
    pub window_s: Option<u32>,
    pub action: Option<CrashAction>,
}

/// A loaded, syntactically valid config with its source (for line numbers).
#[derive(Debug)]
pub struct Config {
    pub source: SourceFile,
    pub doc: ImageConfig,
}

/// Why a config could not be loaded at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read image config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] ConfigErrors),
}

/// Where the board comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoardRef {
    /// Looked up in the boards directory.
    Name(String),
    /// A board file.
    Path(PathBuf),
}

impl BoardRef {
    /// A value that contains `/` or ends in `.toml` is a path (relative to
    /// `base`), anything else a name.
    pub fn classify(value: &str, base: &Path) -> Self {
        if value.contains('/') || value.ends_with(".toml") {
            BoardRef::Path(base.join(value))
        } else {
            BoardRef::Name(value.to_string())
        }
    }
}

/// The checked `[image]` and `[kernel]` sections, paths expanded and absolute
/// (or relative to the working directory when the config path was).
#[derive(Debug, Clone)]
pub struct ImageSettings {
    pub name: String,
    pub version: String,
    pub security_version: u32,
    pub hostname: String,
    pub board: Option<BoardRef>,
    pub init: Option<PathBuf>,
    pub kernel: Option<PathBuf>,
    pub cmdline: Option<String>,
    /// `None`: decided by the board.
    pub root: Option<RootMode>,
    pub seed: String,
    /// `[update]`, checked.
    pub update: azl_formats::UpdatePolicy,
    /// `[[repo]]`, `[packages]`, `[kernel] rpm`, checked (`None`: no packages).
    pub packages: Option<packages::PackageSettings>,
}

impl Config {
    /// Read and parse `path` (syntax, types and unknown keys only).
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let source = SourceFile::read(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self::parse(source)?)
    }

    /// Parse an in-memory source.
    pub fn parse(source: SourceFile) -> Result<Self, ConfigErrors> {
        match toml::from_str::<ImageConfig>(source.text()) {
            Ok(doc) => Ok(Self { source, doc }),
            Err(e) => Err(ConfigError {
                loc: source.loc_of_toml_error(&e),
                kind: ConfigErrorKind::Syntax(e.message().trim_end().to_string()),
            }
            .into()),
        }
    }

    /// Expand a path-valued key and make it relative to the config's directory.
    pub fn resolve_path<K: From<ConfigErrorKind>>(
        &self,
        key: &'static str,
        value: &Spanned<String>,
        env: &dyn Env,
        diags: &mut Diagnostics<K>,
    ) -> Option<PathBuf> {
        match expand::expand(value.get_ref(), env) {
            Ok(s) => Some(self.source.dir().join(s)),
            Err(source) => {
                diags.push(
                    self.source.loc(value.span()),
                    ConfigErrorKind::Expand {
                        key,
                        value: value.get_ref().clone(),
                        source,
                    },
                );
                None
            }
        }
    }

    /// Check `[image]` and `[kernel]`.
    pub fn image_settings<K: From<ConfigErrorKind>>(
        &self,
        env: &dyn Env,
        diags: &mut Diagnostics<K>,
    ) -> ImageSettings {
        let img = &self.doc.image;
        let loc = |s: &Spanned<String>| self.source.loc(s.span());
        if !azl_formats::valid_name(img.name.get_ref()) {
            diags.push(
                loc(&img.name),
                ConfigErrorKind::Image(ImageError::InvalidName(img.name.get_ref().clone())),
            );
        }
        if !valid_version(img.version.get_ref()) {
            diags.push(
                loc(&img.version),
                ConfigErrorKind::Image(ImageError::InvalidVersion(img.version.get_ref().clone())),
            );
        }
        if !valid_hostname(img.hostname.get_ref()) {
            diags.push(
                loc(&img.hostname),
                ConfigErrorKind::Image(ImageError::InvalidHostname(img.hostname.get_ref().clone())),
            );
        }
        let board = img.board.as_ref().and_then(|b| {
            if b.get_ref().contains('/') || b.get_ref().ends_with(".toml") {
                self.resolve_path("board", b, env, diags)
                    .map(BoardRef::Path)
            } else {
                Some(BoardRef::Name(b.get_ref().clone()))
            }
        });
        let init = img
            .init
            .as_ref()
            .and_then(|v| self.resolve_path("init", v, env, diags));
        let kernel = self
            .doc
            .kernel
            .path
            .as_ref()
            .and_then(|v| self.resolve_path("path", v, env, diags));
        let cmdline = self.doc.kernel.cmdline.as_ref().and_then(|c| {
            if c.get_ref().chars().any(char::is_control) {
                diags.push(loc(c), ConfigErrorKind::Image(ImageError::BadCmdline));
                None
            } else {
                Some(c.get_ref().trim().to_string()).filter(|s| !s.is_empty())
            }
        });
        let update = update::check(
            &self.source,
            self.doc.update.as_ref(),
            &mut |v, d| self.resolve_path("verifier_key", v, env, d),
            diags,
        );
        let packages = packages::check(self, env, diags);
        ImageSettings {
            update,
            packages,
            name: img.name.get_ref().clone(),
            version: img.version.get_ref().clone(),
            security_version: img.security_version,
            hostname: img.hostname.get_ref().clone(),
            board,
            init,
            kernel,
            cmdline,
            root: img.root.as_ref().map(|r| *r.get_ref()),
            seed: img
                .seed
                .as_ref()
                .map_or_else(|| img.name.get_ref().clone(), |s| s.get_ref().clone()),
        }
    }
}

fn valid_version(v: &str) -> bool {
    (1..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic())
}

/// A single DNS label (RFC 1123): what `sethostname` and DHCP agree on.
fn valid_hostname(h: &str) -> bool {
    (1..=63).contains(&h.len())
        && !h.starts_with('-')
        && !h.ends_with('-')
        && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expand::MapEnv;

    pub(crate) fn parse(text: &str) -> Result<Config, ConfigErrors> {
        Config::parse(SourceFile::new("/cfg/demo.toml".into(), text.to_string()))
    }

    const HEAD: &str = "[image]\nname = \"demo\"\nversion = \"1.0.0\"\nhostname = \"edge\"\n";

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn syntax_errors_have_lines() {
        let e = err(&format!("{HEAD}colour = \"red\"\n"));
        assert!(
            e.starts_with("/cfg/demo.toml:5: unknown field `colour`"),
            "{e}"
        );
        let e = err(&format!(
            "{HEAD}[[service]]\nname = \"a\"\nexec = [\"/x\"]\nrestart = \"sometimes\"\n"
        ));
        assert!(
            e.starts_with("/cfg/demo.toml:8: unknown variant `sometimes`"),
            "{e}"
        );
        let e = err(&format!("{HEAD}[[file]]\ndst = \"/x\"\nuid = -1\n"));
        assert!(e.starts_with("/cfg/demo.toml:7: "), "{e}");
        let e = err("[image]\nname = \"x\"\n");
        assert!(e.contains("missing field `version`"), "{e}");
        let e = err(&format!("{HEAD}[[service]]\nname = \"a\"\nexec = [\"/x\"]\ncrash_loop = {{ max_restarts = 1, whatever = 2 }}\n"));
        assert!(
            e.starts_with("/cfg/demo.toml:8: unknown field `whatever`"),
            "{e}"
        );
    }

    #[test]
    fn settings() {
        let text = format!(
            "{HEAD}board = \"boards/x.toml\"\ninit = \"~/init\"\n[kernel]\npath = \"${{AZL_CACHE}}/k\"\ncmdline = \" quiet \"\n"
        );
        let c = parse(&text).unwrap();
        let env = MapEnv::new([("HOME", "/h")]);
        let mut d = Diagnostics::<ConfigErrorKind>::new();
        let s = c.image_settings(&env, &mut d);
        d.finish().unwrap();
        assert_eq!(s.board, Some(BoardRef::Path("/cfg/boards/x.toml".into())));
        assert_eq!(s.init, Some(PathBuf::from("/h/init")));
        assert_eq!(s.kernel, Some(PathBuf::from("/h/.cache/azl-edge/k")));
        assert_eq!(s.cmdline.as_deref(), Some("quiet"));

        let c = parse(&format!("{HEAD}board = \"qemu-virt\"\n")).unwrap();
        let s = c.image_settings(&env, &mut Diagnostics::<ConfigErrorKind>::new());
        assert_eq!(s.board, Some(BoardRef::Name("qemu-virt".into())));
    }

    #[test]
    fn image_errors() {
        let text = "[image]\nname = \"bad name\"\nversion = \"1 0\"\nhostname = \"-edge\"\n[kernel]\npath = \"$NOPE/k\"\ncmdline = \"a\\nb\"\n";
        let c = parse(text).unwrap();
        let mut d = Diagnostics::<ConfigErrorKind>::new();
        c.image_settings(&MapEnv::default(), &mut d);
        let e = d.finish().unwrap_err().to_string();
        let lines: Vec<_> = e.lines().collect();
        assert_eq!(lines.len(), 5, "{e}");
        assert!(lines[0].starts_with("/cfg/demo.toml:2: image name \"bad name\" is invalid"));
        assert!(lines[1].starts_with("/cfg/demo.toml:3: image version \"1 0\" is invalid"));
        assert!(lines[2].starts_with("/cfg/demo.toml:4: hostname \"-edge\" is invalid"));
        assert_eq!(
            lines[3],
            "/cfg/demo.toml:6: path \"$NOPE/k\": environment variable NOPE is not set"
        );
        assert!(lines[4].starts_with("/cfg/demo.toml:7: kernel cmdline must be a single line"));
    }
}
