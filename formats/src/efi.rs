//! UEFI boot control, the one contract of device and host: the
//! `EFI_LOAD_OPTION` of a slot's boot entry (UEFI 2.10 §3.1.3), the
//! `BootOrder`/`BootNext` values, `Boot####` names, the efivarfs file
//! format, the ESP paths of each slot's kernel files and the rule that
//! builds a slot's kernel command line. imagegen uses it to write the ESP
//! and to predict each slot's measured command line; stage 1 and the UEFI
//! backend use it to create, check and arm the entries.
//!
//! ```text
//! EFI_LOAD_OPTION  attributes u32 LE (1 = LOAD_OPTION_ACTIVE)
//!                  FilePathListLength u16 LE
//!                  Description  UTF-16LE, NUL-terminated
//!                  FilePathList [FilePathListLength bytes]:
//!                     HD node     04 01 2a00  partition u32, start LBA u64,
//!                                 size LBA u64, GPT partition GUID [16]
//!                                 (on-disk order), format 02 (GPT), sigtype 02
//!                     File node   04 04 len   UTF-16LE path, NUL-terminated
//!                     End node    7f ff 0400
//!                  OptionalData   the rest: UTF-16LE kernel command line
//! efivarfs file    attributes u32 LE ‖ value
//! ```
use crate::bootstate::Slot;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// EFI global variable GUID (`Boot####`, `BootOrder`, `BootNext`, `BootCurrent`).
pub const GLOBAL_GUID: &str = "8be4df61-93ca-11d2-aa0d-00e098032b8c";
/// `EFI_VARIABLE_NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS`.
pub const ATTR_NV_BS_RT: u32 = 7;
/// `LOAD_OPTION_ACTIVE`.
pub const LOAD_OPTION_ACTIVE: u32 = 1;
/// Where Linux mounts efivarfs.
pub const EFIVARFS: &str = "/sys/firmware/efi/efivars";
/// Largest load option the decoder accepts (edk2 keeps variables far smaller).
pub const MAX_LOAD_OPTION: usize = 8192;
/// Longest description (UTF-16 code units, without the NUL).
pub const MAX_DESCRIPTION: usize = 128;
/// Most entries a `BootOrder` may list here.
pub const MAX_BOOT_ORDER: usize = 512;
/// Bytes of an HD media device path node.
pub const HD_NODE_LEN: u16 = 42;

/// `BootOrder`, `BootNext`, `BootCurrent`.
pub const BOOT_ORDER: &str = "BootOrder";
pub const BOOT_NEXT: &str = "BootNext";
pub const BOOT_CURRENT: &str = "BootCurrent";

/// Directory of a slot's kernel files on the ESP, `/`-separated from the
/// ESP root without a leading slash (`EFI/azl/a`).
pub fn esp_dir(slot: Slot) -> String {
    format!("EFI/azl/{}", slot.letter())
}

/// The files of a slot on the ESP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EspFile {
    /// The kernel (an EFI application: the Linux EFI stub).
    Kernel,
    /// The gzip cpio initramfs the stub loads (`initrd=`).
    Initrd,
    /// The load option's OptionalData (UTF-16LE command line), for the
    /// first boot's `bcfg boot -opt`.
    Options,
    /// The same command line as text, for people and `imagegen inspect`.
    Cmdline,
}

impl EspFile {
    pub const ALL: [EspFile; 4] = [Self::Kernel, Self::Initrd, Self::Options, Self::Cmdline];

    pub fn file_name(self) -> &'static str {
        match self {
            Self::Kernel => "Image",
            Self::Initrd => "initrd",
            Self::Options => "options.bin",
            Self::Cmdline => "cmdline.txt",
        }
    }
}

/// `EFI/azl/<slot>/<file>` (for a FAT writer or a mounted ESP).
pub fn esp_path(slot: Slot, file: EspFile) -> String {
    format!("{}/{}", esp_dir(slot), file.file_name())
}

