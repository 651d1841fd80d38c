//! The cpio "newc" archive inside an RPM payload (after decompression),
//! read from a buffer that is already bounded: every entry's name and
//! data are slices of that buffer, so a header that declares more than is
//! present is an error, never an allocation.
//!
//! Written here rather than taken from the `rpm` crate: its payload
//! reader is private to it and reads each entry into a buffer of the
//! size the entry declares. This reader is a few dozen lines, allocates
//! nothing per entry, and rpm's extraction (`rpm2cpio | cpio -t`) is the
//! cross-check in the tests.
//!
//! Layout: 110-byte ASCII header (`070701`/`070702`, then 13 fields of 8
//! hex digits: ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
//! devminor, rdevmajor, rdevminor, namesize incl. NUL, check), the name
//! + NUL padded to 4 bytes, the data padded to 4 bytes; `TRAILER!!!` last.
//!
//! RPM's stripped format (`07070X`, for packages with files ≥ 4 GiB) is
//! refused.

const HEADER_LEN: usize = 110;
const TRAILER: &[u8] = b"TRAILER!!!";

/// One archive member, borrowed from the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member<'a> {
    /// As stored: `./usr/bin/sh`.
    pub name: &'a [u8],
    pub ino: u32,
    pub mode: u32,
    pub nlink: u32,
    pub rdev_major: u32,
    pub rdev_minor: u32,
    pub data: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CpioError {
    #[error("payload ends inside the cpio header at offset {offset} (truncated)")]
    ShortHeader { offset: usize },
    #[error("payload is not a cpio newc archive at offset {offset} (magic {magic:?})")]
    Magic { offset: usize, magic: String },
    #[error("payload uses rpm's stripped cpio format (files of 4 GiB or more): not supported")]
    Stripped,
    #[error("cpio header at offset {offset}: field {field} is not hex")]
    Field { offset: usize, field: &'static str },
    #[error(
        "cpio entry at offset {offset}: its {what} runs past the end of the payload (truncated)"
    )]
    Overrun { offset: usize, what: &'static str },
    #[error("cpio entry at offset {offset}: the name is empty or not NUL-terminated")]
    Name { offset: usize },
    #[error("payload has no cpio trailer (truncated)")]
    NoTrailer,
}

/// Every member up to the trailer.
pub fn members(payload: &[u8]) -> Result<Vec<Member<'_>>, CpioError> {
    let mut out = Vec::new();
    let mut at = 0usize;
    loop {
        let (member, next) = member_at(payload, at)?;
        if member.name == TRAILER {
            return Ok(out);
        }
        out.push(member);
        at = next;
    }
}

fn pad4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

fn member_at(payload: &[u8], offset: usize) -> Result<(Member<'_>, usize), CpioError> {
    if offset >= payload.len() {
        return Err(CpioError::NoTrailer);
    }
    let header = payload
        .get(offset..offset.saturating_add(HEADER_LEN))
        .ok_or(CpioError::ShortHeader { offset })?;
    let magic = header.get(..6).unwrap_or_default();
    if magic == b"07070X" {
        return Err(CpioError::Stripped);
    }
    if magic != b"070701" && magic != b"070702" {
        return Err(CpioError::Magic {
            offset,
            magic: String::from_utf8_lossy(magic).into_owned(),
        });
    }
    const FIELDS: [&str; 13] = [
        "ino",
        "mode",
        "uid",
        "gid",
        "nlink",
        "mtime",
        "filesize",
        "devmajor",
        "devminor",
        "rdevmajor",
        "rdevminor",
        "namesize",
        "check",
    ];
    let mut v = [0u32; 13];
    for (i, (slot, field)) in v.iter_mut().zip(FIELDS).enumerate() {
        let start = 6 + 8 * i;
        let text = header
            .get(start..start + 8)
            .and_then(|b| std::str::from_utf8(b).ok())
            .ok_or(CpioError::Field { offset, field })?;
        *slot = u32::from_str_radix(text, 16).map_err(|_| CpioError::Field { offset, field })?;
    }
    let [ino, mode, _uid, _gid, nlink, _mtime, filesize, _dmaj, _dmin, rmaj, rmin, namesize, _check] =
        v;
    let name_start = offset + HEADER_LEN;
    let name_end = name_start.saturating_add(namesize as usize);
    let name_nul = payload
        .get(name_start..name_end)
        .ok_or(CpioError::Overrun {
            offset,
            what: "name",
        })?;
    let name = match name_nul.split_last() {
        Some((0, name)) if !name.is_empty() => name,
        _ => return Err(CpioError::Name { offset }),
    };
    let data_start = pad4(name_end);
    let data_end = data_start.saturating_add(filesize as usize);
    let data = payload
        .get(data_start..data_end)
        .ok_or(CpioError::Overrun {
            offset,
            what: "data",
        })?;
    Ok((
        Member {
            name,
            ino,
            mode,
            nlink,
            rdev_major: rmaj,
            rdev_minor: rmin,
            data,
        },
        pad4(data_end),
    ))
}

/// A newc member as rpm writes it (for tests of the readers above it).
#[cfg(test)]
pub(crate) fn write_member(
    out: &mut Vec<u8>,
    name: &str,
    mode: u32,
    rdev: (u32, u32),
    data: &[u8],
) {
    let f = [
        1,
        mode,
        0,
        0,
        1,
        0,
        data.len() as u32,
        0,
        0,
        rdev.0,
        rdev.1,
        name.len() as u32 + 1,
        0,
    ];
    out.extend_from_slice(b"070701");
    for x in f {
        out.extend_from_slice(format!("{x:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
    out.extend_from_slice(data);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn entry(out: &mut Vec<u8>, name: &str, mode: u32, data: &[u8]) {
        write_member(out, name, mode, (0, 0), data);
    }

    #[test]
    fn reads_members_and_refuses_truncation_anywhere() {
        let mut a = Vec::new();
        entry(&mut a, "./usr/bin/x", 0o100755, b"hello");
        entry(&mut a, "./usr", 0o040755, b"");
        entry(&mut a, "TRAILER!!!", 0, b"");
        let m = members(&a).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(
            (m[0].name, m[0].data, m[0].mode),
            (&b"./usr/bin/x"[..], &b"hello"[..], 0o100755)
        );
        for cut in 0..a.len() - 4 {
            assert!(members(&a[..cut]).is_err(), "cut at {cut}");
        }
        let mut huge = a.clone();
        huge[6 + 8 * 6..6 + 8 * 7].copy_from_slice(b"ffffffff");
        assert!(matches!(
            members(&huge),
            Err(CpioError::Overrun { what: "data", .. })
        ));
        let mut stripped = a;
        stripped[5] = b'X';
        assert_eq!(members(&stripped), Err(CpioError::Stripped));
    }
}
