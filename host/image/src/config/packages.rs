//! `[[repo]]`, `[packages]` and `[kernel] rpm`: which RPM repositories an
//! image is built from and what to install from them (docs/packages.md).
//! Checked here: names, URLs, keys and the request; resolving, fetching
//! and unpacking are [`crate::packages`].
//!
//! ```toml
//! [[repo]]
//! name = "base"
//! baseurl = "file:///srv/azl/base"      # or https://…, or a path relative to this file
//! gpgkey = "keys/RPM-GPG-KEY-azl"        # ASCII-armored; relative to this file
//! gpgcheck = true                        # default: every RPM must be signed by gpgkey
//! repo_gpgcheck = false                  # default: repomd.xml's own signature not required
//! sslcacert = "keys/ca.pem"              # https:// only: trust these CAs instead of the webpki roots
//!
//! [packages]
//! install = ["busybox", "/usr/bin/sh"]  # names, capabilities or paths
//! exclude = ["*-doc"]
//! weak_deps = false                      # default
//! allow_devices = ["dev-nodes"]          # packages whose device nodes are kept (default: none)
//!
//! [kernel]
//! rpm = "kernel-core"                    # instead of path: the kernel from this package
//! ```
use super::error::ConfigErrorKind;
use super::Config;
use crate::diag::Diagnostics;
use crate::expand::Env;
use serde::Deserialize;
use std::path::PathBuf;
use toml::Spanned;

/// `[[repo]]` as written (the fields of a dnf `.repo` section).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoEntry {
    pub name: Spanned<String>,
    pub baseurl: Spanned<String>,
    pub gpgkey: Option<Spanned<String>>,
    pub gpgcheck: Option<Spanned<bool>>,
    pub repo_gpgcheck: Option<Spanned<bool>>,
    pub sslcacert: Option<Spanned<String>>,
}

/// `[packages]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackagesSection {
    #[serde(default)]
    pub install: Vec<Spanned<String>>,
    #[serde(default)]
    pub exclude: Vec<Spanned<String>>,
    #[serde(default)]
    pub weak_deps: bool,
    #[serde(default)]
    pub allow_devices: Vec<Spanned<String>>,
}

/// A checked repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoSettings {
    pub name: String,
    /// `file:///abs`, `http(s)://…`; a plain path is made absolute
    /// against the config's directory and written as `file://`.
    pub baseurl: String,
    pub gpgkey: Option<PathBuf>,
    pub gpgcheck: bool,
    pub repo_gpgcheck: bool,
    /// PEM CAs for an `https://` baseurl (dnf's `sslcacert`).
    pub sslcacert: Option<PathBuf>,
}

/// The checked package sections.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PackageSettings {
    pub repos: Vec<RepoSettings>,
    pub install: Vec<String>,
    pub exclude: Vec<String>,
    pub weak_deps: bool,
    /// Packages (by name) whose character device nodes are kept; any other
    /// package carrying a device node is refused.
    pub allow_devices: Vec<String>,
    /// `[kernel] rpm`: the package whose kernel and modules the image uses.
    pub kernel_rpm: Option<String>,
}

/// Problems in `[[repo]]`, `[packages]` and `[kernel] rpm`.
#[derive(Debug, thiserror::Error)]
pub enum PackagesConfigError {
    #[error("repository name {0:?} is invalid: use 1-64 letters, digits, `_`, `.`, `-`")]
    RepoName(String),
    #[error("repository {0:?} is defined twice")]
    RepoTwice(String),
    #[error("repository {name}: baseurl {url:?} is not file://, http:// or https:// (nor a path)")]
    BaseUrl { name: String, url: String },
    #[error(
        "repository {0}: gpgcheck = true (the default) needs gpgkey = \"PATH\", the repository's \
         ASCII-armored public key; set gpgcheck = false only for a repository you build yourself"
    )]
    NoKey(String),
    #[error("repository {0}: repo_gpgcheck = true needs gpgkey")]
    NoRepoKey(String),
    #[error("[packages] install is empty, or a request in it is blank")]
    EmptyRequest,
    #[error("[packages] or [kernel] rpm needs at least one [[repo]]")]
    NoRepo,
    #[error("[kernel] has both path and rpm: the kernel comes from one of them")]
    KernelTwice,
    #[error("[[repo]] is set but nothing is installed: add [packages] install or [kernel] rpm")]
    Unused,
}