/// The firmware's spelling: `\EFI\azl\<slot>\<file>`.
pub fn efi_path(slot: Slot, file: EspFile) -> String {
    format!("\\{}", esp_path(slot, file).replace('/', "\\"))
}

/// The first-boot script the edk2 shell runs from the ESP root when no
/// boot option works.
pub const STARTUP_NSH: &str = "startup.nsh";

/// The kernel argument that tells stage 1 which slot's kernel the
/// firmware started.
pub const SLOT_ARG: &str = "azl.slot=";

/// The kernel command line of `slot`'s boot entry: the stub's initrd
/// path, the image's command line `base`, and `azl.slot=<slot>`. What the
/// firmware passes, the kernel shows in /proc/cmdline and init measures;
/// the host predicts each slot's reference values from it.
pub fn slot_cmdline(slot: Slot, base: &str) -> String {
    let base = base.split_whitespace().collect::<Vec<_>>().join(" ");
    let initrd = efi_path(slot, EspFile::Initrd);
    if base.is_empty() {
        format!("initrd={initrd} {SLOT_ARG}{}", slot.letter())
    } else {
        format!("initrd={initrd} {base} {SLOT_ARG}{}", slot.letter())
    }
}

/// The slot named by the one `azl.slot=` argument of a command line;
/// `None` when it is absent, repeated or names no slot.
pub fn started_slot(cmdline: &str) -> Option<Slot> {
    let mut found = None;
    for arg in cmdline.split_whitespace() {
        if let Some(v) = arg.strip_prefix(SLOT_ARG) {
            if found.is_some() {
                return None;
            }
            found = Some(match v {
                "a" => Slot::A,
                "b" => Slot::B,
                _ => return None,
            });
        }
    }
    found
}

/// The description of a slot's boot entry (`azl-edge A`).
pub fn description(slot: Slot) -> &'static str {
    match slot {
        Slot::A => "azl-edge A",
        Slot::B => "azl-edge B",
    }
}

/// `Boot####`: four upper-case hex digits.
pub fn boot_var_name(n: u16) -> String {
    format!("Boot{n:04X}")
}

/// The number of a `Boot####` name (upper-case hex, as the spec requires).
pub fn parse_boot_var_name(name: &str) -> Option<u16> {
    let hex = name.strip_prefix("Boot")?;
    if hex.len() != 4 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'F')) {
        return None;
    }
    u16::from_str_radix(hex, 16).ok()
}

/// The efivarfs file name of global variable `name` (`BootOrder-8be4…`).
pub fn efivarfs_name(name: &str) -> String {
    format!("{name}-{GLOBAL_GUID}")
}

/// UTF-16LE of `s`, without a terminator.
pub fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// A slot's load option data (OptionalData): its command line, UTF-16LE,
/// no terminator — the bytes of `options.bin`.
pub fn options_data(cmdline: &str) -> Vec<u8> {
    utf16le(cmdline)
}

/// Why EFI bytes do not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EfiError {
    /// Fewer bytes than the structure needs (what, needed, got).
    Truncated {
        what: &'static str,
        need: usize,
        got: usize,
    },
    /// Larger than this decoder accepts.
    TooLarge { what: &'static str, len: usize },
    /// The description has no NUL terminator within bounds.
    Description,
    /// A device path node's length is below 4 or past the list.
    NodeLength { offset: usize, len: usize },
    /// The device path list does not end with an End node.
    NoEnd,
    /// A File node's path is not NUL-terminated UTF-16.
    FilePath,
    /// A u16 list with an odd byte count.
    OddLength { what: &'static str, len: usize },
}

impl fmt::Display for EfiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { what, need, got } => {
                write!(f, "{what} is truncated: needs {need} bytes, has {got}")
            }
            Self::TooLarge { what, len } => write!(f, "{what} is {len} bytes, too large"),
            Self::Description => f.write_str("load option description is not NUL-terminated"),
            Self::NodeLength { offset, len } => write!(
                f,
                "device path node at byte {offset} has length {len} (below 4 or past the list)"
            ),
            Self::NoEnd => f.write_str("device path list does not end with an End node"),
            Self::FilePath => f.write_str("file path node is not NUL-terminated UTF-16"),
            Self::OddLength { what, len } => write!(f, "{what} has an odd length {len}"),
        }
    }
}

