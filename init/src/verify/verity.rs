//! dm-verity through the device-mapper ioctl interface (no veritysetup, no
//! libdevmapper on the device): create a read-only `verity` mapping over a
//! root partition, and read its status to learn whether the kernel has seen
//! a corrupted block.
//!
//! The request layout (`#[repr(C)]` `DmIoctl` + `DmTargetSpec`) is in
//! `crate::sys::dm`; see `docs/formats.md`. Names and parameters that do
//! not fit their fields are an error, never truncated.
use crate::sys::dm::{dm_ioctl, DmRequest};
use nix::errno::Errno;
use std::fmt;
use std::fs::{File, OpenOptions};

const DM_VERSION: u32 = 0xC138_FD00;
const DM_DEV_CREATE: u32 = 0xC138_FD03;
const DM_DEV_REMOVE: u32 = 0xC138_FD04;
const DM_DEV_SUSPEND: u32 = 0xC138_FD06;
const DM_TABLE_LOAD: u32 = 0xC138_FD09;
const DM_TABLE_STATUS: u32 = 0xC138_FD0C;

const DM_READONLY_FLAG: u32 = 1;

/// A device-mapper request that could not be made or failed.
#[derive(Debug, PartialEq, Eq)]
pub enum DmError {
    /// The kernel refused the call.
    Call {
        op: &'static str,
        name: String,
        errno: Errno,
    },
    /// A name, target type or parameter string does not fit its field
    /// (bytes, including the terminating NUL).
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    /// The kernel's answer is not laid out as expected.
    Answer {
        op: &'static str,
        what: &'static str,
    },
}

impl fmt::Display for DmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Call { op, name, errno } => {
                write!(f, "device-mapper {op} {name:?}: {}", errno.desc())
            }
            Self::TooLong { field, len, max } => write!(
                f,
                "device-mapper {field} of {len} bytes does not fit ({max} bytes with its NUL)"
            ),
            Self::Answer { op, what } => write!(f, "device-mapper {op}: {what}"),
        }
    }
}

/// Copy `s` NUL-terminated into `dst`, or say which field it overflows.
fn put_cstr(dst: &mut [u8], s: &str, field: &'static str) -> Result<(), DmError> {
    let b = s.as_bytes();
    if b.len() >= dst.len() || b.contains(&0) {
        return Err(DmError::TooLong {
            field,
            len: b.len(),
            max: dst.len(),
        });
    }
    for (d, c) in dst.iter_mut().zip(b) {
        *d = *c;
    }
    Ok(())
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(b.get(..end).unwrap_or(&[])).into_owned()
}

/// One dm ioctl request: header + optional target spec + params.
struct Req {
    r: Box<DmRequest>,
}

impl Req {
    fn new(name: &str, flags: u32) -> Result<Req, DmError> {
        let mut r = DmRequest::zeroed();
        r.header.flags = flags;
        put_cstr(&mut r.header.name, name, "name")?;
        Ok(Req { r })
    }

    /// One target (sector range, type, params) after the header.
    fn target(mut self, sectors: u64, ttype: &str, params: &str) -> Result<Req, DmError> {
        self.r.header.target_count = 1;
        self.r.spec.sector_start = 0;
        self.r.spec.length = sectors;
        put_cstr(&mut self.r.spec.target_type, ttype, "target type")?;
        put_cstr(&mut self.r.params, params, "target parameters")?;
        // `next` = offset of the next spec from this one, 8-aligned.
        let next = (std::mem::size_of::<crate::sys::dm::DmTargetSpec>() + params.len() + 1)
            .div_ceil(8)
            * 8;
        self.r.spec.next = next as u32;
        Ok(self)
    }

    fn call(&mut self, ctl: &File, req: u32, op: &'static str) -> Result<(), DmError> {
        dm_ioctl(ctl, req, &mut self.r).map_err(|errno| DmError::Call {
            op,
            name: cstr(&self.r.header.name),
            errno,
        })
    }
}

pub struct DeviceMapper {
    ctl: File,
}

/// A created mapping.
pub struct Mapped {
    /// `/dev/dm-N`.
    pub node: String,
}

