//! Source text of a TOML file (image config or board file) and the
//! `file:line` locations that every configuration error carries.
//!
//! Spans from `toml::Spanned` are byte ranges; [`SourceFile::loc`] turns them
//! into line numbers so that errors read `demo.toml:14: service "x": …`.
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A TOML file as read from disk, kept so that spans can be mapped to lines.
#[derive(Debug, Clone)]
pub struct SourceFile {
    path: PathBuf,
    text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    /// Read `path`. The path is kept as given (for messages).
    pub fn read(path: &Path) -> Result<Self, std::io::Error> {
        let text = std::fs::read_to_string(path)?;
        Ok(Self::new(path.to_path_buf(), text))
    }

    /// A source held in memory (tests, or a file read some other way).
    pub fn new(path: PathBuf, text: String) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            path,
            text,
            line_starts,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The directory relative paths in this file are resolved against.
    pub fn dir(&self) -> &Path {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    }

    /// 1-based line of byte `offset`.
    pub fn line_of(&self, offset: usize) -> usize {
        match self.line_starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }

    /// Location of the start of `span`.
    pub fn loc(&self, span: Range<usize>) -> Loc {
        Loc {
            file: self.path.display().to_string(),
            line: Some(self.line_of(span.start)),
        }
    }

    /// Location naming the file only (no span known).
    pub fn file_loc(&self) -> Loc {
        Loc {
            file: self.path.display().to_string(),
            line: None,
        }
    }

    /// Location of a toml error (its span, when it has one).
    pub fn loc_of_toml_error(&self, e: &toml::de::Error) -> Loc {
        match e.span() {
            Some(span) => self.loc(span),
            None => self.file_loc(),
        }
    }
}

/// `file:line` (or just `file`), printed in front of configuration errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loc {
    pub file: String,
    pub line: Option<usize>,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}", self.file),
            None => f.write_str(&self.file),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let s = SourceFile::new("x.toml".into(), "a\nbc\n\nd".into());
        assert_eq!(s.line_of(0), 1);
        assert_eq!(s.line_of(1), 1);
        assert_eq!(s.line_of(2), 2);
        assert_eq!(s.line_of(5), 3);
        assert_eq!(s.line_of(6), 4);
        assert_eq!(s.loc(6..7).to_string(), "x.toml:4");
        assert_eq!(s.file_loc().to_string(), "x.toml");
        assert_eq!(s.dir(), Path::new("."));
    }
}