/// The GPT partition an entry's kernel is on (HD media device path node).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HardDrive {
    /// 1-based GPT entry number.
    pub partition_number: u32,
    pub start_lba: u64,
    pub size_lba: u64,
    /// Unique partition GUID, GPT on-disk byte order.
    pub part_guid: [u8; 16],
}

impl HardDrive {
    /// The node for GPT entry `e` (512-byte sectors).
    pub fn of_entry(e: &crate::gpt::Entry) -> HardDrive {
        HardDrive {
            partition_number: e.number,
            start_lba: e.first_lba,
            size_lba: e.last_lba.saturating_sub(e.first_lba).saturating_add(1),
            part_guid: e.part_guid,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[4, 1]);
        out.extend_from_slice(&HD_NODE_LEN.to_le_bytes());
        out.extend_from_slice(&self.partition_number.to_le_bytes());
        out.extend_from_slice(&self.start_lba.to_le_bytes());
        out.extend_from_slice(&self.size_lba.to_le_bytes());
        out.extend_from_slice(&self.part_guid);
        out.extend_from_slice(&[2, 2]);
    }

    fn decode(body: &[u8]) -> Option<HardDrive> {
        if body.len() != usize::from(HD_NODE_LEN) - 4 {
            return None;
        }
        let u32_at = |o: usize| {
            body.get(o..o + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
        };
        let u64_at = |o: usize| {
            body.get(o..o + 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_le_bytes)
        };
        // Only GPT partitions with a GUID signature are ours.
        if body.get(36..38) != Some(&[2, 2][..]) {
            return None;
        }
        Some(HardDrive {
            partition_number: u32_at(0)?,
            start_lba: u64_at(4)?,
            size_lba: u64_at(12)?,
            part_guid: body.get(20..36)?.try_into().ok()?,
        })
    }
}

/// A decoded `EFI_LOAD_OPTION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOption {
    pub attributes: u32,
    pub description: String,
    /// The last HD node of the device path (a firmware-made path has
    /// hardware nodes before it), if any.
    pub hard_drive: Option<HardDrive>,
    /// The File node's path (`\EFI\azl\a\Image`), if any.
    pub file_path: Option<String>,
    /// Device path nodes that are neither HD, File nor End.
    pub other_nodes: usize,
    pub optional_data: Vec<u8>,
}

impl LoadOption {
    /// The entry of `slot`'s kernel on the ESP partition `esp`, with the
    /// slot's command line `cmdline` ([`slot_cmdline`]) as OptionalData.
    pub fn for_slot(slot: Slot, esp: HardDrive, cmdline: &str) -> LoadOption {
        LoadOption {
            attributes: LOAD_OPTION_ACTIVE,
            description: description(slot).into(),
            hard_drive: Some(esp),
            file_path: Some(efi_path(slot, EspFile::Kernel)),
            other_nodes: 0,
            optional_data: options_data(cmdline),
        }
    }

