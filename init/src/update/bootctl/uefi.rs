//! The UEFI backend: each slot has its own kernel, initramfs and command
//! line on the ESP (`EFI/azl/<slot>/`) and its own boot entry
//! (`Boot####`, description `azl-edge A`/`B`, `azl_formats::efi`).
//! `arm(slot, once)` sets `BootNext` (the firmware's one-shot: a trial);
//! `arm(slot, false)` puts the slot's entry first in `BootOrder`. The A/B
//! boot state in the `bootstate` partition stays the record of versions,
//! digests, floor and failures, read and written through the same
//! [`StateStore`] as initramfs-select; the variables only say which
//! kernel the firmware starts.
use super::efivars::EfiVars;
use super::store::StateStore;
use super::{BootControl, BootCtlError, BootFiles, FirmwareVars, SyncPlan};
use azl_formats::bootstate::{BootState, Loaded, Slot};
use azl_formats::efi::{self, EspFile, HardDrive, LoadOption};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where the ESP's files are reached.
#[derive(Debug, Clone)]
pub enum Esp {
    /// A directory (a mounted ESP, or a temp dir in tests).
    Dir(PathBuf),
    /// A vfat partition, mounted at `mountpoint` while files are written.
    Device { dev: String, mountpoint: PathBuf },
}

pub struct Uefi {
    store: StateStore,
    vars: EfiVars,
    /// The ESP's GPT entry, for the entries' device path.
    esp_node: HardDrive,
    esp: Esp,
    /// The slot whose kernel the firmware started (`azl.slot=`).
    started: Option<Slot>,
}

impl Uefi {
    pub fn new(
        store: StateStore,
        vars: EfiVars,
        esp_node: HardDrive,
        esp: Esp,
        started: Option<Slot>,
    ) -> Uefi {
        Uefi {
            store,
            vars,
            esp_node,
            esp,
            started,
        }
    }

    fn var_err(e: super::efivars::VarError) -> BootCtlError {
        BootCtlError::Efi(e)
    }

    /// The number of `slot`'s boot entry: the first `Boot####` whose
    /// description and file path are the slot's.
    pub fn entry_of(&self, slot: Slot) -> Result<Option<u16>, BootCtlError> {
        let path = efi::efi_path(slot, EspFile::Kernel);
        for n in self.vars.boot_entries().map_err(Self::var_err)? {
            let Some(bytes) = self
                .vars
                .read(&efi::boot_var_name(n))
                .map_err(Self::var_err)?
            else {
                continue;
            };
            // Entries we cannot decode are someone else's; leave them.
            let Ok(o) = LoadOption::decode(&bytes) else {
                continue;
            };
            let same_path = o
                .file_path
                .as_deref()
                .is_some_and(|p| p.eq_ignore_ascii_case(&path));
            if o.description == efi::description(slot) && same_path {
                return Ok(Some(n));
            }
        }
        Ok(None)
    }

    /// Create or repair `slot`'s entry so its load option is exactly the
    /// predicted one (ESP node, kernel path, `cmdline` as OptionalData);
    /// returns its number.
    pub fn ensure_entry(&self, slot: Slot, cmdline: &str) -> Result<u16, BootCtlError> {
        let want = LoadOption::for_slot(slot, self.esp_node, cmdline).encode();
        let (n, what) = match self.entry_of(slot)? {
            Some(n) => {
                let name = efi::boot_var_name(n);
                if self.vars.read(&name).map_err(Self::var_err)?.as_deref() == Some(&want[..]) {
                    return Ok(n);
                }
                (n, "repaired")
            }
            None => {
                let used = self.vars.boot_entries().map_err(Self::var_err)?;
                let n = (0..=u16::MAX)
                    .find(|n| !used.contains(n))
                    .ok_or(BootCtlError::NoFreeEntry)?;
                (n, "created")
            }
        };
        let name = efi::boot_var_name(n);
        self.vars.write(&name, &want).map_err(Self::var_err)?;
        log::info!(
            "uefi: {name} ({}) {what}: {cmdline}",
            efi::description(slot)
        );
        Ok(n)
    }

    fn need_entry(&self, slot: Slot) -> Result<u16, BootCtlError> {
        self.entry_of(slot)?.ok_or(BootCtlError::NoEntry(slot))
    }

