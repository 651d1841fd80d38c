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
use super::{BootControl, BootCtlError, BootFiles, SyncPlan};
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
        let loaded = self.store.read()?;
        let (index, bytes) = loaded.next_write(next).map_err(BootCtlError::Encode)?;
        self.store.write_copy(index, &bytes)
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
