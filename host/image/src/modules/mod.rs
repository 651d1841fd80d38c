//! Kernel modules for the initramfs: from the board's list of names to the
//! module files (dependencies included, transitively) in load order,
//! decompressed, with names built into the kernel skipped.
pub mod decompress;
pub mod index;
pub mod modinfo;

use crate::kernel::Kernel;
use index::{LoadedModule, ModuleIndex};
use std::collections::HashMap;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error("kernel module {module:?} ({needed_by}): the kernel directory {kernel_dir} has no lib/modules/<release>/ to find it in")]
    NoModuleTree {
        module: String,
        needed_by: String,
        kernel_dir: PathBuf,
    },
    #[error("kernel module {module:?} ({needed_by}) is neither in {kernel_dir}/lib/modules/{release}/ nor built in (modules.builtin)")]
    NotFound {
        module: String,
        needed_by: String,
        kernel_dir: PathBuf,
        release: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Modinfo {
        path: PathBuf,
        source: modinfo::ModinfoError,
    },
    #[error("{path}: module is built for {found:?}, the board is {expected}")]
    WrongArch {
        path: PathBuf,
        found: object::Architecture,
        expected: String,
    },
    #[error(
        "{path}: module was built for kernel {found:?}, but the kernel release is {release:?}"
    )]
    WrongRelease {
        path: PathBuf,
        found: String,
        release: String,
    },
    #[error("kernel modules depend on each other in a cycle: {}", .0.join(" → "))]
    Cycle(Vec<String>),
}

/// A module to put in the initramfs.
#[derive(Debug, Clone)]
pub struct Module {
    pub name: String,
    /// Absolute path in the initramfs (`/lib/modules/<release>/…/x.ko`).
    pub install_path: String,
    /// Where it came from (for messages).
    pub source: PathBuf,
    /// Uncompressed ELF.
    pub data: Vec<u8>,
}

/// The modules of a build.
#[derive(Debug, Clone, Default)]
pub struct ModuleSet {
    pub release: Option<String>,
    /// In load order: every module after its dependencies.
    pub modules: Vec<Module>,
    /// Requested names (or dependencies) the kernel has built in.
    pub builtin: Vec<String>,
}

enum State {
    Visiting,
    Done,
}

struct Resolver<'a> {
    kernel: &'a Kernel,
    index: ModuleIndex,
    arch: object::Architecture,
    arch_name: &'a str,
    state: HashMap<String, State>,
    stack: Vec<String>,
    out: ModuleSet,
}

fn object_arch(arch: &str) -> object::Architecture {
    match arch {
        "aarch64" => object::Architecture::Aarch64,
        _ => object::Architecture::Unknown,
    }
}

impl Resolver<'_> {
    fn visit(&mut self, name: &str, needed_by: &str) -> Result<(), ModuleError> {
        if self.index.is_builtin(name) {
            if !self.out.builtin.iter().any(|b| b == name) {
                self.out.builtin.push(name.to_string());
            }
            return Ok(());
        }
        match self.state.get(name) {
            Some(State::Done) => return Ok(()),
            Some(State::Visiting) => {
                let start = self.stack.iter().position(|s| s == name).unwrap_or(0);
                let mut cycle = self.stack.get(start..).unwrap_or_default().to_vec();
                cycle.push(name.to_string());
                return Err(ModuleError::Cycle(cycle));
            }
            None => {}
        }
        let m = self
            .index
            .find(name)?
            .ok_or_else(|| ModuleError::NotFound {
                module: name.to_string(),
                needed_by: needed_by.to_string(),
                kernel_dir: self.kernel.dir.clone(),
                release: self.index.release().to_string(),
            })?;
        self.check(&m)?;
        self.state.insert(name.to_string(), State::Visiting);
        self.stack.push(name.to_string());
        for dep in &m.info.depends {
            self.visit(dep, &format!("needed by module {name}"))?;
        }
        // Soft dependencies (e.g. ext4's `pre: crypto-crc32c`) are loaded
        // first when the kernel has them as modules; built in or absent is fine.
        for soft in &m.info.softdep_pre {
            if self.index.is_builtin(soft) || self.index.is_builtin_alias(soft) {
                continue;
            }
            let provider = match self.index.find(soft)? {
                Some(p) => Some(p.name),
                None => self.index.find_alias(soft)?.map(|p| p.name),
            };
            if let Some(p) = provider {
                self.visit(&p, &format!("soft dependency of module {name}"))?;
            }
        }
        self.stack.pop();
        self.state.insert(name.to_string(), State::Done);
        let release = self.index.release();
        self.out.modules.push(Module {
            name: m.name.clone(),
            install_path: format!(
                "{}/{release}/{}",
                azl_formats::paths::MODULES_DIR,
                m.install_rel_path
            ),
            source: self
                .kernel
                .dir
                .join("lib/modules")
                .join(release)
                .join(&m.rel_path),
            data: m.data,
        });
        Ok(())
    }

    fn check(&self, m: &LoadedModule) -> Result<(), ModuleError> {
        let path = || {
            self.kernel
                .dir
                .join("lib/modules")
                .join(self.index.release())
                .join(&m.rel_path)
        };
        if m.info.arch != self.arch {
            return Err(ModuleError::WrongArch {
                path: path(),
                found: m.info.arch,
                expected: self.arch_name.to_string(),
            });
        }
        if let Some(vm) = &m.info.vermagic {
            let built_for = vm.split_whitespace().next().unwrap_or("");
            if built_for != self.index.release() {
                return Err(ModuleError::WrongRelease {
                    path: path(),
                    found: built_for.to_string(),
                    release: self.index.release().to_string(),
                });
            }
        }
        Ok(())
    }
}