fn valid_repo_name(n: &str) -> bool {
    (1..=64).contains(&n.len())
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Check the package sections of `cfg`; `None` when it has none.
pub fn check<K: From<ConfigErrorKind>>(
    cfg: &Config,
    env: &dyn Env,
    diags: &mut Diagnostics<K>,
) -> Option<PackageSettings> {
    let doc = &cfg.doc;
    let push = |diags: &mut Diagnostics<K>, span, e| {
        diags.push(cfg.source.loc(span), ConfigErrorKind::Packages(e))
    };
    let kernel_rpm = doc.kernel.rpm.as_ref();
    if let (Some(_), Some(rpm)) = (&doc.kernel.path, kernel_rpm) {
        push(diags, rpm.span(), PackagesConfigError::KernelTwice);
    }
    if doc.repo.is_empty() && doc.packages.is_none() && kernel_rpm.is_none() {
        return None;
    }
    let mut repos: Vec<RepoSettings> = Vec::new();
    for r in &doc.repo {
        let r = r.get_ref();
        let name = r.name.get_ref().clone();
        if !valid_repo_name(&name) {
            push(
                diags,
                r.name.span(),
                PackagesConfigError::RepoName(name.clone()),
            );
        }
        if repos.iter().any(|o| o.name == name) {
            push(
                diags,
                r.name.span(),
                PackagesConfigError::RepoTwice(name.clone()),
            );
        }
        let url = r.baseurl.get_ref();
        let baseurl = if url.starts_with("http://") || url.starts_with("https://") {
            Some(url.clone())
        } else if let Some(p) = url.strip_prefix("file://") {
            p.starts_with('/').then(|| url.clone())
        } else if url.contains("://") || url.is_empty() {
            None
        } else {
            cfg.resolve_path("baseurl", &r.baseurl, env, diags)
                .map(|p| format!("file://{}", p.display()))
        };
        let Some(baseurl) = baseurl else {
            push(
                diags,
                r.baseurl.span(),
                PackagesConfigError::BaseUrl {
                    name: name.clone(),
                    url: url.clone(),
                },
            );
            continue;
        };
        let gpgkey = r
            .gpgkey
            .as_ref()
            .and_then(|k| cfg.resolve_path("gpgkey", k, env, diags));
        let sslcacert = r
            .sslcacert
            .as_ref()
            .and_then(|k| cfg.resolve_path("sslcacert", k, env, diags));
        let gpgcheck = r.gpgcheck.as_ref().is_none_or(|g| *g.get_ref());
        let repo_gpgcheck = r.repo_gpgcheck.as_ref().is_some_and(|g| *g.get_ref());
        if r.gpgkey.is_none() && gpgcheck {
            push(
                diags,
                r.name.span(),
                PackagesConfigError::NoKey(name.clone()),
            );
        }
        if r.gpgkey.is_none() && repo_gpgcheck {
            push(
                diags,
                r.name.span(),
                PackagesConfigError::NoRepoKey(name.clone()),
            );
        }
        repos.push(RepoSettings {
            name,
            baseurl,
            gpgkey,
            gpgcheck,
            repo_gpgcheck,
            sslcacert,
        });
    }
    let section = doc.packages.as_ref();
    let install: Vec<String> = section
        .map(|p| {
            p.get_ref()
                .install
                .iter()
                .map(|s| s.get_ref().trim().to_string())
                .collect()
        })
        .unwrap_or_default();
    if let Some(p) = section {
        if install.is_empty() || install.iter().any(String::is_empty) {
            push(diags, p.span(), PackagesConfigError::EmptyRequest);
        }
    }
    let anchor = doc
        .repo
        .first()
        .map(|r| r.span())
        .or_else(|| section.map(|s| s.span()))
        .or_else(|| kernel_rpm.map(|k| k.span()))
        .unwrap_or(0..0);
    if doc.repo.is_empty() {
        push(diags, anchor.clone(), PackagesConfigError::NoRepo);
    } else if section.is_none() && kernel_rpm.is_none() {
        push(diags, anchor, PackagesConfigError::Unused);
    }
    Some(PackageSettings {
        repos,
        install,
        exclude: section
            .map(|p| {
                p.get_ref()
                    .exclude
                    .iter()
                    .map(|s| s.get_ref().clone())
                    .collect()
            })
            .unwrap_or_default(),
        weak_deps: section.is_some_and(|p| p.get_ref().weak_deps),
        allow_devices: section
            .map(|p| {
                p.get_ref()
                    .allow_devices
                    .iter()
                    .map(|s| s.get_ref().trim().to_string())
                    .collect()
            })
            .unwrap_or_default(),
        kernel_rpm: kernel_rpm.map(|k| k.get_ref().trim().to_string()),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::tests::parse;
    use crate::expand::MapEnv;

    const HEAD: &str = "[image]\nname = \"demo\"\nversion = \"1.0.0\"\nhostname = \"edge\"\n";

    fn settings(text: &str) -> Result<Option<PackageSettings>, String> {
        let c = parse(&format!("{HEAD}{text}")).map_err(|e| e.to_string())?;
        let mut d = Diagnostics::<ConfigErrorKind>::new();
        let s = check(&c, &MapEnv::default(), &mut d);
        d.finish().map_err(|e| e.to_string())?;
        Ok(s)
    }

    #[test]
    fn repos_and_request() {
        let s = settings(
            "[[repo]]\nname = \"base\"\nbaseurl = \"repo/base\"\ngpgkey = \"k.asc\"\n\
             [[repo]]\nname = \"web\"\nbaseurl = \"https://example.invalid/r\"\ngpgcheck = false\n\
             sslcacert = \"ca.pem\"\n\
             [packages]\ninstall = [\"busybox\", \"/usr/bin/sh\"]\nexclude = [\"*-doc\"]\nallow_devices = [\"devs\"]\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.repos[0].baseurl, "file:///cfg/repo/base");
        assert_eq!(s.repos[0].gpgkey, Some(PathBuf::from("/cfg/k.asc")));
        assert!(s.repos[0].gpgcheck && !s.repos[0].repo_gpgcheck);
        assert!(!s.repos[1].gpgcheck);
        assert_eq!(s.repos[0].sslcacert, None);
        assert_eq!(s.repos[1].sslcacert, Some(PathBuf::from("/cfg/ca.pem")));
        assert_eq!(s.install, ["busybox", "/usr/bin/sh"]);
        assert_eq!(s.exclude, ["*-doc"]);
        assert!(!s.weak_deps);
        assert_eq!(s.allow_devices, ["devs"]);
        assert_eq!(settings("").unwrap(), None);
    }

    #[test]
    fn problems_are_named_with_their_line() {
        let e = settings(
            "[[repo]]\nname = \"a b\"\nbaseurl = \"ftp://x\"\n[[repo]]\nname = \"c\"\nbaseurl = \"/r\"\n\
             [packages]\ninstall = []\n[kernel]\npath = \"k\"\nrpm = \"kernel\"\n",
        )
        .unwrap_err();
        let lines: Vec<&str> = e.lines().collect();
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("/cfg/demo.toml:15: [kernel] has both path and rpm")),
            "{e}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("/cfg/demo.toml:6: repository name \"a b\"")),
            "{e}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("baseurl \"ftp://x\" is not file://")),
            "{e}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("repository c: gpgcheck = true (the default) needs gpgkey")),
            "{e}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("[packages] install is empty")),
            "{e}"
        );
        let e = settings("[packages]\ninstall = [\"x\"]\n").unwrap_err();
        assert!(e.contains("needs at least one [[repo]]"), "{e}");
        let e =
            settings("[[repo]]\nname = \"a\"\nbaseurl = \"/r\"\ngpgcheck = false\n").unwrap_err();
        assert!(e.contains("nothing is installed"), "{e}");
    }
}
