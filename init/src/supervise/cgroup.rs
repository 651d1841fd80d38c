//! cgroup v2: one cgroup per service below `/sys/fs/cgroup/services`, with
//! the memory and pids controllers enabled where the kernel has them, an
//! optional `memory.max`, and `cgroup.kill` to stop everything a service left
//! behind.
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";

#[derive(Debug)]
pub struct CgroupError {
    pub path: PathBuf,
    pub what: &'static str,
    pub err: std::io::Error,
}

impl fmt::Display for CgroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cgroup {}: {}: {}",
            self.path.display(),
            self.what,
            self.err
        )
    }
}

/// The cgroup tree init manages; `None` inside when cgroup2 is unavailable.
pub struct Cgroups {
    base: Option<PathBuf>,
}

fn write_file(path: &Path, what: &'static str, value: &str) -> Result<(), CgroupError> {
    let err = |err| CgroupError {
        path: path.to_path_buf(),
        what,
        err,
    };
    let mut f = OpenOptions::new().write(true).open(path).map_err(err)?;
    f.write_all(value.as_bytes()).map_err(err)
}

impl Cgroups {
    pub fn init() -> Cgroups {
        let root = Path::new(ROOT);
        let Ok(controllers) = std::fs::read_to_string(root.join("cgroup.controllers")) else {
            log::warn!("cgroup2 not available: services run without cgroups");
            return Cgroups { base: None };
        };
        let base = root.join("services");
        if let Err(e) = std::fs::create_dir_all(&base) {
            log::warn!("cannot create {}: {e}", base.display());
            return Cgroups { base: None };
        }
        let wanted: Vec<&str> = controllers
            .split_whitespace()
            .filter(|c| matches!(*c, "memory" | "pids"))
            .collect();
        for dir in [root, base.as_path()] {
            for c in &wanted {
                if let Err(e) = write_file(
                    &dir.join("cgroup.subtree_control"),
                    "enable controller",
                    &format!("+{c}"),
                ) {
                    log::warn!("{e}");
                }
            }
        }
        log::info!(
            "cgroups: {} (controllers: {})",
            base.display(),
            wanted.join(" ")
        );
        Cgroups { base: Some(base) }
    }

    fn dir(&self, service: &str) -> Option<PathBuf> {
        self.base.as_ref().map(|b| b.join(service))
    }

    /// Create (or reuse) the service's cgroup, apply its memory limit and
    /// return an fd of its directory: the child is created directly inside
    /// it (`clone3` with `CLONE_INTO_CGROUP`), which avoids the slow
    /// migration of an already running process.
    pub fn prepare(
        &self,
        service: &str,
        memory_max: Option<u64>,
    ) -> Result<Option<OwnedFd>, CgroupError> {
        let Some(dir) = self.dir(service) else {
            return Ok(None);
        };
        if let Err(err) = std::fs::create_dir(&dir) {
            if err.kind() != std::io::ErrorKind::AlreadyExists {
                return Err(CgroupError {
                    path: dir,
                    what: "create",
                    err,
                });
            }
        }
        // A new cgroup starts at "max"; the table (and so the limit) never
        // changes while init runs, so only limited services need a write.
        if let Some(limit) = memory_max {
            write_file(
                &dir.join("memory.max"),
                "set memory.max",
                &limit.to_string(),
            )?;
        }
        let f: File = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(&dir)
            .map_err(|err| CgroupError {
                path: dir,
                what: "open",
                err,
            })?;
        Ok(Some(f.into()))
    }

    /// Kill every process left in the service's cgroup.
    pub fn kill_all(&self, service: &str) {
        let Some(dir) = self.dir(service) else { return };
        if write_file(&dir.join("cgroup.kill"), "kill", "1").is_ok() {
            return;
        }
        // Kernels before 5.14 have no cgroup.kill: signal each member.
        if let Ok(list) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            for pid in list.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }

    /// Does the service's cgroup still hold processes?
    pub fn populated(&self, service: &str) -> bool {
        let Some(dir) = self.dir(service) else {
            return false;
        };
        std::fs::read_to_string(dir.join("cgroup.events"))
            .map(|e| e.lines().any(|l| l.trim() == "populated 1"))
            .unwrap_or(false)
    }

    /// Current memory use, for status.
    pub fn memory_current(&self, service: &str) -> Option<u64> {
        let dir = self.dir(service)?;
        std::fs::read_to_string(dir.join("memory.current"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}
