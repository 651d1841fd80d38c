//! `BLKPG_ADD_PARTITION`: telling the kernel about a partition of a disk.
use nix::errno::Errno;
use std::fs::File;
use std::os::fd::AsRawFd;

/// `struct blkpg_partition` of `<linux/blkpg.h>`: byte offsets and sizes.
#[repr(C)]
pub struct BlkpgPartition {
    pub start: i64,
    pub length: i64,
    pub pno: libc::c_int,
    pub devname: [u8; 64],
    pub volname: [u8; 64],
}

/// `struct blkpg_ioctl_arg` of `<linux/blkpg.h>`.
#[repr(C)]
pub struct BlkpgIoctlArg {
    pub op: libc::c_int,
    pub flags: libc::c_int,
    pub datalen: libc::c_int,
    pub data: *mut libc::c_void,
}

#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<BlkpgPartition>() == 152);
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<BlkpgIoctlArg>() == 24);

const BLKPG_ADD_PARTITION: libc::c_int = 1;
nix::ioctl_write_ptr_bad!(blkpg, 0x1269, BlkpgIoctlArg);

/// Tell the kernel about partition `pno` of the whole disk `disk` (opened
/// read-only is enough): `start` and `length` in bytes.
pub fn add_partition(disk: &File, pno: u32, start: u64, length: u64) -> Result<(), Errno> {
    let mut part = BlkpgPartition {
        start: i64::try_from(start).map_err(|_| Errno::EINVAL)?,
        length: i64::try_from(length).map_err(|_| Errno::EINVAL)?,
        pno: libc::c_int::try_from(pno).map_err(|_| Errno::EINVAL)?,
        devname: [0; 64],
        volname: [0; 64],
    };
    let arg = BlkpgIoctlArg {
        op: BLKPG_ADD_PARTITION,
        flags: 0,
        datalen: std::mem::size_of::<BlkpgPartition>() as libc::c_int,
        data: (&raw mut part).cast(),
    };
    // SAFETY: `arg` points at a live, correctly sized blkpg_partition for the
    // duration of the call; the kernel only reads both.
    unsafe { blkpg(disk.as_raw_fd(), &arg) }?;
    Ok(())
}
