//! [`ImagePath`]: a normalized absolute path inside the image (`/usr/bin/x`).
//!
//! Every path that ends up in the initramfs goes through [`ImagePath::parse`],
//! so the rest of imagegen never sees `..`, `.`, `//` or a trailing slash.
//! Ordering is component-wise, which puts a directory right before its
//! contents (`/a`, `/a/b`, `/a-b`): the order the cpio archive is written in.
#![forbid(unsafe_code)]
use std::cmp::Ordering;
use std::fmt;

/// Linux `PATH_MAX` (including the NUL).
const PATH_MAX: usize = 4096;
/// Linux `NAME_MAX`.
const NAME_MAX: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("{0:?} is not an absolute path (must start with `/`)")]
    NotAbsolute(String),
    #[error("{0:?} is not normalized (empty component: `//` or a trailing `/`)")]
    EmptyComponent(String),
    #[error("{0:?} contains a `.` or `..` component")]
    DotComponent(String),
    #[error("{0:?} contains a NUL byte")]
    Nul(String),
    #[error("path is longer than {PATH_MAX} bytes")]
    TooLong,
    #[error("{0:?} has a component longer than {NAME_MAX} bytes")]
    ComponentTooLong(String),
}

/// A normalized absolute path inside the image; `/` is the root.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ImagePath(String);

impl ImagePath {
    /// The root directory `/`.
    pub fn root() -> Self {
        Self("/".to_string())
    }

    /// Check and wrap `s`.
    pub fn parse(s: &str) -> Result<Self, PathError> {
        if s.contains('\0') {
            return Err(PathError::Nul(s.to_string()));
        }
        if !s.starts_with('/') {
            return Err(PathError::NotAbsolute(s.to_string()));
        }
        if s.len() >= PATH_MAX {
            return Err(PathError::TooLong);
        }
        if s == "/" {
            return Ok(Self::root());
        }
        for c in s[1..].split('/') {
            match c {
                "" => return Err(PathError::EmptyComponent(s.to_string())),
                "." | ".." => return Err(PathError::DotComponent(s.to_string())),
                c if c.len() > NAME_MAX => return Err(PathError::ComponentTooLong(s.to_string())),
                _ => {}
            }
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0 == "/"
    }

    /// The components (`/a/b` → `a`, `b`; `/` → none).
    pub fn components(&self) -> impl DoubleEndedIterator<Item = &str> + Clone {
        self.0[1..].split('/').filter(|c| !c.is_empty())
    }

    /// The last component (`None` for `/`).
    pub fn file_name(&self) -> Option<&str> {
        self.components().last()
    }

    /// The containing directory (`None` for `/`).
    pub fn parent(&self) -> Option<ImagePath> {
        if self.is_root() {
            return None;
        }
        let i = self.0.rfind('/').unwrap_or(0);
        Some(if i == 0 {
            Self::root()
        } else {
            Self(self.0[..i].to_string())
        })
    }

    /// `self/name`; `name` must be a single valid component.
    pub fn join(&self, name: &str) -> Result<ImagePath, PathError> {
        let s = if self.is_root() {
            format!("/{name}")
        } else {
            format!("{}/{name}", self.0)
        };
        if name.contains('/') || name.is_empty() {
            return Err(PathError::EmptyComponent(s));
        }
        Self::parse(&s)
    }

    /// Is `self` equal to `dir` or inside it (component-wise)?
    pub fn starts_with(&self, dir: &ImagePath) -> bool {
        let mut mine = self.components();
        dir.components().all(|c| mine.next() == Some(c))
    }

    /// Every proper ancestor, outermost first (`/a/b/c` → `/`, `/a`, `/a/b`).
    pub fn ancestors(&self) -> Vec<ImagePath> {
        let mut v = Vec::new();
        let mut p = self.parent();
        while let Some(q) = p {
            p = q.parent();
            v.push(q);
        }
        v.reverse();
        v
    }

    /// The path without its leading `/`, as stored in a cpio archive (`.` for `/`).
    pub fn archive_name(&self) -> &str {
        if self.is_root() {
            "."
        } else {
            &self.0[1..]
        }
    }
}

impl Ord for ImagePath {
    fn cmp(&self, other: &Self) -> Ordering {
        self.components().cmp(other.components())
    }
}

impl PartialOrd for ImagePath {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for ImagePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ImagePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> ImagePath {
        ImagePath::parse(s).unwrap()
    }

    #[test]
    fn parse_and_reject() {
        assert_eq!(p("/").as_str(), "/");
        assert_eq!(p("/a/b").as_str(), "/a/b");
        assert!(matches!(
            ImagePath::parse("a"),
            Err(PathError::NotAbsolute(_))
        ));
        assert!(matches!(
            ImagePath::parse(""),
            Err(PathError::NotAbsolute(_))
        ));
        assert!(matches!(
            ImagePath::parse("/a//b"),
            Err(PathError::EmptyComponent(_))
        ));
        assert!(matches!(
            ImagePath::parse("/a/"),
            Err(PathError::EmptyComponent(_))
        ));
        assert!(matches!(
            ImagePath::parse("/a/../b"),
            Err(PathError::DotComponent(_))
        ));
        assert!(matches!(
            ImagePath::parse("/./b"),
            Err(PathError::DotComponent(_))
        ));
        assert!(matches!(ImagePath::parse("/a\0"), Err(PathError::Nul(_))));
        let long = format!("/{}", "x".repeat(256));
        assert!(matches!(
            ImagePath::parse(&long),
            Err(PathError::ComponentTooLong(_))
        ));
    }

    #[test]
    fn navigation() {
        assert_eq!(p("/a/b").parent(), Some(p("/a")));
        assert_eq!(p("/a").parent(), Some(p("/")));
        assert_eq!(p("/").parent(), None);
        assert_eq!(p("/a/b").file_name(), Some("b"));
        assert_eq!(p("/").join("x").unwrap(), p("/x"));
        assert_eq!(p("/a").join("x").unwrap(), p("/a/x"));
        assert!(p("/a").join("x/y").is_err());
        assert!(p("/a/b").starts_with(&p("/a")));
        assert!(p("/a").starts_with(&p("/a")));
        assert!(p("/a").starts_with(&p("/")));
        assert!(!p("/ab").starts_with(&p("/a")));
        assert_eq!(p("/a/b/c").ancestors(), vec![p("/"), p("/a"), p("/a/b")]);
        assert_eq!(p("/a/b").archive_name(), "a/b");
        assert_eq!(p("/").archive_name(), ".");
    }

    #[test]
    fn tree_order() {
        let mut v = vec![p("/a-b"), p("/a/b"), p("/a"), p("/"), p("/B")];
        v.sort();
        assert_eq!(v, vec![p("/"), p("/B"), p("/a"), p("/a/b"), p("/a-b")]);
    }
}
