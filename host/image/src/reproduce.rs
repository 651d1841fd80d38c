//! `imagegen build --verify-reproducible`: build the same inputs a second
//! time into a scratch directory elsewhere and compare every output file
//! byte for byte, naming the first difference.
use crate::expand::Env;
use crate::pipeline::{self, BuildError, BuildOptions};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ReproduceError {
    #[error("second build failed: {0}")]
    Build(#[from] BuildError),
    #[error("scratch directory: {0}")]
    Scratch(std::io::Error),
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{name} differs between the two builds (first difference at byte {offset}; sizes {a} and {b})")]
    Differs {
        name: String,
        offset: u64,
        a: u64,
        b: u64,
    },
    #[error("{name} exists in one build only")]
    Missing { name: String },
}

fn list(dir: &Path) -> Result<Vec<String>, ReproduceError> {
    let rd = std::fs::read_dir(dir).map_err(|source| ReproduceError::Read {
        path: dir.into(),
        source,
    })?;
    let mut names: Vec<String> = rd
        .flatten()
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    Ok(names)
}

fn read(path: PathBuf) -> Result<Vec<u8>, ReproduceError> {
    std::fs::read(&path).map_err(|source| ReproduceError::Read { path, source })
}

/// Rebuild and compare with `out`; returns how many files matched.
pub fn verify(
    opts: &BuildOptions,
    env: &dyn Env,
    exe: Option<&Path>,
    out: &Path,
) -> Result<usize, ReproduceError> {
    let scratch = tempfile::Builder::new()
        .prefix("imagegen-reproduce-")
        .tempdir()
        .map_err(ReproduceError::Scratch)?;
    let second = scratch.path().join("out");
    let image = pipeline::compile(opts, env, exe)?;
    pipeline::write(&image, &second)?;
    let (a, b) = (list(out)?, list(&second)?);
    let only_one = a
        .iter()
        .filter(|n| !b.contains(n))
        .chain(b.iter().filter(|n| !a.contains(n)));
    if let Some(name) = only_one.into_iter().next() {
        return Err(ReproduceError::Missing { name: name.clone() });
    }
    for name in &a {
        let (x, y) = (read(out.join(name))?, read(second.join(name))?);
        if x != y {
            let offset = x
                .iter()
                .zip(&y)
                .position(|(p, q)| p != q)
                .unwrap_or(x.len().min(y.len()));
            return Err(ReproduceError::Differs {
                name: name.clone(),
                offset: offset as u64,
                a: x.len() as u64,
                b: y.len() as u64,
            });
        }
    }
    Ok(a.len())
}