    /// `BootOrder` with `slot`'s entry first, the other slot's second and
    /// every other entry after them.
    fn order_first(&self, slot: Slot) -> Result<(), BootCtlError> {
        let first = self.need_entry(slot)?;
        let second = self.entry_of(slot.other())?.unwrap_or(first);
        let now = self.vars.boot_order().map_err(Self::var_err)?;
        let next = efi::boot_order_with(&now, first, second);
        if next != now {
            self.vars
                .write(efi::BOOT_ORDER, &efi::encode_boot_order(&next))
                .map_err(Self::var_err)?;
            log::info!("uefi: BootOrder {}", order_text(&next));
        }
        Ok(())
    }

    fn with_esp<T>(
        &self,
        f: impl FnOnce(&Path) -> Result<T, BootCtlError>,
    ) -> Result<T, BootCtlError> {
        match &self.esp {
            Esp::Dir(d) => f(d),
            Esp::Device { dev, mountpoint } => {
                use nix::mount::{mount, umount, MsFlags};
                let err = |what: &str, e: std::io::Error| BootCtlError::Esp {
                    path: format!("{what} {dev} on {}", mountpoint.display()),
                    err: e,
                };
                std::fs::create_dir_all(mountpoint).map_err(|e| err("creating", e))?;
                mount(
                    Some(dev.as_str()),
                    mountpoint.as_path(),
                    Some("vfat"),
                    MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                    None::<&str>,
                )
                .map_err(|e| err("mounting", e.into()))?;
                let r = f(mountpoint);
                let u = umount(mountpoint.as_path()).map_err(|e| err("unmounting", e.into()));
                let v = r?;
                u?;
                Ok(v)
            }
        }
    }
}

