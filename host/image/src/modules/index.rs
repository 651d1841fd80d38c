//! The module index of one kernel release: which module files exist under
//! `lib/modules/<release>/`, which names are built in (`modules.builtin`),
//! and each module's `.modinfo`, read on demand and remembered.
//!
//! The directory is walked once. A module is looked up by its file name
//! first (the kernel derives `KBUILD_MODNAME` from it, so they agree in
//! practice) and confirmed by the `name=` in its `.modinfo`; only if that
//! fails are all modules' `.modinfo` read, once, to find the name. This keeps
//! a build against Debian's ~4000 compressed modules to a handful of reads.
use super::decompress::{classify, read_module};
use super::modinfo::{self, normalize, ModInfo};
use super::ModuleError;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// A module file, read and decompressed.
#[derive(Debug, Clone)]
pub struct LoadedModule {
    /// Canonical name (`_`).
    pub name: String,
    /// Path relative to the release dir, as shipped (maybe `.ko.xz`).
    pub rel_path: String,
    /// The same with the compression suffix removed (`….ko`).
    pub install_rel_path: String,
    pub info: ModInfo,
    /// Uncompressed ELF.
    pub data: Vec<u8>,
}

#[derive(Debug)]
pub struct ModuleIndex {
    root: PathBuf,
    release: String,
    /// normalized file stem → relative paths (sorted).
    by_stem: BTreeMap<String, Vec<String>>,
    builtin: BTreeSet<String>,
    /// rel_path → modinfo, for every module read so far.
    infos: HashMap<String, ModInfo>,
    /// modinfo name → rel_path, after a full scan.
    by_name: Option<BTreeMap<String, String>>,
    /// normalized alias → module name, after a full scan.
    by_alias: BTreeMap<String, String>,
    /// Aliases of built-in modules (`modules.builtin.modinfo`).
    builtin_aliases: BTreeSet<String>,
}

