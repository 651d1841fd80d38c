//! Early mounts: the pseudo filesystems every process expects (proc, sysfs,
//! devtmpfs, devpts, /run, /tmp, /dev/shm, cgroup2, securityfs) and the
//! standard /dev symlinks. Also the final unmount at shutdown.
use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::fmt;

/// A mount that failed, with what was being mounted where.
#[derive(Debug)]
pub struct MountError {
    pub fstype: &'static str,
    pub target: &'static str,
    pub errno: Errno,
}

impl fmt::Display for MountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot mount {} on {}: {}",
            self.fstype,
            self.target,
            self.errno.desc()
        )
    }
}

struct Spec {
    fstype: &'static str,
    target: &'static str,
    flags: MsFlags,
    data: &'static str,
    /// Boot cannot go on without it.
    required: bool,
}

const fn spec(
    fstype: &'static str,
    target: &'static str,
    flags: MsFlags,
    data: &'static str,
    required: bool,
) -> Spec {
    Spec {
        fstype,
        target,
        flags,
        data,
        required,
    }
}

const NOSUID_NODEV: MsFlags = MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV);
const NOSUID_NODEV_NOEXEC: MsFlags = NOSUID_NODEV.union(MsFlags::MS_NOEXEC);

fn specs() -> [Spec; 8] {
    [
        spec("proc", "/proc", NOSUID_NODEV_NOEXEC, "", true),
        spec("sysfs", "/sys", NOSUID_NODEV_NOEXEC, "", true),
        spec("devtmpfs", "/dev", MsFlags::MS_NOSUID, "mode=0755", true),
        spec(
            "devpts",
            "/dev/pts",
            MsFlags::MS_NOSUID.union(MsFlags::MS_NOEXEC),
            "gid=5,mode=0620,ptmxmode=0666",
            false,
        ),
        spec("tmpfs", "/dev/shm", NOSUID_NODEV, "mode=1777", false),
        spec("tmpfs", "/run", NOSUID_NODEV, "mode=0755", true),
        spec("tmpfs", "/tmp", NOSUID_NODEV, "mode=1777", false),
        spec(
            "cgroup2",
            "/sys/fs/cgroup",
            NOSUID_NODEV_NOEXEC,
            "nsdelegate",
            false,
        ),
    ]
}

/// Is `path` already a mount point (its device differs from its parent's)?
/// After switch root, stage 2 finds /dev, /proc, /sys and /run moved in from
/// stage 1 and must not stack fresh, empty filesystems over them.
fn is_mountpoint(path: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let parent = std::path::Path::new(path)
        .parent()
        .unwrap_or(std::path::Path::new("/"));
    match (std::fs::metadata(path), std::fs::metadata(parent)) {
        (Ok(m), Ok(p)) => m.dev() != p.dev(),
        _ => false,
    }
}

fn mount_one(s: &Spec) -> Result<(), MountError> {
    if is_mountpoint(s.target) {
        return Ok(());
    }
    let err = |errno| MountError {
        fstype: s.fstype,
        target: s.target,
        errno,
    };
    if let Err(e) = std::fs::create_dir_all(s.target) {
        return Err(err(crate::errno::of(&e)));
    }
    let data = if s.data.is_empty() {
        None
    } else {
        Some(s.data)
    };
    match mount(Some(s.fstype), s.target, Some(s.fstype), s.flags, data) {
        // Already mounted (e.g. CONFIG_DEVTMPFS_MOUNT): fine.
        Ok(()) | Err(Errno::EBUSY) => Ok(()),
        // An option this kernel lacks: mount with the first option only.
        Err(Errno::EINVAL) if s.data.contains(',') => {
            let first = s.data.split(',').next();
            match mount(Some(s.fstype), s.target, Some(s.fstype), s.flags, first) {
                Ok(()) | Err(Errno::EBUSY) => Ok(()),
                Err(e) => Err(err(e)),
            }
        }
        Err(e) => Err(err(e)),
    }
}

/// Mount everything; a failing required mount is returned (fatal), optional
/// ones are logged.
pub fn early_mounts() -> Result<(), MountError> {
    for s in specs().iter() {
        match mount_one(s) {
            Ok(()) => {}
            Err(e) if s.required => return Err(e),
            Err(e) => log::warn!("{e}"),
        }
    }
    let has_securityfs = std::fs::read_to_string("/proc/filesystems")
        .map(|f| {
            f.lines()
                .any(|l| l.split_whitespace().last() == Some("securityfs"))
        })
        .unwrap_or(false);
    if has_securityfs {
        let s = spec(
            "securityfs",
            "/sys/kernel/security",
            NOSUID_NODEV_NOEXEC,
            "",
            false,
        );
        if let Err(e) = mount_one(&s) {
            log::warn!("{e}");
        }
    }
    for (link, target) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        let _ = std::os::unix::fs::symlink(target, link);
    }
    Ok(())
}

/// Mount points from /proc/self/mounts, deepest (last mounted) first.
fn mounted_targets() -> Vec<String> {
    let text = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mut v: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(|t| t.replace("\\040", " "))
        .collect();
    v.reverse();
    v
}

/// At shutdown: unmount everything but `/`, then remount `/` read-only.
/// Pseudo filesystems that refuse are detached lazily; errors are logged,
/// never fatal (the machine is going down either way, after `sync`).
pub fn unmount_all() {
    for t in mounted_targets() {
        if t == "/" {
            continue;
        }
        if let Err(e) = umount2(t.as_str(), MntFlags::empty()) {
            if umount2(t.as_str(), MntFlags::MNT_DETACH).is_err() {
                log::debug!("umount {t}: {e}");
            }
        }
    }
    let _ = mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    );
}
