//! Expansion of `${VAR}`, `$VAR`, `$$` and a leading `~` in path-valued
//! config keys (`path`, `src`, `init`, `board`).
//!
//! `AZL_CACHE` defaults to `~/.cache/azl-edge` when unset or empty, matching
//! the scripts that fill the cache. Any other unset variable is an error: a
//! silently empty path component would point the build at the wrong files.
use std::collections::BTreeMap;

/// Default of `AZL_CACHE`, itself expanded.
pub const DEFAULT_AZL_CACHE: &str = "~/.cache/azl-edge";

/// Where variable values come from (the process environment, or a map in tests).
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// A fixed set of variables.
#[derive(Debug, Default, Clone)]
pub struct MapEnv(pub BTreeMap<String, String>);

impl MapEnv {
    pub fn new<'a>(vars: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self(
            vars.into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }
}

impl Env for MapEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    #[error("environment variable {0} is not set")]
    Unset(String),
    #[error("`${{` without a closing `}}`")]
    Unterminated,
    #[error("{0:?} is not a variable name (letters, digits, `_`; not starting with a digit)")]
    BadName(String),
    #[error("a `$` must start ${{VAR}}, $VAR or $$ (for a literal `$`)")]
    LoneDollar,
    #[error("`~user` is not supported; use `~/` or $HOME")]
    TildeUser,
}

fn is_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Value of `name`, applying the `AZL_CACHE` default.
fn lookup(name: &str, env: &dyn Env) -> Result<String, ExpandError> {
    match env.var(name) {
        Some(v) if !(name == "AZL_CACHE" && v.is_empty()) => Ok(v),
        _ if name == "AZL_CACHE" => expand(DEFAULT_AZL_CACHE, env),
        _ => Err(ExpandError::Unset(name.to_string())),
    }
}

/// Expand `input`.
pub fn expand(input: &str, env: &dyn Env) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    if let Some(after) = rest.strip_prefix('~') {
        if !(after.is_empty() || after.starts_with('/')) {
            return Err(ExpandError::TildeUser);
        }
        out.push_str(&lookup("HOME", env)?);
        rest = after;
    }
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = rest.strip_prefix('{') {
            let end = r.find('}').ok_or(ExpandError::Unterminated)?;
            let name = &r[..end];
            if !is_name(name) {
                return Err(ExpandError::BadName(name.to_string()));
            }
            out.push_str(&lookup(name, env)?);
            rest = &r[end + 1..];
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let name = &rest[..end];
            if name.is_empty() {
                return Err(ExpandError::LoneDollar);
            }
            if !is_name(name) {
                return Err(ExpandError::BadName(name.to_string()));
            }
            out.push_str(&lookup(name, env)?);
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> MapEnv {
        MapEnv::new([("HOME", "/home/u"), ("A", "x"), ("EMPTY", "")])
    }

    #[test]
    fn expands() {
        let e = env();
        assert_eq!(expand("plain/path", &e).unwrap(), "plain/path");
        assert_eq!(expand("~", &e).unwrap(), "/home/u");
        assert_eq!(expand("~/a", &e).unwrap(), "/home/u/a");
        assert_eq!(expand("a~b", &e).unwrap(), "a~b");
        assert_eq!(expand("${A}/b", &e).unwrap(), "x/b");
        assert_eq!(expand("$A/b", &e).unwrap(), "x/b");
        assert_eq!(
            expand("$A_/b", &e).unwrap_err(),
            ExpandError::Unset("A_".into())
        );
        assert_eq!(expand("${A}_/b", &e).unwrap(), "x_/b");
        assert_eq!(expand("a$$b", &e).unwrap(), "a$b");
        assert_eq!(expand("[$EMPTY]", &e).unwrap(), "[]");
    }

    #[test]
    fn azl_cache_default() {
        let e = env();
        assert_eq!(
            expand("${AZL_CACHE}/k", &e).unwrap(),
            "/home/u/.cache/azl-edge/k"
        );
        let e = MapEnv::new([("HOME", "/h"), ("AZL_CACHE", "")]);
        assert_eq!(expand("$AZL_CACHE", &e).unwrap(), "/h/.cache/azl-edge");
        let e = MapEnv::new([("AZL_CACHE", "/c")]);
        assert_eq!(expand("$AZL_CACHE/x", &e).unwrap(), "/c/x");
    }

    #[test]
    fn errors() {
        let e = env();
        assert_eq!(
            expand("$NOPE", &e).unwrap_err(),
            ExpandError::Unset("NOPE".into())
        );
        assert_eq!(expand("${A", &e).unwrap_err(), ExpandError::Unterminated);
        assert_eq!(
            expand("${1A}", &e).unwrap_err(),
            ExpandError::BadName("1A".into())
        );
        assert_eq!(
            expand("$1", &e).unwrap_err(),
            ExpandError::BadName("1".into())
        );
        assert_eq!(expand("a$", &e).unwrap_err(), ExpandError::LoneDollar);
        assert_eq!(expand("a$/", &e).unwrap_err(), ExpandError::LoneDollar);
        assert_eq!(expand("~root/x", &e).unwrap_err(), ExpandError::TildeUser);
        assert_eq!(
            expand("~", &MapEnv::default()).unwrap_err(),
            ExpandError::Unset("HOME".into())
        );
    }
}
