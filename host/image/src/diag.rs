//! Problems tied to a `file:line` ([`Located`]), and the collector
//! ([`Diagnostics`]) that gathers them so one run reports every problem at
//! once. Generic over the kind of problem: each stage that checks part of
//! a config owns its own problem type, and the place that runs several
//! stages (the pipeline) owns the kind that combines them.
use crate::source::Loc;
use std::fmt;

/// One problem at a place in a configuration file.
#[derive(Debug, thiserror::Error)]
#[error("{loc}: {kind}")]
pub struct Located<K> {
    pub loc: Loc,
    pub kind: K,
}

/// Several problems, printed one per line.
#[derive(Debug)]
pub struct Problems<K>(pub Vec<Located<K>>);

impl<K: fmt::Display + fmt::Debug> fmt::Display for Problems<K> {
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

impl<K: fmt::Display + fmt::Debug> std::error::Error for Problems<K> {}

impl<K> From<Located<K>> for Problems<K> {
    fn from(e: Located<K>) -> Self {
        Self(vec![e])
    }
}

impl<K> Problems<K> {
    /// The same problems as a wider kind (a stage's into the pipeline's).
    pub fn widen<J: From<K>>(self) -> Problems<J> {
        Problems(
            self.0
                .into_iter()
                .map(|e| Located {
                    loc: e.loc,
                    kind: e.kind.into(),
                })
                .collect(),
        )
    }
}

/// Collects problems of kind `K` while a config is checked.
#[derive(Debug)]
pub struct Diagnostics<K> {
    errors: Vec<Located<K>>,
}

impl<K> Default for Diagnostics<K> {
    fn default() -> Self {
        Self { errors: Vec::new() }
    }
}

impl<K> Diagnostics<K> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, loc: Loc, kind: impl Into<K>) {
        self.errors.push(Located {
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
    pub fn finish(self) -> Result<(), Problems<K>> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Problems(self.errors))
        }
    }
}
