//! Kernel modules: load the `.ko` files the boot config lists, in the order
//! given (imagegen resolved dependencies, dependencies first), with
//! `finit_module`. A module already present (built in, or loaded) is fine.
use nix::errno::Errno;
use nix::kmod::{finit_module, ModuleInitFlags};
use std::fmt;
use std::fs::File;

/// A module that failed to load.
#[derive(Debug)]
pub struct ModuleError {
    pub path: String,
    pub errno: Errno,
}

impl fmt::Display for ModuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hint = match self.errno {
            Errno::ENOENT => " (file missing from the initramfs)",
            Errno::ENOEXEC => " (not a module for this kernel: wrong arch or version)",
            Errno::ENOKEY | Errno::EKEYREJECTED => " (signature rejected)",
            Errno::EINVAL => " (invalid module or parameters; see dmesg)",
            _ => "",
        };
        write!(
            f,
            "cannot load module {}: {}{hint}",
            self.path,
            self.errno.desc()
        )
    }
}

fn load_one(path: &str) -> Result<bool, ModuleError> {
    let err = |errno| ModuleError {
        path: path.to_string(),
        errno,
    };
    let file = File::open(path).map_err(|e| err(crate::errno::of(&e)))?;
    match finit_module(&file, c"", ModuleInitFlags::empty()) {
        Ok(()) => Ok(true),
        Err(Errno::EEXIST) => Ok(false),
        Err(e) => Err(err(e)),
    }
}

/// Load all modules; returns the failures (each already logged). Loading
/// goes on after a failure: the modules that did load may be all the board
/// needs, and whatever is missing fails later with its own diagnosis.
pub fn load_all(paths: &[String]) -> Vec<ModuleError> {
    let start = std::time::Instant::now();
    let mut loaded = 0usize;
    let mut failed = Vec::new();
    for p in paths {
        match load_one(p) {
            Ok(true) => loaded += 1,
            Ok(false) => {}
            Err(e) => {
                log::error!("{e}");
                failed.push(e);
            }
        }
    }
    log::info!(
        "modules: {loaded} loaded, {} failed, in {} ms",
        failed.len(),
        start.elapsed().as_millis()
    );
    failed
}