    /// The variable's bytes. Only the HD and File nodes are written (a
    /// short-form device path the firmware expands); `other_nodes` is not
    /// representable and ignored.
    pub fn encode(&self) -> Vec<u8> {
        let mut path = Vec::new();
        if let Some(hd) = &self.hard_drive {
            hd.encode(&mut path);
        }
        if let Some(file) = &self.file_path {
            let mut name = utf16le(file);
            name.extend_from_slice(&[0, 0]);
            let len = u16::try_from(name.len() + 4).unwrap_or(u16::MAX);
            path.extend_from_slice(&[4, 4]);
            path.extend_from_slice(&len.to_le_bytes());
            path.extend_from_slice(&name);
        }
        path.extend_from_slice(&[0x7f, 0xff, 4, 0]);
        let mut out = Vec::new();
        out.extend_from_slice(&self.attributes.to_le_bytes());
        let fpl = u16::try_from(path.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&fpl.to_le_bytes());
        out.extend_from_slice(&utf16le(&self.description));
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&path);
        out.extend_from_slice(&self.optional_data);
        out
    }

    /// Decode, bounded by the input and [`MAX_LOAD_OPTION`]; never panics.
    pub fn decode(bytes: &[u8]) -> Result<LoadOption, EfiError> {
        if bytes.len() > MAX_LOAD_OPTION {
            return Err(EfiError::TooLarge {
                what: "load option",
                len: bytes.len(),
            });
        }
        let truncated = |need| EfiError::Truncated {
            what: "load option",
            need,
            got: bytes.len(),
        };
        let (attributes, fpl) = match bytes {
            [a, b, c, d, e, f, ..] => (
                u32::from_le_bytes([*a, *b, *c, *d]),
                usize::from(u16::from_le_bytes([*e, *f])),
            ),
            _ => return Err(truncated(6)),
        };
        let mut units = Vec::new();
        let mut at = 6;
        loop {
            let u = match bytes.get(at..at + 2) {
                Some([a, b]) => u16::from_le_bytes([*a, *b]),
                _ => return Err(EfiError::Description),
            };
            at += 2;
            if u == 0 {
                break;
            }
            if units.len() >= MAX_DESCRIPTION {
                return Err(EfiError::Description);
            }
            units.push(u);
        }
        let description = char::decode_utf16(units.iter().copied())
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect();
        let path = bytes.get(at..at + fpl).ok_or_else(|| truncated(at + fpl))?;
        let optional_data = bytes.get(at + fpl..).unwrap_or_default().to_vec();
        let (hard_drive, file_path, other_nodes) = decode_path(path)?;
        Ok(LoadOption {
            attributes,
            description,
            hard_drive,
            file_path,
            other_nodes,
            optional_data,
        })
    }

    /// The OptionalData as text, when it is UTF-16LE without unpaired
    /// surrogates (a trailing NUL is dropped).
    pub fn cmdline(&self) -> Option<String> {
        let units: Vec<u16> = self
            .optional_data
            .chunks(2)
            .map(|c| match c {
                [a, b] => Some(u16::from_le_bytes([*a, *b])),
                _ => None,
            })
            .collect::<Option<_>>()?;
        let units = match units.split_last() {
            Some((0, rest)) => rest,
            _ => units.as_slice(),
        };
        char::decode_utf16(units.iter().copied())
            .collect::<Result<String, _>>()
            .ok()
    }
}

type PathParts = (Option<HardDrive>, Option<String>, usize);

fn decode_path(path: &[u8]) -> Result<PathParts, EfiError> {
    let (mut hd, mut file, mut other) = (None, None, 0usize);
    let mut at = 0;
    loop {
        let (ty, sub, len) = match path.get(at..at + 4) {
            Some([t, s, l0, l1]) => (*t, *s, usize::from(u16::from_le_bytes([*l0, *l1]))),
            _ => return Err(EfiError::NoEnd),
        };
        if len < 4 || at + len > path.len() {
            return Err(EfiError::NodeLength { offset: at, len });
        }
        let body = path.get(at + 4..at + len).unwrap_or_default();
        match (ty, sub) {
            (0x7f, 0xff) => break,
            (4, 1) => match HardDrive::decode(body) {
                Some(h) => hd = Some(h),
                None => other += 1,
            },
            (4, 4) => file = Some(file_node(body)?),
            _ => other += 1,
        }
        at += len;
    }
    Ok((hd, file, other))
}

