//! The device-mapper ioctl interface of `<linux/dm-ioctl.h>`: typed
//! `struct dm_ioctl` and `struct dm_target_spec`, laid out in one request
//! buffer (header, one target spec, its parameters) as the kernel expects.
use nix::errno::Errno;
use std::fs::File;
use std::os::fd::AsRawFd;

/// `struct dm_ioctl`.
#[repr(C)]
pub struct DmIoctl {
    pub version: [u32; 3],
    pub data_size: u32,
    pub data_start: u32,
    pub target_count: u32,
    pub open_count: i32,
    pub flags: u32,
    pub event_nr: u32,
    pub padding: u32,
    pub dev: u64,
    pub name: [u8; 128],
    pub uuid: [u8; 129],
    pub data: [u8; 7],
}

/// `struct dm_target_spec`; NUL-terminated parameters follow it.
#[repr(C)]
pub struct DmTargetSpec {
    pub sector_start: u64,
    pub length: u64,
    pub status: i32,
    /// Offset of the next spec from the start of this one (8-aligned).
    pub next: u32,
    pub target_type: [u8; 16],
}

const _: () = assert!(std::mem::size_of::<DmIoctl>() == 312);
const _: () = assert!(std::mem::size_of::<DmTargetSpec>() == 40);

/// Bytes of a whole request buffer.
pub const REQUEST_SIZE: usize = 16 * 1024;
/// Bytes for parameters after the header and one target spec.
pub const PARAMS_SIZE: usize =
    REQUEST_SIZE - std::mem::size_of::<DmIoctl>() - std::mem::size_of::<DmTargetSpec>();

/// One request buffer: the kernel reads and writes `header.data_size`
/// bytes from its start; results (status) start at `data_start` (312).
#[repr(C)]
pub struct DmRequest {
    pub header: DmIoctl,
    pub spec: DmTargetSpec,
    pub params: [u8; PARAMS_SIZE],
}

const _: () = assert!(std::mem::size_of::<DmRequest>() == REQUEST_SIZE);

impl DmRequest {
    /// An all-zero request with version 4.0.0 and the sizes filled in.
    pub fn zeroed() -> Box<DmRequest> {
        Box::new(DmRequest {
            header: DmIoctl {
                version: [4, 0, 0],
                data_size: REQUEST_SIZE as u32,
                data_start: std::mem::size_of::<DmIoctl>() as u32,
                target_count: 0,
                open_count: 0,
                flags: 0,
                event_nr: 0,
                padding: 0,
                dev: 0,
                name: [0; 128],
                uuid: [0; 129],
                data: [0; 7],
            },
            spec: DmTargetSpec {
                sector_start: 0,
                length: 0,
                status: 0,
                next: 0,
                target_type: [0; 16],
            },
            params: [0; PARAMS_SIZE],
        })
    }
}

/// Issue device-mapper ioctl `request` (`_IOWR(0xfd, nr, 312)`) on the
/// control device.
pub fn dm_ioctl(ctl: &File, request: u32, req: &mut DmRequest) -> Result<(), Errno> {
    // SAFETY: `req` is a live, exclusively borrowed REQUEST_SIZE-byte
    // buffer whose header says data_size = REQUEST_SIZE; the kernel reads
    // and writes only within it.
    let r = unsafe { libc::ioctl(ctl.as_raw_fd(), request as _, std::ptr::from_mut(req)) };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(())
}
