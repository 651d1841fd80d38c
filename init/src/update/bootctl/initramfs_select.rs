//! The initramfs-select backend: one kernel and initramfs serve both
//! slots, and stage 1 itself picks the root slot from the boot state in the
//! `bootstate` partition. The firmware is never told anything, so
//! [`BootControl::arm`] has nothing to do; every decision is the record.
use super::store::StateStore;
use super::{BootControl, BootCtlError};
use azl_formats::bootstate::{BootState, Loaded, Slot};

pub struct InitramfsSelect {
    store: StateStore,
}

impl InitramfsSelect {
    /// The backend on the device (or file) `path` holding the boot state.
    pub fn open(path: &str) -> Result<InitramfsSelect, BootCtlError> {
        Ok(InitramfsSelect {
            store: StateStore::open(path)?,
        })
    }
}

impl BootControl for InitramfsSelect {
    fn name(&self) -> &'static str {
        "initramfs-select"
    }

    fn location(&self) -> String {
        self.store.path().to_string()
    }

    fn read(&mut self) -> Result<Loaded, BootCtlError> {
        self.store.read()
    }

    fn write(&mut self, next: &BootState) -> Result<(), BootCtlError> {
        self.store.write_state(next)
    }

    fn arm(&mut self, _slot: Slot, _once: bool) -> Result<(), BootCtlError> {
        Ok(())
    }
}
