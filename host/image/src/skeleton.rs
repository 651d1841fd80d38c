//! The fixed layout every azl-edge image has, added to the [`FileSet`]
//! before anything from the config: base directories, `/dev/console`,
//! `/init` and `/sbin/initctl`, `/etc/hostname`, `/etc/passwd`,
//! `/etc/group`, the compiled boot config and service table, and the
//! kernel modules. Everything is owned by root.
use crate::modules::ModuleSet;
use crate::rootfs::{Conflict, Content, FileSet, Kind, Node, Origin};
use crate::users::UserDb;
use azl_formats::paths;
use azl_imagepath::ImagePath;

/// Base directories and their modes.
pub const DIRS: &[(&str, u32)] = &[
    (paths::DATA, 0o755),
    ("/dev", 0o755),
    ("/etc", 0o755),
    // The directory of paths::BOOT_CONFIG, SERVICE_TABLE, MANIFEST_PUBLIC_KEY.
    ("/etc/azl-edge", 0o755),
    ("/proc", 0o555),
    ("/root", 0o700),
    ("/run", 0o755),
    ("/sys", 0o555),
    ("/tmp", 0o1777),
];

/// Directories init mounts a fresh filesystem on at boot (proc, sysfs,
/// devtmpfs, tmpfs): anything the image put below them would be hidden.
pub const BOOT_MOUNTS: &[&str] = &["/dev", "/proc", "/run", "/sys", "/tmp"];

pub const CONSOLE: &str = "/dev/console";
pub const HOSTNAME: &str = "/etc/hostname";
pub const PASSWD: &str = "/etc/passwd";
pub const GROUP: &str = "/etc/group";

fn path(s: &str) -> Result<ImagePath, Conflict> {
    ImagePath::parse(s).map_err(|source| Conflict::InvalidPath {
        path: s.to_string(),
        source,
    })
}

fn gen(what: &str) -> Origin {
    Origin::Generated(what.to_string())
}

/// Add the base layout. `init` is the init binary's content. The boot config
/// and service table are added empty; fill them with [`FileSet::set_content`].
pub fn add_base(
    set: &mut FileSet,
    init: Vec<u8>,
    hostname: &str,
    users: &UserDb,
) -> Result<(), Conflict> {
    for (d, mode) in DIRS {
        set.insert(path(d)?, Node::dir(*mode, gen("base directory")))?;
    }
    set.insert(
        path(CONSOLE)?,
        Node {
            kind: Kind::CharDevice { major: 5, minor: 1 },
            mode: 0o600,
            uid: 0,
            gid: 0,
            origin: gen("console device"),
        },
    )?;
    set.insert(
        path(paths::INIT)?,
        Node::file(Content::Bytes(init), 0o755, gen("the init binary")),
    )?;
    set.insert(
        path(paths::INITCTL)?,
        Node::symlink(paths::INIT, gen("initctl, a link to init")),
    )?;
    let files = [
        (HOSTNAME, format!("{hostname}\n").into_bytes(), "hostname"),
        (PASSWD, users.passwd().into_bytes(), "from [[user]]"),
        (GROUP, users.group_file().into_bytes(), "from [[user]]"),
        (paths::BOOT_CONFIG, Vec::new(), "boot config"),
        (paths::SERVICE_TABLE, Vec::new(), "service table"),
    ];
    for (p, bytes, what) in files {
        set.insert(
            path(p)?,
            Node::file(Content::Bytes(bytes), 0o644, gen(what)),
        )?;
    }
    Ok(())
}

/// Add the kernel modules at their install paths (mode 0644).
pub fn add_modules(set: &mut FileSet, modules: &ModuleSet) -> Result<(), Conflict> {
    for m in &modules.modules {
        set.insert(
            path(&m.install_path)?,
            Node::file(
                Content::Bytes(m.data.clone()),
                0o644,
                Origin::Generated(format!("kernel module {}", m.name)),
            ),
        )?;
    }
    Ok(())
}

/// What only a stage-1 initramfs has: the mount point of the new root and,
/// for signed images, the public key.
pub fn add_stage1(set: &mut FileSet, public_key: Option<&[u8; 32]>) -> Result<(), Conflict> {
    set.insert(
        path(paths::SYSROOT)?,
        Node::dir(0o755, gen("mount point of the verified root")),
    )?;
    if let Some(pk) = public_key {
        set.insert(
            path(paths::MANIFEST_PUBLIC_KEY)?,
            Node::file(
                Content::Bytes(pk.to_vec()),
                0o444,
                gen("manifest signing public key"),
            ),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> ImagePath {
        path(s).unwrap()
    }

    #[test]
    fn base_layout() {
        let mut s = FileSet::new();
        add_base(&mut s, b"\x7fELF".to_vec(), "edge", &UserDb::root_only()).unwrap();
        assert_eq!(s.resolve(&p(paths::INITCTL)).unwrap(), p(paths::INIT));
        let c = s.get(&p(CONSOLE)).unwrap();
        assert_eq!(
            (c.mode, &c.kind),
            (0o600, &Kind::CharDevice { major: 5, minor: 1 })
        );
        assert_eq!(s.get(&p("/tmp")).unwrap().mode, 0o1777);
        assert_eq!(
            s.get(&p(HOSTNAME)).unwrap().kind,
            Kind::File(Content::Bytes(b"edge\n".to_vec()))
        );
        assert!(s.get(&p("/sbin")).unwrap().is_dir());
        for (d, _) in DIRS {
            assert!(s.get(&p(d)).unwrap().is_dir(), "{d}");
        }
        // The files init reads from azl-edge's directory have it.
        for f in [
            paths::BOOT_CONFIG,
            paths::SERVICE_TABLE,
            paths::MANIFEST_PUBLIC_KEY,
        ] {
            let parent = p(f).parent().unwrap();
            assert!(DIRS.iter().any(|(d, _)| *d == parent.as_str()), "{f}");
        }
    }
}