impl DeviceMapper {
    pub fn open() -> Result<DeviceMapper, DmError> {
        let ctl = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/mapper/control")
            .map_err(|e| DmError::Call {
                op: "open /dev/mapper/control",
                name: String::new(),
                errno: crate::errno::of(&e),
            })?;
        let mut r = Req::new("", 0)?;
        r.call(&ctl, DM_VERSION, "version")?;
        Ok(DeviceMapper { ctl })
    }

    /// Create `name` as a read-only verity mapping of `sectors` 512-byte
    /// sectors with the given table parameters, and activate it.
    pub fn create_verity(&self, name: &str, sectors: u64, params: &str) -> Result<Mapped, DmError> {
        // Build every request first: a field that does not fit fails
        // before anything is created.
        let mut create = Req::new(name, 0)?;
        let mut load = Req::new(name, DM_READONLY_FLAG)?.target(sectors, "verity", params)?;
        let mut resume = Req::new(name, 0)?;
        let mut remove = Req::new(name, 0)?;
        create.call(&self.ctl, DM_DEV_CREATE, "create")?;
        if let Err(e) = load.call(&self.ctl, DM_TABLE_LOAD, "load verity table") {
            let _ = remove.call(&self.ctl, DM_DEV_REMOVE, "remove");
            return Err(e);
        }
        if let Err(e) = resume.call(&self.ctl, DM_DEV_SUSPEND, "resume") {
            let _ = remove.call(&self.ctl, DM_DEV_REMOVE, "remove");
            return Err(e);
        }
        let dev = resume.r.header.dev;
        // huge_encode_dev: minor low 8 bits | major << 8 | minor high bits << 12
        let minor = (dev & 0xff) | ((dev >> 12) & 0xfff_ff00);
        Ok(Mapped {
            node: format!("/dev/dm-{minor}"),
        })
    }

    /// The verity target's status: `V` (all verified so far) or `C`
    /// (corruption detected).
    pub fn verity_status(&self, name: &str) -> Result<String, DmError> {
        let mut r = Req::new(name, 0)?;
        r.call(&self.ctl, DM_TABLE_STATUS, "status")?;
        if r.r.header.target_count == 0 {
            return Ok(String::new());
        }
        // The kernel puts the first spec right after the header (data_start
        // 312), which is where DmRequest has it.
        if r.r.header.data_start as usize != std::mem::size_of::<crate::sys::dm::DmIoctl>() {
            return Err(DmError::Answer {
                op: "status",
                what: "target spec not right after the header",
            });
        }
        Ok(cstr(&r.r.params))
    }
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;
    use crate::sys::dm::PARAMS_SIZE;

    #[test]
    fn request_fields() {
        let r = Req::new("root", DM_READONLY_FLAG)
            .and_then(|r| r.target(16, "verity", "1 a b"))
            .map(|r| r.r);
        let Ok(r) = r else {
            panic!("request must build");
        };
        assert_eq!(r.header.version, [4, 0, 0]);
        assert_eq!(r.header.data_size as usize, crate::sys::dm::REQUEST_SIZE);
        assert_eq!(r.header.data_start, 312);
        assert_eq!((r.header.target_count, r.header.flags), (1, 1));
        assert_eq!(cstr(&r.header.name), "root");
        assert_eq!(r.spec.length, 16);
        assert_eq!(cstr(&r.spec.target_type), "verity");
        assert_eq!(cstr(&r.params), "1 a b");
        assert_eq!(r.spec.next % 8, 0);
    }

    #[test]
    fn fields_that_do_not_fit_are_errors_not_truncations() {
        let long = "n".repeat(128);
        assert_eq!(
            Req::new(&long, 0).err(),
            Some(DmError::TooLong {
                field: "name",
                len: 128,
                max: 128
            })
        );
        assert!(Req::new(&"n".repeat(127), 0).is_ok());
        let params = "p".repeat(PARAMS_SIZE);
        let r = Req::new("root", 0).and_then(|r| r.target(8, "verity", &params));
        assert!(matches!(
            r.err(),
            Some(DmError::TooLong {
                field: "target parameters",
                ..
            })
        ));
        let r = Req::new("root", 0).and_then(|r| r.target(8, "a-very-long-target", "x"));
        assert!(matches!(
            r.err(),
            Some(DmError::TooLong {
                field: "target type",
                ..
            })
        ));
        assert!(Req::new("ro\0ot", 0).is_err());
    }
}