fn file_node(body: &[u8]) -> Result<String, EfiError> {
    let units: Vec<u16> = body
        .chunks(2)
        .map(|c| match c {
            [a, b] => Ok(u16::from_le_bytes([*a, *b])),
            _ => Err(EfiError::FilePath),
        })
        .collect::<Result<_, _>>()?;
    match units.split_last() {
        Some((0, rest)) => char::decode_utf16(rest.iter().copied())
            .collect::<Result<String, _>>()
            .map_err(|_| EfiError::FilePath),
        _ => Err(EfiError::FilePath),
    }
}

/// A `BootOrder` value.
pub fn encode_boot_order(order: &[u16]) -> Vec<u8> {
    order.iter().flat_map(|n| n.to_le_bytes()).collect()
}

pub fn decode_boot_order(bytes: &[u8]) -> Result<Vec<u16>, EfiError> {
    if !bytes.len().is_multiple_of(2) {
        return Err(EfiError::OddLength {
            what: "BootOrder",
            len: bytes.len(),
        });
    }
    if bytes.len() / 2 > MAX_BOOT_ORDER {
        return Err(EfiError::TooLarge {
            what: "BootOrder",
            len: bytes.len(),
        });
    }
    Ok(bytes
        .chunks(2)
        .map(|c| match c {
            [a, b] => u16::from_le_bytes([*a, *b]),
            _ => 0,
        })
        .collect())
}

/// A `BootNext`/`BootCurrent` value (one u16).
pub fn decode_u16(what: &'static str, bytes: &[u8]) -> Result<u16, EfiError> {
    match bytes {
        [a, b] => Ok(u16::from_le_bytes([*a, *b])),
        _ => Err(EfiError::Truncated {
            what,
            need: 2,
            got: bytes.len(),
        }),
    }
}

