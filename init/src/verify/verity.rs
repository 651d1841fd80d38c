//! dm-verity through the device-mapper ioctl interface (no veritysetup, no
//! libdevmapper on the device): create a read-only `verity` mapping over a
//! root partition, and read its status to learn whether the kernel has seen
//! a corrupted block.
//!
//! `struct dm_ioctl` (312 bytes) is built by hand in a byte buffer at the
//! offsets of `include/uapi/linux/dm-ioctl.h`; see `docs/formats.md`.
use nix::errno::Errno;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;

const DM_IOCTL_SIZE: usize = 312;
const DM_TARGET_SPEC_SIZE: usize = 40;
const BUF_SIZE: usize = 16 * 1024;

const DM_VERSION: u32 = 0xC138_FD00;
const DM_DEV_CREATE: u32 = 0xC138_FD03;
const DM_DEV_REMOVE: u32 = 0xC138_FD04;
const DM_DEV_SUSPEND: u32 = 0xC138_FD06;
const DM_TABLE_LOAD: u32 = 0xC138_FD09;
const DM_TABLE_STATUS: u32 = 0xC138_FD0C;

const DM_READONLY_FLAG: u32 = 1;

/// A device-mapper call that failed.
#[derive(Debug)]
pub struct DmError {
    pub op: &'static str,
    pub name: String,
    pub errno: Errno,
}

impl fmt::Display for DmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "device-mapper {} {:?}: {}",
            self.op,
            self.name,
            self.errno.desc()
        )
    }
}

/// One dm ioctl buffer: header + optional target spec + params.
struct Req {
    buf: Vec<u8>,
}

fn put_u32(b: &mut [u8], off: usize, v: u32) {
    if let Some(s) = b.get_mut(off..off + 4) {
        s.copy_from_slice(&v.to_ne_bytes());
    }
}

fn put_u64(b: &mut [u8], off: usize, v: u64) {
    if let Some(s) = b.get_mut(off..off + 8) {
        s.copy_from_slice(&v.to_ne_bytes());
    }
}

fn get_u32(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_ne_bytes)
        .unwrap_or(0)
}

fn get_u64(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_ne_bytes)
        .unwrap_or(0)
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(b.get(..end).unwrap_or(&[])).into_owned()
}

impl Req {
    fn new(name: &str, flags: u32) -> Req {
        let mut buf = vec![0u8; BUF_SIZE];
        put_u32(&mut buf, 0, 4); // version 4.0.0
        put_u32(&mut buf, 12, BUF_SIZE as u32); // data_size
        put_u32(&mut buf, 16, DM_IOCTL_SIZE as u32); // data_start
        put_u32(&mut buf, 28, flags);
        let n = name.len().min(127);
        if let (Some(dst), Some(src)) = (buf.get_mut(48..48 + n), name.as_bytes().get(..n)) {
            dst.copy_from_slice(src);
        }
        Req { buf }
    }

    /// Append one target (sector range, type, params) after the header.
    fn target(mut self, sectors: u64, ttype: &str, params: &str) -> Req {
        let spec = DM_IOCTL_SIZE;
        put_u32(&mut self.buf, 20, 1); // target_count
        put_u64(&mut self.buf, spec, 0);
        put_u64(&mut self.buf, spec + 8, sectors);
        let t = ttype.len().min(15);
        if let (Some(dst), Some(src)) = (
            self.buf.get_mut(spec + 24..spec + 24 + t),
            ttype.as_bytes().get(..t),
        ) {
            dst.copy_from_slice(src);
        }
        let p = spec + DM_TARGET_SPEC_SIZE;
        let n = params.len().min(BUF_SIZE - p - 8);
        if let (Some(dst), Some(src)) = (self.buf.get_mut(p..p + n), params.as_bytes().get(..n)) {
            dst.copy_from_slice(src);
        }
        // `next` = offset of the next spec from this one, 8-aligned.
        let next = (DM_TARGET_SPEC_SIZE + n + 1).div_ceil(8) * 8;
        put_u32(&mut self.buf, spec + 36, next as u32);
        self
    }

    fn call(&mut self, ctl: &File, req: u32, op: &'static str) -> Result<(), DmError> {
        // SAFETY: buf is BUF_SIZE bytes, data_size says so; the kernel
        // reads and writes within it.
        let r = unsafe { libc::ioctl(ctl.as_raw_fd(), req as _, self.buf.as_mut_ptr()) };
        if r < 0 {
            return Err(DmError {
                op,
                name: cstr(self.buf.get(48..176).unwrap_or(&[])),
                errno: Errno::last(),
            });
        }
        Ok(())
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
            .map_err(|e| DmError {
                op: "open /dev/mapper/control",
                name: String::new(),
                errno: crate::errno::of(&e),
            })?;
        let mut r = Req::new("", 0);
        r.call(&ctl, DM_VERSION, "version")?;
        Ok(DeviceMapper { ctl })
    }

    /// Create `name` as a read-only verity mapping of `sectors` 512-byte
    /// sectors with the given table parameters, and activate it.
    pub fn create_verity(&self, name: &str, sectors: u64, params: &str) -> Result<Mapped, DmError> {
        Req::new(name, 0).call(&self.ctl, DM_DEV_CREATE, "create")?;
        let loaded = Req::new(name, DM_READONLY_FLAG)
            .target(sectors, "verity", params)
            .call(&self.ctl, DM_TABLE_LOAD, "load verity table");
        if let Err(e) = loaded {
            let _ = Req::new(name, 0).call(&self.ctl, DM_DEV_REMOVE, "remove");
            return Err(e);
        }
        let mut resume = Req::new(name, 0);
        if let Err(e) = resume.call(&self.ctl, DM_DEV_SUSPEND, "resume") {
            let _ = Req::new(name, 0).call(&self.ctl, DM_DEV_REMOVE, "remove");
            return Err(e);
        }
        let dev = get_u64(&resume.buf, 40);
        // huge_encode_dev: minor low 8 bits | major << 8 | minor high bits << 12
        let minor = (dev & 0xff) | ((dev >> 12) & 0xfff_ff00);
        Ok(Mapped {
            node: format!("/dev/dm-{minor}"),
        })
    }

    /// The verity target's status: `V` (all verified so far) or `C`
    /// (corruption detected).
    pub fn verity_status(&self, name: &str) -> Result<String, DmError> {
        let mut r = Req::new(name, 0);
        r.call(&self.ctl, DM_TABLE_STATUS, "status")?;
        let start = get_u32(&r.buf, 16) as usize;
        if get_u32(&r.buf, 20) == 0 {
            return Ok(String::new());
        }
        Ok(cstr(
            r.buf.get(start + DM_TARGET_SPEC_SIZE..).unwrap_or(&[]),
        ))
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn header_layout() {
        let r = Req::new("root", DM_READONLY_FLAG).target(16, "verity", "1 a b");
        assert_eq!(get_u32(&r.buf, 0), 4);
        assert_eq!(get_u32(&r.buf, 12), BUF_SIZE as u32);
        assert_eq!(get_u32(&r.buf, 16), 312);
        assert_eq!(get_u32(&r.buf, 20), 1);
        assert_eq!(get_u32(&r.buf, 28), 1);
        assert_eq!(&r.buf[48..53], b"root\0");
        assert_eq!(get_u64(&r.buf, 312 + 8), 16);
        assert_eq!(&r.buf[312 + 24..312 + 31], b"verity\0");
        assert_eq!(&r.buf[352..358], b"1 a b\0");
        assert_eq!(get_u32(&r.buf, 312 + 36) % 8, 0);
    }
}
