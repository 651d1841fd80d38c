//! The summary `imagegen build` prints: what was built, how big, in what
//! order services start, and for a disk image its signature and root hash.
use crate::output;
use crate::pipeline::Image;
use crate::size::human;
use std::fmt;
use std::path::Path;

/// The summary `imagegen build` prints.
pub struct Summary<'a> {
    pub image: &'a Image,
    pub out: &'a Path,
}

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = self.image;
        writeln!(
            f,
            "built {} {} for board {} in {}",
            i.name,
            i.version,
            i.board.name,
            self.out.display()
        )?;
        writeln!(
            f,
            "  kernel     {} ({}, release {})",
            i.kernel.image.display(),
            human(i.kernel_size),
            i.modules.release.as_deref().unwrap_or("unknown")
        )?;
        writeln!(
            f,
            "  initramfs  {} gzip ({} cpio, {} entries)",
            human(i.initramfs.gz.len() as u64),
            human(i.initramfs.cpio_size),
            i.initramfs.entries
        )?;
        writeln!(
            f,
            "  init       {} (from {})",
            i.init.path.display(),
            i.init.origin
        )?;
        let mods: Vec<&str> = i.modules.modules.iter().map(|m| m.name.as_str()).collect();
        write!(f, "  modules    {}", mods.len())?;
        if !mods.is_empty() {
            write!(f, ": {}", mods.join(", "))?;
        }
        if !i.modules.builtin.is_empty() {
            write!(f, " ({} built into the kernel)", i.modules.builtin.len())?;
        }
        writeln!(f)?;
        let svcs: Vec<&str> = i
            .services
            .services
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        writeln!(
            f,
            "  services   {}",
            if svcs.is_empty() {
                "none".to_string()
            } else {
                svcs.join(" → ")
            }
        )?;
        if !i.packages.is_empty() {
            let names: Vec<String> = i
                .packages
                .iter()
                .map(|p| format!("{}-{}.{}", p.name, p.evr, p.arch))
                .collect();
            writeln!(f, "  packages   {}: {}", names.len(), names.join(", "))?;
        }
        for s in &i.scriptlets {
            // Never run: what the script would have done, for the config to provide.
            write!(
                f,
                "  not run    {} {} ({})",
                s.package, s.kind, s.interpreter
            )?;
            if !s.would.is_empty() {
                write!(f, ": {}", s.would.join("; "))?;
            }
            writeln!(f)?;
        }
        if let Some(d) = &i.disk {
            let sig = match &d.signed.signature {
                Some(s) => format!("signed by key {}", azl_formats::manifest::Hex(&s.key_id)),
                None => "UNSIGNED (insecure)".to_string(),
            };
            writeln!(
                f,
                "  disk       {} ({}), manifest {sig}",
                human(d.placed.disk_size),
                self.out.join(output::DISK).display()
            )?;
            writeln!(
                f,
                "  rootfs     {} squashfs + {} verity tree in {}, root hash {}",
                human(d.squashfs_size),
                human(d.verity_size),
                d.manifest.rootfs.partition,
                azl_formats::manifest::Hex(&d.manifest.rootfs.verity.root_hash)
            )?;
        }
        write!(f, "  cmdline    {}", i.cmdline)
    }
}