/// `BootOrder` with `first` then `second` at the front, every other
/// entry kept after them in its order (duplicates dropped).
pub fn boot_order_with(order: &[u16], first: u16, second: u16) -> Vec<u16> {
    let mut out = Vec::with_capacity(order.len() + 2);
    for n in [first, second].into_iter().chain(order.iter().copied()) {
        if !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

/// The content of an efivarfs file: attributes, then the value.
pub fn efivarfs_encode(attributes: u32, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + value.len());
    out.extend_from_slice(&attributes.to_le_bytes());
    out.extend_from_slice(value);
    out
}

/// Split an efivarfs file into attributes and value.
pub fn efivarfs_decode(bytes: &[u8]) -> Result<(u32, &[u8]), EfiError> {
    match bytes {
        [a, b, c, d, value @ ..] => Ok((u32::from_le_bytes([*a, *b, *c, *d]), value)),
        _ => Err(EfiError::Truncated {
            what: "efivarfs file",
            need: 4,
            got: bytes.len(),
        }),
    }
}

/// The first-boot script for the edk2 shell (`startup.nsh` on the ESP,
/// run when no boot option works — a fresh variable store has none of
/// ours): create slot A's entry (`bcfg boot add`, no load options: stage 1
/// rewrites it with the exact ones on this boot) and start slot A's
/// kernel with `cmdline` ([`slot_cmdline`]). The shell puts the image path
/// in front of the arguments, so this one boot's /proc/cmdline (and PCR 8
/// measurement) has the path as first word; every later boot comes from
/// the entry and has exactly `cmdline`.
pub fn startup_nsh(cmdline: &str) -> String {
    let kernel = efi_path(Slot::A, EspFile::Kernel);
    let desc = description(Slot::A);
    format!(
        "@echo -off\r\n\
         echo azl-edge first boot: creating the boot entry of slot a\r\n\
         fs0:\r\n\
         bcfg boot add 0 fs0:{kernel} \"{desc}\"\r\n\
         fs0:{kernel} {cmdline}\r\n"
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use alloc::vec;

    fn esp() -> HardDrive {
        HardDrive {
            partition_number: 1,
            start_lba: 2048,
            size_lba: 131072,
            part_guid: [
                0x78, 0x56, 0x34, 0x12, 0xbc, 0x9a, 0xf0, 0xde, 1, 2, 3, 4, 5, 6, 7, 8,
            ],
        }
    }

    #[test]
    fn load_option_known_bytes() {
        let o = LoadOption {
            attributes: 1,
            description: "A".into(),
            hard_drive: Some(esp()),
            file_path: Some("\\K".into()),
            other_nodes: 0,
            optional_data: utf16le("x"),
        };
        let b = o.encode();
        let mut want = vec![1, 0, 0, 0];
        // FilePathListLength: HD 42 + File (4 + "\K\0" 6) 10 + End 4 = 56.
        want.extend_from_slice(&[56, 0]);
        want.extend_from_slice(&[b'A', 0, 0, 0]);
        want.extend_from_slice(&[4, 1, 42, 0, 1, 0, 0, 0]);
        want.extend_from_slice(&2048u64.to_le_bytes());
        want.extend_from_slice(&131072u64.to_le_bytes());
        want.extend_from_slice(&esp().part_guid);
        want.extend_from_slice(&[2, 2]);
        want.extend_from_slice(&[4, 4, 10, 0, b'\\', 0, b'K', 0, 0, 0]);
        want.extend_from_slice(&[0x7f, 0xff, 4, 0]);
        want.extend_from_slice(&[b'x', 0]);
        assert_eq!(b, want);
        assert_eq!(LoadOption::decode(&b).unwrap(), o);
        // Every truncation is an error (the optional data shrinks instead
        // once the path is complete).
        for n in 0..b.len() - 2 {
            assert!(LoadOption::decode(&b[..n]).is_err(), "{n}");
        }
    }

    #[test]
    fn slot_entry_roundtrips_and_names_the_slot_files() {
        let cmd = slot_cmdline(Slot::B, " console=ttyAMA0  panic=-1 ");
        assert_eq!(
            cmd,
            "initrd=\\EFI\\azl\\b\\initrd console=ttyAMA0 panic=-1 azl.slot=b"
        );
        assert_eq!(
            slot_cmdline(Slot::A, ""),
            "initrd=\\EFI\\azl\\a\\initrd azl.slot=a"
        );
        let o = LoadOption::for_slot(Slot::B, esp(), &cmd);
        let d = LoadOption::decode(&o.encode()).unwrap();
        assert_eq!(d.file_path.as_deref(), Some("\\EFI\\azl\\b\\Image"));
        assert_eq!(d.description, "azl-edge B");
        assert_eq!(d.cmdline().as_deref(), Some(cmd.as_str()));
        assert_eq!(esp_path(Slot::A, EspFile::Options), "EFI/azl/a/options.bin");
    }

    #[test]
    fn firmware_made_path_with_hardware_nodes_decodes() {
        // What the edk2 shell's `bcfg boot add` writes: a full device path
        // (hardware nodes, then HD, then File) and, after -opt, the data.
        let mut path = vec![1, 4, 20, 0];
        path.extend_from_slice(&[0u8; 16]); // VenHw
        esp().encode(&mut path);
        path.extend_from_slice(&[4, 4, 8, 0, b'\\', 0, 0, 0]);
        path.extend_from_slice(&[0x7f, 0xff, 4, 0]);
        let mut b = vec![1, 0, 0, 0];
        b.extend_from_slice(&(path.len() as u16).to_le_bytes());
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&path);
        b.extend_from_slice(&utf16le("a b\0"));
        let d = LoadOption::decode(&b).unwrap();
        assert_eq!(d.other_nodes, 1);
        assert_eq!(d.hard_drive, Some(esp()));
        assert_eq!(d.file_path.as_deref(), Some("\\"));
        assert_eq!(d.cmdline().as_deref(), Some("a b"));
    }

    #[test]
    fn bad_load_options_are_errors() {
        // No description terminator.
        assert_eq!(
            LoadOption::decode(&[1, 0, 0, 0, 4, 0, b'a', 0]),
            Err(EfiError::Description)
        );
        // Path length past the end.
        assert!(matches!(
            LoadOption::decode(&[1, 0, 0, 0, 40, 0, 0, 0, 0x7f, 0xff, 4, 0]),
            Err(EfiError::Truncated { .. })
        ));
        // Node length 0 (would loop forever) and past the list.
        assert!(matches!(
            LoadOption::decode(&[1, 0, 0, 0, 4, 0, 0, 0, 4, 4, 0, 0]),
            Err(EfiError::NodeLength { len: 0, .. })
        ));
        assert!(matches!(
            LoadOption::decode(&[1, 0, 0, 0, 4, 0, 0, 0, 4, 4, 9, 0]),
            Err(EfiError::NodeLength { len: 9, .. })
        ));
        // No End node.
        assert_eq!(
            LoadOption::decode(&[1, 0, 0, 0, 0, 0, 0, 0]),
            Err(EfiError::NoEnd)
        );
        // A File node without NUL.
        assert_eq!(
            LoadOption::decode(&[1, 0, 0, 0, 10, 0, 0, 0, 4, 4, 6, 0, b'a', 0, 0x7f, 0xff, 4, 0]),
            Err(EfiError::FilePath)
        );
        assert!(LoadOption::decode(&vec![0; MAX_LOAD_OPTION + 1]).is_err());
    }

    #[test]
    fn variables_and_names() {
        assert_eq!(boot_var_name(0xa), "Boot000A");
        assert_eq!(parse_boot_var_name("Boot000A"), Some(10));
        assert_eq!(parse_boot_var_name("Boot000a"), None);
        assert_eq!(parse_boot_var_name("BootOrder"), None);
        assert_eq!(parse_boot_var_name("Boot12345"), None);
        assert_eq!(
            efivarfs_name(BOOT_NEXT),
            "BootNext-8be4df61-93ca-11d2-aa0d-00e098032b8c"
        );
        assert_eq!(encode_boot_order(&[1, 0x100]), vec![1, 0, 0, 1]);
        assert_eq!(decode_boot_order(&[1, 0, 0, 1]).unwrap(), vec![1, 0x100]);
        assert!(decode_boot_order(&[1]).is_err());
        assert_eq!(decode_u16("BootNext", &[3, 0]).unwrap(), 3);
        assert!(decode_u16("BootNext", &[3, 0, 0]).is_err());
        assert_eq!(boot_order_with(&[0, 5, 3, 5], 3, 4), vec![3, 4, 0, 5]);
        let f = efivarfs_encode(ATTR_NV_BS_RT, &[9, 0]);
        assert_eq!(f, vec![7, 0, 0, 0, 9, 0]);
        assert_eq!(efivarfs_decode(&f).unwrap(), (7, &[9u8, 0][..]));
        assert!(efivarfs_decode(&[7, 0, 0]).is_err());
    }

    #[test]
    fn started_slot_needs_exactly_one_valid_argument() {
        assert_eq!(started_slot("console=x azl.slot=b panic=-1"), Some(Slot::B));
        assert_eq!(started_slot("azl.slot=a"), Some(Slot::A));
        assert_eq!(started_slot("console=x"), None);
        assert_eq!(started_slot("azl.slot=c"), None);
        assert_eq!(started_slot("azl.slot=a azl.slot=a"), None);
        assert_eq!(started_slot(&slot_cmdline(Slot::B, "x")), Some(Slot::B));
    }

    #[test]
    fn startup_script_creates_slot_a_and_starts_it() {
        let cmd = slot_cmdline(Slot::A, "console=ttyAMA0");
        let s = startup_nsh(&cmd);
        assert!(s.contains("bcfg boot add 0 fs0:\\EFI\\azl\\a\\Image \"azl-edge A\"\r\n"));
        assert!(s.ends_with(&format!("fs0:\\EFI\\azl\\a\\Image {cmd}\r\n")));
    }
}