/// Resolve the board's module `names` (normalized) against `kernel`.
/// `board` and `arch` are for messages and the ELF machine check.
pub fn resolve(
    kernel: &Kernel,
    names: &[String],
    board: &str,
    arch: &str,
) -> Result<ModuleSet, ModuleError> {
    let Some(release) = &kernel.release else {
        return match names.first() {
            None => Ok(ModuleSet::default()),
            Some(n) => Err(ModuleError::NoModuleTree {
                module: n.clone(),
                needed_by: format!("listed by board {board}"),
                kernel_dir: kernel.dir.clone(),
            }),
        };
    };
    let mut r = Resolver {
        kernel,
        index: ModuleIndex::build(&release.dir, &release.name)?,
        arch: object_arch(arch),
        arch_name: arch,
        state: HashMap::new(),
        stack: Vec::new(),
        out: ModuleSet {
            release: Some(release.name.clone()),
            ..Default::default()
        },
    };
    for n in names {
        r.visit(n, &format!("listed by board {board}"))?;
    }
    Ok(r.out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::modinfo::tests::synthetic_ko;
    use super::*;
    use object::Architecture;
    use std::io::Write;
    use std::path::Path;

    /// `$AZL_CACHE/kernels/debian-6.1`, which scripts/kernels.sh produces
    /// (scripts/test.sh runs it before the unit tests). Missing, the test
    /// fails: it must not pass without having looked at a real kernel.
    pub(crate) fn debian_kernel() -> PathBuf {
        let cache = crate::expand::expand("${AZL_CACHE}", &crate::expand::ProcessEnv)
            .unwrap_or_else(|e| panic!("cannot find the kernel cache ($AZL_CACHE): {e}"));
        let d = Path::new(&cache).join("kernels/debian-6.1");
        assert!(
            d.join("lib/modules").is_dir(),
            "no Debian kernel at {}: run `scripts/kernels.sh debian` first",
            d.display()
        );
        d
    }

    const REL: &str = "6.1.0-test";

    fn put(root: &Path, rel: &str, data: &[u8]) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }

    fn ko(name: &str, depends: &str) -> Vec<u8> {
        synthetic_ko(
            Architecture::Aarch64,
            &[
                &format!("name={name}"),
                &format!("depends={depends}"),
                &format!("vermagic={REL} SMP mod_unload aarch64"),
            ],
        )
    }

    /// A kernel dir with: dm-verity (.ko.xz) → dm-bufio (.ko.zst), dm-mod (.ko);
    /// dm-bufio → dm-mod; virtio_blk built in; "renamed" whose file name differs.
    fn fake_kernel() -> (tempfile::TempDir, Kernel) {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("lib/modules").join(REL);
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
        xz.write_all(&ko("dm_verity", "dm-bufio,dm-mod")).unwrap();
        put(
            &root,
            "kernel/drivers/md/dm-verity.ko.xz",
            &xz.finish().unwrap(),
        );
        let zst = zstd::stream::encode_all(&ko("dm_bufio", "dm-mod")[..], 3).unwrap();
        put(&root, "kernel/drivers/md/dm-bufio.ko.zst", &zst);
        put(&root, "kernel/drivers/md/dm-mod.ko", &ko("dm_mod", ""));
        put(&root, "extra/other-file.ko", &ko("renamed", "dm_mod"));
        put(
            &root,
            "kernel/bad/wrongarch.ko",
            &synthetic_ko(Architecture::X86_64, &["name=wrongarch"]),
        );
        put(
            &root,
            "kernel/bad/old.ko",
            &synthetic_ko(Architecture::Aarch64, &["name=old", "vermagic=5.10.0 SMP"]),
        );
        put(
            &root,
            "kernel/bad/needs_missing.ko",
            &ko("needs_missing", "ghost"),
        );
        put(
            &root,
            "modules.builtin",
            b"kernel/drivers/block/virtio_blk.ko\n",
        );
        put(t.path(), "boot/Image", &crate::kernel::tests::fake_image());
        let k = Kernel::open(t.path()).unwrap();
        (t, k)
    }

    fn names(s: &ModuleSet) -> Vec<&str> {
        s.modules.iter().map(|m| m.name.as_str()).collect()
    }

    #[test]
    fn resolves_in_dependency_order() {
        let (_t, k) = fake_kernel();
        let want = [
            "virtio-blk".replace('-', "_"),
            "dm_verity".into(),
            "renamed".into(),
        ];
        let s = resolve(&k, &want, "test", "aarch64").unwrap();
        assert_eq!(names(&s), ["dm_mod", "dm_bufio", "dm_verity", "renamed"]);
        assert_eq!(s.builtin, ["virtio_blk"]);
        assert_eq!(
            s.modules[1].install_path,
            format!("/lib/modules/{REL}/kernel/drivers/md/dm-bufio.ko")
        );
        assert_eq!(
            s.modules[3].install_path,
            format!("/lib/modules/{REL}/extra/other-file.ko")
        );
        assert_eq!(&s.modules[2].data[..4], b"\x7fELF", "decompressed");
        assert_eq!(
            modinfo::parse(&s.modules[2].data).unwrap().name.unwrap(),
            "dm_verity"
        );
    }

    #[test]
    fn errors() {
        let (_t, k) = fake_kernel();
        let e = resolve(&k, &["nope".into()], "test", "aarch64")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("kernel module \"nope\" (listed by board test) is neither in "),
            "{e}"
        );
        assert!(
            e.contains(&format!("/lib/modules/{REL}/ nor built in")),
            "{e}"
        );
        let e = resolve(&k, &["needs_missing".into()], "t", "aarch64")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"ghost\" (needed by module needs_missing)"),
            "{e}"
        );
        let e = resolve(&k, &["wrongarch".into()], "t", "aarch64").unwrap_err();
        assert!(matches!(e, ModuleError::WrongArch { .. }), "{e}");
        let e = resolve(&k, &["old".into()], "t", "aarch64").unwrap_err();
        assert!(e.to_string().contains("built for kernel \"5.10.0\""), "{e}");
    }

    #[test]
    fn cycle() {
        let (t, _) = fake_kernel();
        let root = t.path().join("lib/modules").join(REL);
        put(&root, "a.ko", &ko("a", "b"));
        put(&root, "b.ko", &ko("b", "a"));
        let k = Kernel::open(t.path()).unwrap();
        let e = resolve(&k, &["a".into()], "t", "aarch64")
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("a → b → a"), "{e}");
    }

    #[test]
    fn no_module_tree() {
        let t = tempfile::tempdir().unwrap();
        put(t.path(), "boot/Image", &crate::kernel::tests::fake_image());
        let k = Kernel::open(t.path()).unwrap();
        assert!(resolve(&k, &[], "t", "aarch64").unwrap().modules.is_empty());
        assert!(matches!(
            resolve(&k, &["x".into()], "t", "aarch64"),
            Err(ModuleError::NoModuleTree { .. })
        ));
    }

    /// The repo's qemu-virt module list against Debian's real kernel.
    #[test]
    fn real_debian_kernel() {
        let dir = debian_kernel();
        let k = Kernel::open(&dir).unwrap();
        let b = crate::board::resolve(
            &crate::config::BoardRef::Name("qemu-virt".into()),
            &crate::board::default_boards_dir(),
        )
        .unwrap();
        let s = resolve(&k, &b.modules, &b.name, &b.arch).unwrap();
        let n = names(&s);
        let pos = |x: &str| {
            n.iter()
                .position(|m| *m == x)
                .unwrap_or_else(|| panic!("{x} in {n:?}"))
        };
        assert!(pos("dm_mod") < pos("dm_verity"));
        assert!(pos("dm_bufio") < pos("dm_verity"));
        assert!(pos("jbd2") < pos("ext4") && pos("mbcache") < pos("ext4"));
        assert!(pos("fat") < pos("vfat"));
        assert!(pos("failover") < pos("net_failover") && pos("net_failover") < pos("virtio_net"));
        for m in &s.modules {
            assert!(m.install_path.ends_with(".ko"), "{}", m.install_path);
        }
    }
}