fn order_text(order: &[u16]) -> String {
    order
        .iter()
        .map(|n| format!("{n:04X}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Write `bytes` to `dir/name` durably: a temporary name, fsync, rename,
/// fsync of the directory.
fn put_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), BootCtlError> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.new"));
    let err = |p: &Path| {
        let p = p.display().to_string();
        move |e| BootCtlError::Esp { path: p, err: e }
    };
    let mut f = std::fs::File::create(&tmp).map_err(err(&tmp))?;
    f.write_all(bytes).map_err(err(&tmp))?;
    f.sync_all().map_err(err(&tmp))?;
    drop(f);
    std::fs::rename(&tmp, &path).map_err(err(&path))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(err(dir))
}

impl BootControl for Uefi {
    fn name(&self) -> &'static str {
        "uefi"
    }

    fn location(&self) -> String {
        // The boot state's device, as on initramfs-select (scripts parse it).
        self.store.path().to_string()
    }

    fn read(&mut self) -> Result<Loaded, BootCtlError> {
        self.store.read()
    }

    fn write(&mut self, next: &BootState) -> Result<(), BootCtlError> {
        self.store.write_state(next)
    }

    fn arm(&mut self, slot: Slot, once: bool) -> Result<(), BootCtlError> {
        if once {
            let n = self.need_entry(slot)?;
            self.vars
                .write(efi::BOOT_NEXT, &n.to_le_bytes())
                .map_err(Self::var_err)?;
            log::info!("uefi: BootNext {n:04X} ({slot}, once)");
            Ok(())
        } else {
            self.order_first(slot)
        }
    }

    fn started(&self) -> Option<Slot> {
        self.started
    }

    fn firmware_vars(&self) -> Option<Result<FirmwareVars, BootCtlError>> {
        let read = || -> Result<FirmwareVars, BootCtlError> {
            let mut entries = Vec::new();
            for slot in Slot::ALL {
                entries.push((slot, self.entry_of(slot)?));
            }
            Ok(FirmwareVars {
                current: self
                    .vars
                    .read_u16(efi::BOOT_CURRENT)
                    .map_err(Self::var_err)?,
                next: self.vars.read_u16(efi::BOOT_NEXT).map_err(Self::var_err)?,
                order: self.vars.boot_order().map_err(Self::var_err)?,
                entries,
            })
        };
        Some(read())
    }

    fn sync(&mut self, plan: &SyncPlan) -> Result<(), BootCtlError> {
        for (slot, cmdline) in &plan.cmdlines {
            self.ensure_entry(*slot, cmdline)?;
        }
        if !plan.trial && self.started.is_some_and(|s| s != plan.committed) {
            log::warn!(
                "uefi: the firmware started {}'s kernel but {} is committed (cut between the commit and BootOrder?): booting {}, repairing BootOrder",
                self.started.map_or("?", Slot::letter),
                plan.committed,
                plan.committed
            );
        }
        self.order_first(plan.committed)?;
        if let Some(t) = plan.rearm {
            log::warn!(
                "uefi: a trial of {t} is pending but the firmware started another kernel (cut before BootNext was set?): the trial is kept and armed again"
            );
            self.arm(t, true)?;
        }
        Ok(())
    }

    fn takes_boot_files(&self) -> bool {
        true
    }

    fn install_boot_files(&mut self, slot: Slot, files: &BootFiles) -> Result<(), BootCtlError> {
        self.with_esp(|root| {
            let dir = root.join(efi::esp_dir(slot));
            std::fs::create_dir_all(&dir).map_err(|e| BootCtlError::Esp {
                path: dir.display().to_string(),
                err: e,
            })?;
            let options = efi::options_data(&files.cmdline);
            let cmdline_txt = format!("{}\n", files.cmdline);
            for (f, bytes) in [
                (EspFile::Kernel, files.kernel.as_slice()),
                (EspFile::Initrd, files.initramfs.as_slice()),
                (EspFile::Options, options.as_slice()),
                (EspFile::Cmdline, cmdline_txt.as_bytes()),
            ] {
                put_file(&dir, f.file_name(), bytes)?;
            }
            Ok(())
        })?;
        self.ensure_entry(slot, &files.cmdline)?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::super::tests::temp_store;
    use super::super::{self as bootctl, SyncPlan};
    use super::*;

    fn esp_node() -> HardDrive {
        HardDrive {
            partition_number: 1,
            start_lba: 2048,
            size_lba: 131072,
            part_guid: [9; 16],
        }
    }

    struct Rig {
        _dir: tempfile::TempDir,
        vars: EfiVars,
        esp: PathBuf,
        ctl: Uefi,
    }

    fn rig(started: Option<Slot>) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let vars_dir = dir.path().join("efivars");
        let esp = dir.path().join("esp");
        std::fs::create_dir_all(&vars_dir).unwrap();
        std::fs::create_dir_all(&esp).unwrap();
        let vars = EfiVars::new(&vars_dir);
        // What the firmware had before us: two entries of its own.
        vars.write("Boot0000", b"firmware-ui").unwrap();
        vars.write("Boot0001", b"shell").unwrap();
        vars.write(efi::BOOT_ORDER, &efi::encode_boot_order(&[0, 1]))
            .unwrap();
        let store = StateStore::open(&temp_store(dir.path())).unwrap();
        let ctl = Uefi::new(
            store,
            vars.clone(),
            esp_node(),
            Esp::Dir(esp.clone()),
            started,
        );
        Rig {
            _dir: dir,
            vars,
            esp,
            ctl,
        }
    }

    fn cmd(s: Slot) -> String {
        efi::slot_cmdline(s, "console=ttyAMA0")
    }

    #[test]
    fn entries_are_created_at_free_numbers_and_repaired_in_place() {
        let r = rig(Some(Slot::A));
        let a = r.ctl.ensure_entry(Slot::A, &cmd(Slot::A)).unwrap();
        assert_eq!(a, 2, "first free number");
        let raw = r.vars.read("Boot0002").unwrap().unwrap();
        assert_eq!(
            raw,
            LoadOption::for_slot(Slot::A, esp_node(), &cmd(Slot::A)).encode()
        );
        // The attributes on disk are NV|BS|RT, as efivarfs wants them.
        let file = std::fs::read(r.vars.dir().join(efi::efivarfs_name("Boot0002"))).unwrap();
        assert_eq!(&file[..4], &[7, 0, 0, 0]);
        // Same again: nothing written, same number.
        assert_eq!(r.ctl.ensure_entry(Slot::A, &cmd(Slot::A)).unwrap(), 2);
        // Another cmdline (a tampered entry): repaired at the same number.
        assert_eq!(r.ctl.ensure_entry(Slot::A, "evil").unwrap(), 2);
        assert_eq!(r.ctl.ensure_entry(Slot::A, &cmd(Slot::A)).unwrap(), 2);
        assert_eq!(r.vars.read("Boot0002").unwrap().unwrap(), raw);
        let b = r.ctl.ensure_entry(Slot::B, &cmd(Slot::B)).unwrap();
        assert_eq!(b, 3);
        assert_eq!(r.ctl.entry_of(Slot::B).unwrap(), Some(3));
        // Firmware entries are left alone.
        assert_eq!(r.vars.read("Boot0000").unwrap().unwrap(), b"firmware-ui");
    }

    #[test]
    fn arm_once_sets_boot_next_and_for_good_reorders_boot_order() {
        let mut r = rig(Some(Slot::A));
        // No entry for B yet: arming it is an error naming the slot.
        let e = r.ctl.arm(Slot::B, true).unwrap_err();
        assert!(
            e.to_string().contains("root-b has no UEFI boot entry"),
            "{e}"
        );
        let a = r.ctl.ensure_entry(Slot::A, &cmd(Slot::A)).unwrap();
        let b = r.ctl.ensure_entry(Slot::B, &cmd(Slot::B)).unwrap();
        r.ctl.arm(Slot::B, true).unwrap();
        assert_eq!(r.vars.read_u16(efi::BOOT_NEXT).unwrap(), Some(b));
        assert_eq!(
            r.vars.boot_order().unwrap(),
            vec![0, 1],
            "BootOrder untouched"
        );
        r.ctl.arm(Slot::B, false).unwrap();
        assert_eq!(r.vars.boot_order().unwrap(), vec![b, a, 0, 1]);
        r.ctl.arm(Slot::A, false).unwrap();
        assert_eq!(r.vars.boot_order().unwrap(), vec![a, b, 0, 1]);
    }

    #[test]
    fn sync_repairs_boot_order_and_rearms_a_pending_trial() {
        // Rule (b): B is committed but the firmware started A's kernel.
        let mut r = rig(Some(Slot::A));
        let plan = SyncPlan {
            committed: Slot::B,
            trial: false,
            rearm: None,
            cmdlines: vec![(Slot::B, cmd(Slot::B)), (Slot::A, cmd(Slot::A))],
        };
        r.ctl.sync(&plan).unwrap();
        let (a, b) = (
            r.ctl.entry_of(Slot::A).unwrap().unwrap(),
            r.ctl.entry_of(Slot::B).unwrap().unwrap(),
        );
        assert_eq!(r.vars.boot_order().unwrap(), vec![b, a, 0, 1]);
        assert_eq!(r.vars.read_u16(efi::BOOT_NEXT).unwrap(), None);
        // Rule (a): A committed, a trial of B pending: BootNext again.
        let plan = SyncPlan {
            committed: Slot::A,
            trial: false,
            rearm: Some(Slot::B),
            cmdlines: vec![(Slot::A, cmd(Slot::A)), (Slot::B, cmd(Slot::B))],
        };
        r.ctl.sync(&plan).unwrap();
        assert_eq!(r.vars.boot_order().unwrap(), vec![a, b, 0, 1]);
        assert_eq!(r.vars.read_u16(efi::BOOT_NEXT).unwrap(), Some(b));
    }

    #[test]
    fn boot_files_land_in_the_slot_directory_with_its_entry() {
        let mut r = rig(Some(Slot::A));
        let files = bootctl::BootFiles {
            kernel: b"kernel-b".to_vec(),
            initramfs: b"initrd-b".to_vec(),
            cmdline: cmd(Slot::B),
        };
        r.ctl.install_boot_files(Slot::B, &files).unwrap();
        let dir = r.esp.join("EFI/azl/b");
        assert_eq!(std::fs::read(dir.join("Image")).unwrap(), b"kernel-b");
        assert_eq!(std::fs::read(dir.join("initrd")).unwrap(), b"initrd-b");
        assert_eq!(
            std::fs::read(dir.join("options.bin")).unwrap(),
            efi::options_data(&cmd(Slot::B))
        );
        assert!(!dir.join("Image.new").exists(), "no temporary left");
        let n = r.ctl.entry_of(Slot::B).unwrap().unwrap();
        let o = LoadOption::decode(&r.vars.read(&efi::boot_var_name(n)).unwrap().unwrap()).unwrap();
        assert_eq!(o.cmdline(), Some(cmd(Slot::B)));
        // initramfs-select refuses kernel files.
        let dir2 = tempfile::tempdir().unwrap();
        let mut sel =
            super::super::initramfs_select::InitramfsSelect::open(&temp_store(dir2.path()))
                .unwrap();
        assert!(!sel.takes_boot_files());
        assert!(matches!(
            sel.install_boot_files(Slot::B, &files),
            Err(BootCtlError::NoBootFiles("initramfs-select"))
        ));
    }

    #[test]
    fn a_corrupt_boot_order_is_an_error_naming_the_variable() {
        let mut r = rig(Some(Slot::A));
        r.ctl.ensure_entry(Slot::A, &cmd(Slot::A)).unwrap();
        r.vars.write(efi::BOOT_ORDER, &[1, 2, 3]).unwrap();
        let e = r.ctl.arm(Slot::A, false).unwrap_err();
        assert!(
            e.to_string()
                .contains("EFI variable BootOrder: BootOrder has an odd length 3"),
            "{e}"
        );
    }
}
