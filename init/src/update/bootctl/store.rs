//! The two-copy boot state record on a file or block device (the
//! `bootstate` partition, or a regular file in tests): read both copies,
//! write one copy and fdatasync before returning.
use super::BootCtlError;
use azl_formats::bootstate::{Loaded, COPY_OFFSETS, COPY_SIZE, MIN_PARTITION_SIZE};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;

/// The boot state's storage.
pub struct StateStore {
    path: String,
    file: File,
}

impl StateStore {
    /// Open `path` read-write; it must hold both copies.
    pub fn open(path: &str) -> Result<StateStore, BootCtlError> {
        let io = |err| BootCtlError::Io {
            dev: path.to_string(),
            offset: 0,
            err,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io)?;
        let size = super::device_size(&file).map_err(io)?;
        if size < MIN_PARTITION_SIZE {
            return Err(BootCtlError::TooSmall {
                dev: path.to_string(),
                size,
            });
        }
        Ok(StateStore {
            path: path.to_string(),
            file,
        })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Both copies as they are on the device.
    pub fn read(&self) -> Result<Loaded, BootCtlError> {
        let mut copies = [[0u8; COPY_SIZE]; 2];
        for (buf, &offset) in copies.iter_mut().zip(COPY_OFFSETS.iter()) {
            self.file
                .read_exact_at(buf, offset)
                .map_err(|err| BootCtlError::Io {
                    dev: self.path.clone(),
                    offset,
                    err,
                })?;
        }
        let [c0, c1] = &copies;
        Ok(Loaded::from_copies(c0, c1))
    }

    /// Make `next` the state in force: encode it into the copy not in
    /// force ([`Loaded::next_write`]) and flush it.
    pub fn write_state(
        &self,
        next: &azl_formats::bootstate::BootState,
    ) -> Result<(), BootCtlError> {
        let (index, bytes) = self
            .read()?
            .next_write(next)
            .map_err(BootCtlError::Encode)?;
        self.write_copy(index, &bytes)
    }

    /// Write copy `index` and flush it to the device.
    pub fn write_copy(&self, index: usize, bytes: &[u8; COPY_SIZE]) -> Result<(), BootCtlError> {
        let offset = COPY_OFFSETS.get(index).copied().unwrap_or(0);
        let io = |err| BootCtlError::Io {
            dev: self.path.clone(),
            offset,
            err,
        };
        self.file.write_all_at(bytes, offset).map_err(io)?;
        self.file.sync_data().map_err(io)
    }
}
