//! The data partition image: an empty ext4 filesystem, made by `mke2fs`
//! from e2fsprogs on a temporary regular file.
//!
//! Why `mke2fs`: no maintained Rust crate writes ext4 (journal, flex_bg,
//! metadata checksums), and e2fsprogs is the reference implementation the
//! kernel is tested against. Formatting a regular file needs no privileges:
//! no mount, no loop device; the root directory's owner comes from
//! `-E root_owner=0:0` (otherwise it would be the building user).
//!
//! Reproducible: byte-identical output for the same arguments and the same
//! e2fsprogs version, wherever and whenever it runs:
//!
//! - the filesystem UUID is the caller's (`-U`); the directory hash seed is
//!   derived from it (`-E hash_seed=`); the metadata checksum seed follows
//!   from the UUID;
//! - every timestamp is `epoch` (`E2FSPROGS_FAKE_TIME`; mke2fs reads the
//!   clock when that is 0, so an epoch of 0 is written as 1);
//! - the host's `/etc/mke2fs.conf` is not read: a fixed config
//!   ([`MKE2FS_CONF`]) pins block size, inode size and ratio, reserved
//!   blocks and the feature list, and the environment is cleared;
//! - inode tables and the journal are written out (no lazy init, so the
//!   kernel has no background zeroing to do on first mount), no discard.
//!
//! The result is checked: ext4 magic, journal present, UUID and label as
//! asked.
use super::layout::{MIN_DATA_SIZE, SIZE_GRANULE};
use super::{find_tool, uuid_string, DiskError};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The mke2fs configuration used instead of the host's. The features are
/// e2fsprogs 1.46's ext4 defaults, all supported by Linux ≥ 4.4 (no
/// `orphan_file` or `metadata_csum_seed`, which 1.47 adds).
pub const MKE2FS_CONF: &str = "\
[defaults]
\tbase_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
\tdefault_mntopts = acl,user_xattr
\tenable_periodic_fsck = 0
\tblocksize = 4096
\tinode_size = 256
\tinode_ratio = 16384
\treserved_ratio = 5.0
\tlazy_itable_init = false
\tlazy_journal_init = false

[fs_types]
\text4 = {
\t\tfeatures = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
\t}
\tazl_edge = {
\t\tinode_ratio = 16384
\t}
";

/// What went wrong making an ext4 image.
#[derive(Debug, thiserror::Error)]
pub enum Ext4Problem {
    #[error("size {0} bytes must be a multiple of 4096 and at least 8 MiB")]
    Size(u64),
    #[error("label must be 1-16 printable ASCII characters")]
    Label,
    #[error("mke2fs (e2fsprogs) not found in $PATH, /usr/sbin or /sbin: run scripts/setup.sh")]
    Mke2fsMissing,
    #[error("temporary directory: {0}")]
    Temp(std::io::Error),
    #[error("running {path}: {source}")]
    Run {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("mke2fs failed ({status}): {stderr}")]
    Failed { status: String, stderr: String },
    #[error("mke2fs did not make what was asked for: {0}")]
    Unexpected(&'static str),
}

/// The directory hash seed for a filesystem UUID (RFC 4122 order):
/// `sha256("azl-edge ext4 hash_seed\0" ‖ uuid)`, first 16 bytes, v4 bits.
fn hash_seed(uuid: &[u8; 16]) -> [u8; 16] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(b"azl-edge ext4 hash_seed\0");
    ctx.update(uuid);
    let d = ctx.finish();
    let mut s = [0u8; 16];
    for (to, from) in s.iter_mut().zip(d.as_ref()) {
        *to = *from;
    }
    s[6] = (s[6] & 0x0f) | 0x40;
    s[8] = (s[8] & 0x3f) | 0x80;
    s
}

