//! The image config's `[[file]]` entries: host files, symlinks and empty
//! directories placed into the [`FileSet`], with their checks (paths, modes,
//! sources, conflicts with each other and with imagegen's own layout).
use crate::config::{values::parse_mode, Config, ConfigErrorKind, FileEntry};
use crate::diag::Diagnostics;
use crate::expand::Env;
use crate::rootfs::{Conflict, Content, FileSet, Kind, Node, Origin};
use crate::skeleton::BOOT_MOUNTS;
use azl_formats::paths::MODULES_DIR;
use azl_imagepath::{ImagePath, PathError};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use toml::Spanned;

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("file dst: {0}")]
    BadDst(PathError),
    #[error(
        "file {dst:?}: init mounts a fresh filesystem on {mount} at boot, which would hide it"
    )]
    Hidden { dst: String, mount: &'static str },
    #[error("file {dst:?}: {MODULES_DIR} is filled by imagegen with the board's kernel modules; list modules in the board file instead")]
    ModulesDir { dst: String },
    #[error("file {dst:?}: missing src (or `symlink = \"target\"`, or `dir = true`)")]
    MissingSource { dst: String },
    #[error("file {dst:?}: give only one of src, symlink and dir = true")]
    SeveralSources { dst: String },
    #[error("file {dst:?}: src {src}: {source}")]
    Src {
        dst: String,
        src: PathBuf,
        source: std::io::Error,
    },
    #[error("file {dst:?}: src {src} is not a regular file")]
    SrcNotFile { dst: String, src: PathBuf },
    #[error("file {dst:?}: mode {mode:?} is not an octal mode like \"0755\" (at most \"07777\")")]
    BadMode { dst: String, mode: String },
    #[error("file {dst:?}: a symlink has no mode of its own; remove `mode`")]
    ModeOnSymlink { dst: String },
    #[error("file {dst:?}: symlink target must be 1-4095 bytes without NUL")]
    BadTarget { dst: String },
    #[error("file {dst:?}: {source}")]
    Conflict { dst: String, source: Conflict },
}

/// What a `[[file]]` entry asks for, before mode and owner.
enum Wanted {
    Host(PathBuf, bool),
    Symlink(String),
    Dir,
}

/// Check every `[[file]]` entry and add the valid ones to `set`.
pub fn add_config_files<K: From<FileError> + From<ConfigErrorKind>>(
    cfg: &Config,
    env: &dyn Env,
    set: &mut FileSet,
    diags: &mut Diagnostics<K>,
) {
    for entry in &cfg.doc.file {
        add_one(cfg, entry, env, set, diags);
    }
}

fn add_one<K: From<FileError> + From<ConfigErrorKind>>(
    cfg: &Config,
    entry: &Spanned<FileEntry>,
    env: &dyn Env,
    set: &mut FileSet,
    diags: &mut Diagnostics<K>,
) {
    let f = entry.get_ref();
    let loc = |span: std::ops::Range<usize>| cfg.source.loc(span);
    let dst_str = f.dst.get_ref().clone();
    let dst = match ImagePath::parse(&dst_str) {
        Ok(p) if p.is_root() => {
            diags.push(
                loc(f.dst.span()),
                FileError::Conflict {
                    dst: dst_str,
                    source: Conflict::Generated {
                        path: p,
                        what: "the root directory".into(),
                    },
                },
            );
            return;
        }
        Ok(p) => p,
        Err(e) => {
            diags.push(loc(f.dst.span()), FileError::BadDst(e));
            return;
        }
    };
    if let Some(mount) = BOOT_MOUNTS
        .iter()
        .find(|m| dst.starts_with(&ImagePath::parse(m).unwrap_or_else(|_| ImagePath::root())))
    {
        diags.push(
            loc(f.dst.span()),
            FileError::Hidden {
                dst: dst_str,
                mount,
            },
        );
        return;
    }
    if ImagePath::parse(MODULES_DIR).is_ok_and(|m| dst.starts_with(&m)) {
        diags.push(loc(f.dst.span()), FileError::ModulesDir { dst: dst_str });
        return;
    }

    let dir = f.dir.as_ref().filter(|d| *d.get_ref());
    let given = [f.src.is_some(), f.symlink.is_some(), dir.is_some()];
    let wanted = match given.iter().filter(|g| **g).count() {
        0 => {
            diags.push(loc(entry.span()), FileError::MissingSource { dst: dst_str });
            return;
        }
        1 => {
            if let Some(src) = &f.src {
                let Some(path) = cfg.resolve_path("src", src, env, diags) else {
                    return;
                };
                match std::fs::metadata(&path) {
                    Ok(m) if m.is_file() => {
                        let exec = m.permissions().mode() & 0o111 != 0;
                        Wanted::Host(path, exec)
                    }
                    Ok(_) => {
                        diags.push(
                            loc(src.span()),
                            FileError::SrcNotFile {
                                dst: dst_str,
                                src: path,
                            },
                        );
                        return;
                    }
                    Err(source) => {
                        diags.push(
                            loc(src.span()),
                            FileError::Src {
                                dst: dst_str,
                                src: path,
                                source,
                            },
                        );
                        return;
                    }
                }
            } else if let Some(t) = &f.symlink {
                let t = t.get_ref();
                if t.is_empty() || t.len() >= 4096 || t.contains('\0') {
                    diags.push(
                        loc(f.symlink.as_ref().map_or(0..0, Spanned::span)),
                        FileError::BadTarget { dst: dst_str },
                    );
                    return;
                }
                Wanted::Symlink(t.clone())
            } else {
                Wanted::Dir
            }
        }
        _ => {
            diags.push(
                loc(entry.span()),
                FileError::SeveralSources { dst: dst_str },
            );
            return;
        }
    };

    let mode = match (&f.mode, &wanted) {
        (Some(m), Wanted::Symlink(_)) => {
            diags.push(loc(m.span()), FileError::ModeOnSymlink { dst: dst_str });
            return;
        }
        (Some(m), _) => match parse_mode(m.get_ref()) {
            Some(mode) => mode,
            None => {
                diags.push(
                    loc(m.span()),
                    FileError::BadMode {
                        dst: dst_str,
                        mode: m.get_ref().clone(),
                    },
                );
                return;
            }
        },
        (None, Wanted::Host(_, true) | Wanted::Dir) => 0o755,
        (None, Wanted::Host(_, false)) => 0o644,
        (None, Wanted::Symlink(_)) => 0o777,
    };
    let kind = match wanted {
        Wanted::Host(p, _) => Kind::File(Content::Host(p)),
        Wanted::Symlink(t) => Kind::Symlink(t),
        Wanted::Dir => Kind::Dir,
    };
    let node = Node {
        kind,
        mode,
        uid: f.uid.as_ref().map_or(0, |u| *u.get_ref()),
        gid: f.gid.as_ref().map_or(0, |g| *g.get_ref()),
        origin: Origin::Config(loc(f.dst.span())),
    };
    if let Err(source) = set.insert(dst, node) {
        diags.push(
            loc(f.dst.span()),
            FileError::Conflict {
                dst: dst_str,
                source,
            },
        );
    }
}
