//! Switching root: the initramfs cannot be `pivot_root`ed, so move the API
//! filesystems into the new root, delete the initramfs' files to free their
//! memory, move the new root onto `/`, chroot, and exec its init.
use super::sysroot::NEWROOT;

/// [`azl_formats::paths::ROOT_INIT`], NUL-terminated for execv.
const ROOT_INIT_C: &std::ffi::CStr = c"/sbin/init";
use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use std::fmt;

/// statfs magic of ramfs (not exported by libc).
const RAMFS_MAGIC: u64 = 0x8584_58f6;

/// The step of switching root that failed.
#[derive(Debug)]
pub struct SwitchError {
    pub step: &'static str,
    pub errno: Errno,
}

impl fmt::Display for SwitchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "switch root: {}: {}", self.step, self.errno.desc())
    }
}

/// Is `/` still the initramfs (rootfs/tmpfs)? Then this is stage 1.
pub fn in_initramfs() -> bool {
    nix::sys::statfs::statfs("/")
        .map(|s| {
            // rootfs is ramfs (0x858458f6) or tmpfs.
            let t = s.filesystem_type();
            t.0 as u64 == RAMFS_MAGIC || t == nix::sys::statfs::TMPFS_MAGIC
        })
        .unwrap_or(false)
}

/// Delete the initramfs' files (same filesystem only) to free its memory.
fn clear_initramfs(dir: &std::path::Path, root_dev: u64) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let Ok(md) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if md.dev() != root_dev {
            continue; // a mount point (/sysroot, moved /dev, …)
        }
        if md.is_dir() {
            clear_initramfs(&p, root_dev);
            let _ = std::fs::remove_dir(&p);
        } else {
            let _ = std::fs::remove_file(&p);
        }
    }
}

/// Move the API filesystems into the new root, make it `/` and exec its
/// init. Returns only on failure.
pub fn switch_root() -> SwitchError {
    use std::os::unix::fs::MetadataExt;
    for api in ["/dev", "/proc", "/sys", "/run"] {
        let target = format!("{NEWROOT}{api}");
        let _ = std::fs::create_dir_all(&target);
        if let Err(errno) = mount(
            Some(api),
            target.as_str(),
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        ) {
            return SwitchError {
                step: "move API filesystems",
                errno,
            };
        }
    }
    if let Ok(md) = std::fs::metadata("/") {
        clear_initramfs(std::path::Path::new("/"), md.dev());
    }
    if let Err(errno) = nix::unistd::chdir(NEWROOT) {
        return SwitchError {
            step: "chdir",
            errno,
        };
    }
    if let Err(errno) = mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>) {
        return SwitchError {
            step: "move new root to /",
            errno,
        };
    }
    if let Err(errno) = nix::unistd::chroot(".") {
        return SwitchError {
            step: "chroot",
            errno,
        };
    }
    if let Err(errno) = nix::unistd::chdir("/") {
        return SwitchError {
            step: "chdir /",
            errno,
        };
    }
    // paths::ROOT_INIT as a C string (a test checks they agree).
    let prog = ROOT_INIT_C;
    let Err(errno) = nix::unistd::execv(prog, &[prog]);
    SwitchError {
        step: "exec /sbin/init",
        errno,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn exec_path_is_the_contract_path() {
        assert_eq!(
            super::ROOT_INIT_C.to_str().ok(),
            Some(azl_formats::paths::ROOT_INIT)
        );
    }
}