/// An empty ext4 filesystem of exactly `size` bytes (a multiple of 4096, at
/// least 8 MiB) with filesystem UUID `uuid` (superblock byte order = RFC
/// 4122 order, as `dumpe2fs` and `blkid` print it; see
/// [`super::fs_uuid`]), every timestamp `epoch` (seconds since 1970; 0 is
/// written as 1) and volume label `label` (1–16 printable ASCII). Its root
/// directory is owned by 0:0 with mode 0755 and holds `lost+found`.
pub fn ext4_image(
    size: u64,
    uuid: [u8; 16],
    epoch: u32,
    label: &str,
) -> Result<Vec<u8>, DiskError> {
    let fail = |problem| DiskError::Ext4 {
        label: label.to_string(),
        problem,
    };
    if !size.is_multiple_of(SIZE_GRANULE) || size < MIN_DATA_SIZE {
        return Err(fail(Ext4Problem::Size(size)));
    }
    let len = usize::try_from(size).map_err(|_| fail(Ext4Problem::Size(size)))?;
    if label.is_empty()
        || label.len() > 16
        || !label.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
    {
        return Err(fail(Ext4Problem::Label));
    }
    let mke2fs = find_tool("mke2fs").ok_or_else(|| fail(Ext4Problem::Mke2fsMissing))?;

    let tmp = tempfile::Builder::new()
        .prefix("azl-ext4.")
        .tempdir()
        .map_err(|e| fail(Ext4Problem::Temp(e)))?;
    let conf = tmp.path().join("mke2fs.conf");
    let img = tmp.path().join("fs.img");
    std::fs::write(&conf, MKE2FS_CONF).map_err(|e| fail(Ext4Problem::Temp(e)))?;
    std::fs::File::create(&img)
        .and_then(|f| f.set_len(size))
        .map_err(|e| fail(Ext4Problem::Temp(e)))?;

    let extended = format!(
        "root_owner=0:0,hash_seed={},lazy_itable_init=0,lazy_journal_init=0,nodiscard",
        uuid_string(&hash_seed(&uuid))
    );
    let out = Command::new(&mke2fs)
        .env_clear()
        .env("MKE2FS_CONFIG", &conf)
        .env("E2FSPROGS_FAKE_TIME", epoch.max(1).to_string())
        .env("LC_ALL", "C")
        .args(["-q", "-F", "-t", "ext4", "-T", "azl_edge", "-b", "4096"])
        .arg("-L")
        .arg(label)
        .arg("-U")
        .arg(uuid_string(&uuid))
        .arg("-E")
        .arg(&extended)
        .arg(&img)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| {
            fail(Ext4Problem::Run {
                path: mke2fs.clone(),
                source,
            })
        })?;
    if !out.status.success() {
        let mut stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if stderr.is_empty() {
            stderr = String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        return Err(fail(Ext4Problem::Failed {
            status: out.status.to_string(),
            stderr,
        }));
    }
    let bytes = std::fs::read(&img).map_err(|e| fail(Ext4Problem::Temp(e)))?;
    if bytes.len() != len {
        return Err(fail(Ext4Problem::Unexpected("the image changed size")));
    }
    check_superblock(&bytes, &uuid, label).map_err(|w| fail(Ext4Problem::Unexpected(w)))?;
    Ok(bytes)
}

/// Check the primary superblock (at byte 1024) says what was asked for.
fn check_superblock(img: &[u8], uuid: &[u8; 16], label: &str) -> Result<(), &'static str> {
    let sb = img.get(1024..2048).ok_or("no superblock")?;
    if sb.get(0x38..0x3A) != Some(&[0x53, 0xEF][..]) {
        return Err("no ext4 magic in the superblock");
    }
    let compat = sb
        .get(0x5C..0x60)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_le_bytes)
        .ok_or("short superblock")?;
    if compat & 0x4 == 0 {
        return Err("no journal");
    }
    if sb.get(0x68..0x78) != Some(&uuid[..]) {
        return Err("another filesystem UUID");
    }
    let mut want = [0u8; 16];
    if label.len() > want.len() {
        return Err("label longer than 16 bytes");
    }
    for (to, from) in want.iter_mut().zip(label.as_bytes()) {
        *to = *from;
    }
    if sb.get(0x78..0x88) != Some(&want[..]) {
        return Err("another label");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::MIB;
    use super::*;

    #[test]
    fn disk_ext4_superblock_and_errors() {
        let uuid = super::super::fs_uuid(b"seed", "fs:data");
        let img = ext4_image(8 * MIB, uuid, 0, "data").unwrap();
        assert_eq!(img.len() as u64, 8 * MIB);
        check_superblock(&img, &uuid, "data").unwrap();
        let e = |size, label: &str| ext4_image(size, uuid, 1, label).unwrap_err().to_string();
        assert_eq!(
            e(4 * MIB, "data"),
            "ext4 image \"data\": size 4194304 bytes must be a multiple of 4096 and at least 8 MiB"
        );
        assert!(e(8 * MIB + 512, "data").contains("multiple of 4096"));
        assert_eq!(
            e(8 * MIB, "much-too-long-label"),
            "ext4 image \"much-too-long-label\": label must be 1-16 printable ASCII characters"
        );
        assert!(e(8 * MIB, "").contains("label must be"));
    }
}