impl ModuleIndex {
    /// Walk `root` (= `lib/modules/<release>`) and read `modules.builtin`.
    pub fn build(root: &Path, release: &str) -> Result<Self, ModuleError> {
        let mut by_stem: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut stack = vec![PathBuf::new()];
        while let Some(rel) = stack.pop() {
            let dir = root.join(&rel);
            let rd = std::fs::read_dir(&dir).map_err(|source| ModuleError::Io {
                path: dir.clone(),
                source,
            })?;
            for e in rd {
                let e = e.map_err(|source| ModuleError::Io {
                    path: dir.clone(),
                    source,
                })?;
                let Some(name) = e.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                let ft = e.file_type().map_err(|source| ModuleError::Io {
                    path: e.path(),
                    source,
                })?;
                // Debian's build/ and source/ are symlinks into headers: not followed.
                if ft.is_dir() {
                    stack.push(rel.join(&name));
                } else if ft.is_file() {
                    if let Some((stem, _)) = classify(&name) {
                        let rel_path = rel.join(&name);
                        let Some(rel_path) = rel_path.to_str() else {
                            continue;
                        };
                        by_stem
                            .entry(normalize(stem))
                            .or_default()
                            .push(rel_path.to_string());
                    }
                }
            }
        }
        for v in by_stem.values_mut() {
            v.sort();
        }
        let builtin_file = root.join("modules.builtin");
        let builtin = match std::fs::read_to_string(&builtin_file) {
            Ok(text) => parse_builtin(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeSet::new(),
            Err(source) => {
                return Err(ModuleError::Io {
                    path: builtin_file,
                    source,
                })
            }
        };
        let builtin_aliases = match std::fs::read(root.join("modules.builtin.modinfo")) {
            Ok(bytes) => parse_builtin_aliases(&bytes),
            Err(_) => BTreeSet::new(),
        };
        Ok(Self {
            root: root.to_path_buf(),
            release: release.to_string(),
            by_stem,
            builtin,
            infos: HashMap::new(),
            by_name: None,
            by_alias: BTreeMap::new(),
            builtin_aliases,
        })
    }

    pub fn release(&self) -> &str {
        &self.release
    }

    /// Number of module files found.
    pub fn file_count(&self) -> usize {
        self.by_stem.values().map(Vec::len).sum()
    }

    /// Is `name` (normalized) built into the kernel?
    pub fn is_builtin(&self, name: &str) -> bool {
        self.builtin.contains(name)
    }

    fn load(&mut self, rel_path: &str) -> Result<LoadedModule, ModuleError> {
        let path = self.root.join(rel_path);
        let data = read_module(&path).map_err(|source| ModuleError::Io {
            path: path.clone(),
            source,
        })?;
        let info = modinfo::parse(&data).map_err(|source| ModuleError::Modinfo { path, source })?;
        self.infos.insert(rel_path.to_string(), info.clone());
        let stem = Path::new(rel_path)
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(classify)
            .map_or(rel_path, |(s, _)| s);
        let install_rel_path = match rel_path.rfind(".ko") {
            Some(i) => format!("{}.ko", &rel_path[..i]),
            None => rel_path.to_string(),
        };
        Ok(LoadedModule {
            name: info.name.clone().unwrap_or_else(|| normalize(stem)),
            rel_path: rel_path.to_string(),
            install_rel_path,
            info,
            data,
        })
    }

    /// The module called `name` (normalized), or `None` if no file provides it.
    pub fn find(&mut self, name: &str) -> Result<Option<LoadedModule>, ModuleError> {
        let candidates = self.by_stem.get(name).cloned().unwrap_or_default();
        for rel in &candidates {
            let m = self.load(rel)?;
            if m.name == name {
                return Ok(Some(m));
            }
        }
        if self.by_name.is_none() {
            self.scan_all()?;
        }
        match self.by_name.as_ref().and_then(|m| m.get(name)).cloned() {
            Some(rel) => self.load(&rel).map(Some),
            None => Ok(None),
        }
    }

    /// Is `alias` (normalized) provided by a built-in module?
    pub fn is_builtin_alias(&self, alias: &str) -> bool {
        self.builtin_aliases.contains(alias)
    }

    /// The module providing `alias` (normalized), if any (full scan on first use).
    pub fn find_alias(&mut self, alias: &str) -> Result<Option<LoadedModule>, ModuleError> {
        if self.by_name.is_none() {
            self.scan_all()?;
        }
        match self.by_alias.get(alias).cloned() {
            Some(name) => self.find(&name),
            None => Ok(None),
        }
    }

    /// Read every module's `.modinfo` (the slow path, at most once).
    fn scan_all(&mut self) -> Result<(), ModuleError> {
        let mut by_name = BTreeMap::new();
        let all: Vec<(String, String)> = self
            .by_stem
            .iter()
            .flat_map(|(stem, v)| v.iter().map(move |r| (stem.clone(), r.clone())))
            .collect();
        for (stem, rel) in all {
            let info = match self.infos.get(&rel) {
                Some(i) => i.clone(),
                None => self.load(&rel)?.info,
            };
            let name = info.name.clone().unwrap_or(stem);
            for a in &info.aliases {
                self.by_alias
                    .entry(normalize(a))
                    .or_insert_with(|| name.clone());
            }
            by_name.entry(name).or_insert(rel);
        }
        self.by_name = Some(by_name);
        Ok(())
    }
}

/// Aliases of built-in modules from `modules.builtin.modinfo`
/// (NUL-separated `module.alias=value` records), normalized.
pub fn parse_builtin_aliases(bytes: &[u8]) -> BTreeSet<String> {
    bytes
        .split(|b| *b == 0)
        .filter_map(|rec| std::str::from_utf8(rec).ok())
        .filter_map(|rec| rec.split_once(".alias=").map(|(_, a)| normalize(a)))
        .collect()
}

/// Names in `modules.builtin` (lines like `kernel/drivers/block/virtio_blk.ko`).
pub fn parse_builtin(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| {
            let file = l.trim().rsplit('/').next()?;
            let stem = file.strip_suffix(".ko").unwrap_or(file);
            (!stem.is_empty()).then(|| normalize(stem))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_names() {
        let s = parse_builtin("kernel/drivers/md/dm-verity.ko\nkernel/fs/ext4/ext4.ko\n\n");
        assert!(s.contains("dm_verity") && s.contains("ext4"));
        assert_eq!(s.len(), 2);
    }
}
