//! `imagegen inspect`: describe a built image and check it the way a device
//! would, without booting it.
//!
//! Given a disk image (or an output directory holding `disk.img`) it reads
//! the GPT through [`azl_disk::read_table`] — the device's reader,
//! [`azl_formats::gpt`] — and reports every entry, a damaged copy and
//! duplicate names; then for every root slot it checks the signature of
//! the manifest in the slot's last [`MANIFEST_REGION`] bytes
//! ([`azl_formats::signature::verify`]) **before** acting on anything it
//! says. Only a verified manifest (or, without `--key`, an unsigned or
//! unverifiable one, shown as insecure) is checked further: its partition
//! table against the GPT, and only when they agree every recorded sha256 is
//! recomputed (the GPT's entries do not overlap and lie on the disk, so the
//! work is bounded by the disk's size), the slot layout (squashfs, verity
//! area, manifest region) and the root filesystem by top-level directory.
//! An output directory without a disk image is described file by file.
//! An update bundle (magic `AZBU`) is checked as the installer checks it
//! (`bundle`).
//!
//! The result is a [`Report`]: [`fmt::Display`] renders the human report,
//! serde the `--json` one. Anything that would make a device refuse the
//! image (or that shows the image is not what was built) is a problem and
//! makes [`Report::ok`] false; an unsigned manifest is shown as insecure,
//! and is a problem only when a key was given with `--key`.
use crate::output;
use azl_disk::{self as disk, guid_string, DiskError, GptInfo, GptPartition};
use azl_formats::envelope::Enveloped;
use azl_formats::gpt::GptError;
use azl_formats::manifest::{
    Hex, Manifest, PartitionKind, RegionError, SignedManifest, MANIFEST_REGION,
};
use azl_formats::sha256;
use azl_formats::signature::{self as fsig, VerifyError};
use azl_formats::{BootConfig, ServiceTable};
use azl_sign::{self as sign, KeyError};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

mod bundle;
mod esp;
mod fsinfo;
mod sbom;
mod shared;
mod text;

pub use bundle::{BundleReport, HeaderView, PayloadView};
pub use sbom::{sbom_report, PackageSummary, SbomReport};

/// The disk image's name in an output directory.
pub const DISK_IMAGE: &str = "disk.img";
/// Where the build puts the kernel and initramfs on the boot partition.
const BOOT_KERNEL: &str = "/Image";
const BOOT_INITRAMFS: &str = "/initramfs.cpio.gz";

/// The public key's name in an output directory (the one baked into the
/// initramfs as `/etc/azl-edge/manifest.pub`).
pub const PUBLIC_KEY: &str = "manifest.pub";

/// What to inspect.
#[derive(Debug, Clone, Default)]
pub struct InspectOptions {
    /// A disk image, or an output directory of `imagegen build`.
    pub path: PathBuf,
    /// Raw 32-byte Ed25519 public key to verify signatures with. Without
    /// it, `manifest.pub` next to the image is used, else any `*.pub` next
    /// to it whose key id matches the signature.
    pub key: Option<PathBuf>,
}

/// Why nothing could be inspected at all (problems found inside an image
/// are reported in the [`Report`] instead).
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("{path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("{path} is neither a disk image nor an imagegen output directory (no {DISK_IMAGE}, {} or {})", output::KERNEL, output::INITRAMFS)]
    NotAnImage { path: PathBuf },
    #[error(transparent)]
    Gpt(#[from] DiskError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Read(#[from] azl_fileread::ReadError),
    #[error(transparent)]
    Sbom(#[from] crate::sbom::SbomError),
}

/// Everything `inspect` found. Serialized as the `--json` output.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// What was inspected, as given.
    pub path: String,
    /// The disk image and its GPT, if there is one.
    pub disk: Option<DiskReport>,
    /// The update bundle, when the file is one (then `manifests` holds its
    /// manifest and `disk`, `slots` and `files` are empty).
    pub bundle: Option<BundleReport>,
    /// The manifest of every root slot that holds one, in GPT order.
    pub manifests: Vec<ManifestView>,
    /// Every root slot: manifest region state, layout, squashfs, checks.
    pub slots: Vec<SlotReport>,
    /// Files of the output directory (empty when inspecting a disk image file).
    pub files: Vec<FileReport>,
    /// The output directory's compiled boot config, decoded.
    pub boot_config: Option<BootConfigSummary>,
    /// The output directory's service table: service names in start order.
    pub services: Option<Vec<String>>,
    /// `sbom.spdx.json` next to the image against the manifest, when it is there.
    pub sbom: Option<Check>,
    /// Every failed check, one line each (`<where>: <what>`).
    pub problems: Vec<String>,
    /// No problems.
    pub ok: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiskReport {
    pub path: String,
    pub size: u64,
    pub sector_size: u64,
    pub disk_guid: String,
    /// The GPT copy read (`primary`, or `backup` when the primary fails a
    /// check, as the device does).
    pub gpt_copy: &'static str,
    /// Every used GPT entry, in entry order (duplicates included).
    pub partitions: Vec<PartitionReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PartitionReport {
    /// 1-based GPT entry number (as in `/dev/vda<N>`).
    pub number: u32,
    pub name: String,
    /// `boot`, `root`, `bootstate`, `data`, or `None` if unknown.
    pub kind: Option<&'static str>,
    pub type_guid: String,
    pub part_guid: String,
    pub offset: u64,
    pub size: u64,
    /// First and last (inclusive) sector.
    pub first_lba: u64,
    pub last_lba: u64,
    /// GPT attribute bits.
    pub attributes: u64,
    /// Bytes in use and free, where the content tells (root slot layout,
    /// FAT, ext4).
    pub used: Option<u64>,
    pub free: Option<u64>,
}

/// A root slot and the manifest at its end.
#[derive(Debug, Clone, Serialize)]
pub struct SlotReport {
    pub partition: String,
    /// Its GPT entry number.
    pub number: u32,
    /// Absolute disk offset of the manifest region.
    pub region_offset: u64,
    /// `manifest`, `empty` (region never written) or `invalid`.
    pub state: SlotState,
    /// Why the region does not hold a usable manifest.
    pub error: Option<String>,
    pub layout: Option<SlotLayout>,
    pub squashfs: Option<SquashfsReport>,
    pub checks: Vec<Check>,
    /// Why the manifest's content was not checked (its signature did not
    /// verify): nothing it says was acted on.
    pub not_checked: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotState {
    Manifest,
    Empty,
    Invalid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Signature {
    pub status: SigStatus,
    /// Key id recorded in the signature (hex).
    pub key_id: Option<String>,
    /// The public key file that was checked against.
    pub key_file: Option<String>,
    /// Why it is invalid.
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SigStatus {
    /// Signed, and the signature checks out against a known public key.
    Verified,
    /// Signed, but no public key with this key id was available.
    Unverified,
    /// No signature (`--insecure-unsigned`).
    Unsigned,
    /// Signed, and it does not verify.
    Invalid,
}

/// One check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

/// Every manifest field (hex-encoded where binary, GUIDs and UUIDs in
/// their text form), the slot it was read from and its signature status.
#[derive(Debug, Clone, Serialize)]
pub struct ManifestView {
    /// The root partition this manifest was read from.
    pub slot: String,
    /// Its GPT entry number.
    pub slot_number: u32,
    pub signature: Signature,
    pub board: String,
    pub image_name: String,
    pub image_version: String,
    /// The anti-rollback version a device compares with its floor.
    pub security_version: u32,
    pub build_epoch: u64,
    pub disk_guid: String,
    pub cmdline: String,
    pub kernel: FileDigestView,
    pub initramfs: FileDigestView,
    pub service_table_sha256: String,
    /// sha256 of the lock file (`None`: no packages).
    pub lock_sha256: Option<String>,
    /// sha256 of `sbom.spdx.json`.
    pub sbom_sha256: String,
    pub rootfs: RootFsView,
    pub partitions: Vec<ManifestPartitionView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileDigestView {
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RootFsView {
    pub partition: String,
    pub data_size: u64,
    pub verity: VerityView,
}

/// dm-verity parameters; `salt` and `uuid` as `veritysetup` takes them.
#[derive(Debug, Clone, Serialize)]
pub struct VerityView {
    pub root_hash: String,
    pub salt: String,
    pub uuid: String,
    pub data_block_size: u32,
    pub hash_block_size: u32,
    pub data_blocks: u64,
    pub hash_offset: u64,
    pub hash_size: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ManifestPartitionView {
    pub name: String,
    pub kind: &'static str,
    pub type_guid: String,
    pub part_guid: String,
    pub offset: u64,
    pub size: u64,
    pub sha256: Option<String>,
}

/// Where the bytes of a root slot go.
#[derive(Debug, Clone, Serialize)]
pub struct SlotLayout {
    pub partition_size: u64,
    /// squashfs bytes as written (superblock `bytes_used`), if readable.
    pub squashfs_size: Option<u64>,
    /// squashfs padded to whole verity data blocks (the verity data device).
    pub data_size: u64,
    /// Verity superblock + hash tree.
    pub verity_size: u64,
    pub manifest_region: u64,
    /// Unused bytes between the hash tree and the manifest region.
    pub free: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SquashfsReport {
    pub bytes_used: u64,
    pub compression: String,
    pub block_size: u32,
    pub inodes: u32,
    pub mod_time: u32,
    /// Top-level entries with their recursive file count and bytes.
    pub dirs: Vec<DirUsage>,
    /// Set when the directory tree could not be read.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirUsage {
    /// `/usr`, `/init`, …
    pub path: String,
    /// Entries below it, itself included.
    pub entries: u64,
    /// Sum of the (uncompressed) sizes of the regular files below it.
    pub bytes: u64,
}

/// A file of the output directory.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BootConfigSummary {
    pub image_name: String,
    pub image_version: String,
    pub board: String,
    pub hostname: String,
    pub modules: usize,
    pub root_partition: Option<String>,
    pub data_partition: Option<String>,
    pub allow_unsigned: Option<bool>,
}

/// Exit status of `imagegen inspect` when a check failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit status of `imagegen inspect` when nothing could be inspected.
pub const EXIT_ERROR: u8 = 2;

impl Report {
    /// True when every check passed.
    pub fn ok(&self) -> bool {
        self.ok
    }

    /// 0 when every check passed, else [`EXIT_FAILED`].
    pub fn exit_code(&self) -> u8 {
        if self.ok {
            0
        } else {
            EXIT_FAILED
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        text::render(self, f)
    }
}

/// Inspect `opts.path` (a disk image or an output directory).
pub fn inspect(opts: &InspectOptions) -> Result<Report, InspectError> {
    let path = &opts.path;
    let meta = std::fs::metadata(path).map_err(|source| InspectError::Open {
        path: path.clone(),
        source,
    })?;
    if !meta.is_dir() {
        // A FIFO or device would hang or never end: refused here, with the
        // file type (open non-blocking + fstat).
        disk::open_image(path)?;
    }
    let (dir, disk_path) = if meta.is_dir() {
        let d = path.join(DISK_IMAGE);
        // Any file of that name (a FIFO too: refused when opened, not
        // silently skipped).
        (path.clone(), d.symlink_metadata().is_ok().then_some(d))
    } else {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        (parent, Some(path.clone()))
    };
    let mut problems = Vec::new();
    let keys = Keys::resolve(opts.key.as_deref(), &dir, &mut problems)?;
    if !meta.is_dir() && bundle::is_bundle(path) {
        let (b, manifest) = bundle::inspect(path, &keys)?;
        problems.extend(
            b.checks
                .iter()
                .filter(|c| !c.ok)
                .map(|c| format!("bundle: {}: {}", c.name, c.detail)),
        );
        return Ok(Report {
            path: path.display().to_string(),
            ok: problems.is_empty(),
            disk: None,
            bundle: Some(b),
            manifests: manifest.into_iter().collect(),
            slots: Vec::new(),
            files: Vec::new(),
            boot_config: None,
            services: None,
            sbom: None,
            problems,
        });
    }

    let mut files = Vec::new();
    let mut boot_config = None;
    let mut services = None;
    if meta.is_dir() {
        describe_dir(
            &dir,
            &mut files,
            &mut boot_config,
            &mut services,
            &mut problems,
        );
        if disk_path.is_none() && files.is_empty() {
            return Err(InspectError::NotAnImage { path: path.clone() });
        }
    }

    let (disk, manifests, slots) = match &disk_path {
        Some(p) => {
            let dir_root = boot_config
                .as_ref()
                .and_then(|c| c.root_partition.as_deref());
            let (d, m, s) = inspect_disk(p, &keys, &files, dir_root, &mut problems)?;
            (Some(d), m, s)
        }
        None => (None, Vec::new(), Vec::new()),
    };
    let root = boot_config
        .as_ref()
        .and_then(|c| c.root_partition.as_deref());
    let sbom = sbom::check_next_to(&dir, &manifests, root);
    if let Some(c) = sbom.as_ref().filter(|c| !c.ok) {
        problems.push(format!("{}: {}", c.name, c.detail));
    }
    Ok(Report {
        path: path.display().to_string(),
        ok: problems.is_empty(),
        disk,
        bundle: None,
        manifests,
        slots,
        files,
        boot_config,
        services,
        sbom,
        problems,
    })
}

/// The public keys signatures are checked against.
struct Keys {
    /// `--key` or `manifest.pub`: a signature by another key is invalid.
    trusted: Option<(PathBuf, [u8; sign::PUBLIC_KEY_LEN])>,
    /// Whether `trusted` came from `--key` (then unsigned is a problem too).
    explicit: bool,
    /// Other `*.pub` files next to the image, used when their id matches.
    others: Vec<(PathBuf, [u8; sign::PUBLIC_KEY_LEN])>,
}

impl Keys {
    fn resolve(
        key: Option<&Path>,
        dir: &Path,
        problems: &mut Vec<String>,
    ) -> Result<Keys, InspectError> {
        if let Some(k) = key {
            return Ok(Keys {
                trusted: Some((k.to_path_buf(), sign::load_public_key(k)?)),
                explicit: true,
                others: Vec::new(),
            });
        }
        let default = dir.join(PUBLIC_KEY);
        let mut trusted = None;
        if default.exists() {
            match sign::load_public_key(&default) {
                Ok(k) => trusted = Some((default.clone(), k)),
                Err(e) => problems.push(e.to_string()),
            }
        }
        let mut others = Vec::new();
        if let Ok(rd) = std::fs::read_dir(dir) {
            let mut paths: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
            paths.sort();
            for p in paths {
                let is_pub = p.extension().is_some_and(|e| e == "pub");
                if is_pub && p != default && p.is_file() {
                    // Not 32 bytes: not one of ours; ignore quietly.
                    if let Ok(k) = sign::load_public_key(&p) {
                        others.push((p, k));
                    }
                }
            }
        }
        Ok(Keys {
            trusted,
            explicit: false,
            others,
        })
    }

    /// The key a signature by `key_id` is checked against: the trusted
    /// one, else another `*.pub` with that id.
    fn candidate(
        &self,
        key_id: Option<[u8; sign::KEY_ID_LEN]>,
    ) -> Option<&(PathBuf, [u8; sign::PUBLIC_KEY_LEN])> {
        self.trusted.as_ref().or_else(|| {
            let id = key_id?;
            self.others.iter().find(|(_, k)| sign::key_id(k) == id)
        })
    }

    fn check(&self, sm: &SignedManifest) -> Signature {
        let Some(sig) = &sm.signature else {
            return Signature {
                status: SigStatus::Unsigned,
                key_id: None,
                key_file: None,
                reason: None,
            };
        };
        let key_id = Some(Hex(&sig.key_id).to_string());
        let Some((file, key)) = self.candidate(Some(sig.key_id)) else {
            return Signature {
                status: SigStatus::Unverified,
                key_id,
                key_file: None,
                reason: None,
            };
        };
        let key_file = Some(file.display().to_string());
        match fsig::verify(sm, key) {
            Ok(_) => Signature {
                status: SigStatus::Verified,
                key_id,
                key_file,
                reason: None,
            },
            // Verified but does not decode: reported as a slot error.
            Err(VerifyError::Decode(_)) => Signature {
                status: SigStatus::Verified,
                key_id,
                key_file,
                reason: None,
            },
            Err(e) => Signature {
                status: SigStatus::Invalid,
                key_id,
                key_file,
                reason: Some(e.to_string()),
            },
        }
    }
}

/// Largest output-directory file read (a kernel Image is tens of MiB).
const MAX_OUTPUT_FILE: u64 = 512 << 20;

/// Describe kernel, initramfs, cmdline, boot.cfg, services.tbl of an
/// output directory (those that exist).
fn describe_dir(
    dir: &Path,
    files: &mut Vec<FileReport>,
    boot_config: &mut Option<BootConfigSummary>,
    services: &mut Option<Vec<String>>,
    problems: &mut Vec<String>,
) {
    for name in [
        output::KERNEL,
        output::INITRAMFS,
        output::CMDLINE,
        output::BOOT_CFG,
        output::SERVICES,
    ] {
        let path = dir.join(name);
        let bytes = match azl_fileread::read(&path, MAX_OUTPUT_FILE) {
            Ok(b) => b,
            Err(azl_fileread::ReadError::Io { err, .. })
                if err.kind() == io::ErrorKind::NotFound =>
            {
                continue
            }
            Err(e) => {
                problems.push(e.to_string());
                continue;
            }
        };
        files.push(FileReport {
            name: name.to_string(),
            size: bytes.len() as u64,
            sha256: Hex(&sha256(&bytes)).to_string(),
        });
        if name == output::BOOT_CFG {
            match BootConfig::from_bytes(&bytes) {
                Ok(c) => *boot_config = Some(summarize_boot_config(c)),
                Err(e) => problems.push(format!("{}: {e}", path.display())),
            }
        } else if name == output::SERVICES {
            match ServiceTable::from_bytes(&bytes) {
                Ok(t) => *services = Some(t.services.iter().map(|s| s.name.to_string()).collect()),
                Err(e) => problems.push(format!("{}: {e}", path.display())),
            }
        }
    }
}

fn summarize_boot_config(c: BootConfig) -> BootConfigSummary {
    BootConfigSummary {
        modules: c.modules.len(),
        root_partition: c.root.as_ref().map(|r| r.partition.clone()),
        data_partition: c.root.as_ref().and_then(|r| r.data_partition.clone()),
        allow_unsigned: c.root.as_ref().map(|r| r.allow_unsigned),
        image_name: c.image_name,
        image_version: c.image_version,
        board: c.board,
        hostname: c.hostname,
    }
}

/// Random access to the image file, with errors that name it.
struct Image {
    file: File,
    path: PathBuf,
    size: u64,
    /// sha256 of `(offset, len)` ranges already hashed.
    digests: HashMap<(u64, u64), [u8; 32]>,
}

impl Image {
    fn open(path: &Path) -> Result<Image, InspectError> {
        let (file, size) = disk::open_image(path)?;
        Ok(Image {
            file,
            path: path.to_path_buf(),
            size,
            digests: HashMap::new(),
        })
    }

    fn range_error(&self, offset: u64, len: u64) -> Option<String> {
        match offset.checked_add(len) {
            Some(end) if end <= self.size => None,
            _ => Some(format!(
                "bytes {offset}..{} lie beyond the end of {} ({} bytes)",
                offset.saturating_add(len),
                self.path.display(),
                self.size
            )),
        }
    }

    fn read_at(&mut self, offset: u64, len: u64) -> Result<Vec<u8>, String> {
        if let Some(e) = self.range_error(offset, len) {
            return Err(e);
        }
        let n = usize::try_from(len).map_err(|_| format!("{len} bytes is too large to read"))?;
        let mut buf = vec![0u8; n];
        self.file
            .seek(SeekFrom::Start(offset))
            .and_then(|_| self.file.read_exact(&mut buf))
            .map_err(|e| format!("reading {} at {offset}: {e}", self.path.display()))?;
        Ok(buf)
    }

    fn sha256(&mut self, offset: u64, len: u64) -> Result<[u8; 32], String> {
        if let Some(d) = self.digests.get(&(offset, len)) {
            return Ok(*d);
        }
        if let Some(e) = self.range_error(offset, len) {
            return Err(e);
        }
        let err = |e: io::Error| format!("reading {} at {offset}: {e}", self.path.display());
        self.file.seek(SeekFrom::Start(offset)).map_err(err)?;
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        let mut buf = vec![0u8; 1 << 20];
        let mut left = len;
        while left > 0 {
            let n = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
            let chunk = buf.get_mut(..n).unwrap_or_default();
            self.file.read_exact(chunk).map_err(err)?;
            ctx.update(chunk);
            left -= n as u64;
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        self.digests.insert((offset, len), out);
        Ok(out)
    }
}

const KINDS: [PartitionKind; 4] = [
    PartitionKind::Boot,
    PartitionKind::Root,
    PartitionKind::BootState,
    PartitionKind::Data,
];

/// Kind of a GPT partition: by the type GUID imagegen gives each kind,
/// else by the names imagegen uses (`boot`, `root-a`, …).
fn kind_of(gp: &GptPartition) -> Option<PartitionKind> {
    KINDS
        .into_iter()
        .find(|k| disk::place::type_guid(*k) == gp.type_guid)
        .or(match gp.name.as_str() {
            "boot" => Some(PartitionKind::Boot),
            "bootstate" => Some(PartitionKind::BootState),
            "data" => Some(PartitionKind::Data),
            n if n == "root" || n.starts_with("root-") => Some(PartitionKind::Root),
            _ => None,
        })
}

/// How many bytes from the start of partition `p` its recorded sha256
/// covers: the whole partition, except for a root slot, where it covers
/// the verity-protected bytes (squashfs + verity area, i.e. up to
/// `hash_offset + hash_size` of `m.rootfs`; both slots of one build have
/// the same layout) and never the manifest region.
pub fn digest_extent(m: &Manifest, p: &azl_formats::manifest::Partition) -> u64 {
    match p.kind {
        PartitionKind::Root => {
            let v = &m.rootfs.verity;
            v.hash_offset
                .saturating_add(v.hash_size)
                .min(p.size.saturating_sub(MANIFEST_REGION))
        }
        _ => p.size,
    }
}

fn inspect_disk(
    path: &Path,
    keys: &Keys,
    dir_files: &[FileReport],
    dir_root: Option<&str>,
    problems: &mut Vec<String>,
) -> Result<(DiskReport, Vec<ManifestView>, Vec<SlotReport>), InspectError> {
    let mut img = Image::open(path)?;
    let table = disk::read_table(path, &img.file, img.size)?;
    for p in &table.problems {
        problems.push(format!("disk: GPT: {p}"));
    }
    let gpt = &table.info;
    // Every name used twice (an attacker's second `root-a` pointing at an
    // old slot): the device refuses to pick one, so does inspect.
    for (i, e) in gpt.partitions.iter().enumerate() {
        if let Some(first) = gpt.partitions.iter().take(i).find(|o| o.name == e.name) {
            let err = GptError::DuplicateName {
                name: e.name.clone(),
                first: first.number,
                second: e.number,
            };
            problems.push(format!("disk: {err}"));
        }
    }

    // Root slots by GPT entry (not by name), then their manifests.
    let mut slots = Vec::new();
    let mut manifests = Vec::new();
    for gp in &gpt.partitions {
        if kind_of(gp) == Some(PartitionKind::Root) {
            // The output directory is one slot's build.
            let files = if shared::dir_is_for(dir_root, &gp.name) {
                dir_files
            } else {
                &[]
            };
            let (slot, manifest) = inspect_slot(&mut img, gpt, gp, keys, files);
            slots.push(slot);
            manifests.extend(manifest);
        }
    }
    // initramfs-select: one boot partition serves every slot. UEFI: each
    // slot has its own files on the ESP, checked against its own manifest.
    let uefi = manifests
        .iter()
        .any(|m| azl_formats::efi::started_slot(&m.cmdline).is_some());
    if let Some(boot) = gpt
        .partitions
        .iter()
        .find(|p| kind_of(p) == Some(PartitionKind::Boot))
        .filter(|_| !uefi)
    {
        shared::share_boot(&mut slots, &boot.name);
    }
    if slots.is_empty() {
        problems.push("disk: no root partition (root-a, root-b) in the GPT".to_string());
    } else if !slots.iter().any(|s| s.state == SlotState::Manifest) {
        problems.push("disk: no root slot holds a manifest".to_string());
    }

    // Kinds as the manifests record them, for partitions named otherwise.
    let mut recorded: HashMap<&str, PartitionKind> = HashMap::new();
    for m in &manifests {
        for p in &m.partitions {
            if let Some(k) = disk::parse_kind(p.kind) {
                recorded.entry(p.part_guid.as_str()).or_insert(k);
            }
        }
    }

    let mut partitions = Vec::new();
    for gp in &gpt.partitions {
        let kind =
            kind_of(gp).or_else(|| recorded.get(guid_string(&gp.part_guid).as_str()).copied());
        let (used, free) = match kind {
            Some(PartitionKind::Root) => slots
                .iter()
                .find(|s| s.number == gp.number)
                .and_then(|s| s.layout.as_ref())
                .map(|l| {
                    let used = l.partition_size.saturating_sub(l.free);
                    (Some(used), Some(l.free))
                })
                .unwrap_or((None, None)),
            Some(PartitionKind::Boot) => fsinfo::fat_usage(&mut img.file, gp.offset, gp.size)
                .map(|u| (Some(u.used()), Some(u.free)))
                .unwrap_or((None, None)),
            Some(PartitionKind::Data) => fsinfo::ext4_usage(&mut img.file, gp.offset, gp.size)
                .map(|u| (Some(u.used()), Some(u.free)))
                .unwrap_or((None, None)),
            _ => (None, None),
        };
        let entry = table.entries.iter().find(|e| e.number == gp.number);
        partitions.push(PartitionReport {
            number: gp.number,
            name: gp.name.clone(),
            kind: kind.map(disk::kind_name),
            type_guid: guid_string(&gp.type_guid),
            part_guid: guid_string(&gp.part_guid),
            offset: gp.offset,
            size: gp.size,
            first_lba: entry.map_or(0, |e| e.first_lba),
            last_lba: entry.map_or(0, |e| e.last_lba),
            attributes: entry.map_or(0, |e| e.attributes),
            used,
            free,
        });
    }

    for s in &slots {
        if let Some(e) = &s.error {
            if s.state == SlotState::Invalid {
                problems.push(format!("{}: {e}", s.partition));
            }
        }
        if let Some(m) = manifests.iter().find(|m| m.slot_number == s.number) {
            match m.signature.status {
                SigStatus::Invalid => problems.push(format!(
                    "{}: INVALID signature: {}",
                    s.partition,
                    m.signature.reason.as_deref().unwrap_or("does not verify")
                )),
                SigStatus::Unsigned if keys.explicit => problems.push(format!(
                    "{}: manifest is UNSIGNED but --key was given",
                    s.partition
                )),
                _ => {}
            }
        }
        if let Some(why) = &s.not_checked {
            problems.push(format!(
                "{} (#{}): not checked: {why}",
                s.partition, s.number
            ));
        }
        for c in s.checks.iter().filter(|c| !c.ok) {
            problems.push(format!("{}: {}: {}", s.partition, c.name, c.detail));
        }
    }

    let disk = DiskReport {
        path: path.display().to_string(),
        size: img.size,
        sector_size: gpt.sector_size,
        disk_guid: guid_string(&gpt.disk_guid),
        gpt_copy: match gpt.copy {
            azl_formats::gpt::Which::Primary => "primary",
            azl_formats::gpt::Which::Backup => "backup",
        },
        partitions,
    };
    Ok((disk, manifests, slots))
}

fn check(name: impl Into<String>, ok: bool, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        ok,
        detail: detail.into(),
    }
}

fn inspect_slot(
    img: &mut Image,
    gpt: &GptInfo,
    gp: &GptPartition,
    keys: &Keys,
    dir_files: &[FileReport],
) -> (SlotReport, Option<ManifestView>) {
    let region_offset = gp.offset + gp.size.saturating_sub(MANIFEST_REGION);
    let mut slot = SlotReport {
        partition: gp.name.clone(),
        number: gp.number,
        region_offset,
        state: SlotState::Invalid,
        error: None,
        layout: None,
        squashfs: None,
        checks: Vec::new(),
        not_checked: None,
    };
    if gp.size < MANIFEST_REGION {
        slot.error = Some(format!(
            "partition ({} bytes) is smaller than the {MANIFEST_REGION}-byte manifest region",
            gp.size
        ));
        return (slot, None);
    }
    let region = match img.read_at(region_offset, MANIFEST_REGION) {
        Ok(r) => r,
        Err(e) => {
            slot.error = Some(e);
            return (slot, None);
        }
    };
    let sm = match SignedManifest::from_region(&region) {
        Ok(sm) => sm,
        Err(RegionError::Empty) => {
            slot.state = SlotState::Empty;
            slot.error = Some(RegionError::Empty.to_string());
            return (slot, None);
        }
        Err(e) => {
            slot.error = Some(e.to_string());
            return (slot, None);
        }
    };
    let signature = keys.check(&sm);
    let m = match sm.manifest() {
        Ok(m) => m,
        Err(e) => {
            let why = match signature.status {
                SigStatus::Invalid => format!(
                    ", and its signature is invalid: {}",
                    signature.reason.as_deref().unwrap_or("does not verify")
                ),
                _ => String::new(),
            };
            slot.error = Some(format!("manifest does not decode: {e}{why}"));
            return (slot, None);
        }
    };
    slot.state = SlotState::Manifest;
    // Nothing the manifest says is acted on (no hashing, no squashfs, no
    // files) unless its signature verified — or, without --key, it is
    // unsigned or its key is unknown (reported as insecure).
    let untrusted = match signature.status {
        SigStatus::Verified => None,
        SigStatus::Invalid => Some(format!(
            "its signature is invalid ({})",
            signature.reason.as_deref().unwrap_or("does not verify")
        )),
        SigStatus::Unsigned if keys.explicit => {
            Some("it is unsigned and --key was given".to_string())
        }
        SigStatus::Unverified if keys.explicit => {
            Some("its signature could not be verified".to_string())
        }
        SigStatus::Unsigned | SigStatus::Unverified => None,
    };
    let view = view(&m, &gp.name, gp.number, signature);
    if let Some(why) = untrusted {
        slot.not_checked = Some(format!("the manifest's content was not acted on: {why}"));
        return (slot, Some(view));
    }

    // Which slot it describes.
    let own = m.rootfs.partition.as_str() == gp.name;
    slot.checks.push(check(
        "describes this slot",
        own,
        if own {
            format!("rootfs partition is {}", gp.name)
        } else {
            format!(
                "rootfs partition is {:?} but the manifest was read from {:?}",
                m.rootfs.partition.as_str(),
                gp.name
            )
        },
    ));

    let table = gpt_check(gpt, &m);
    let table_ok = table.ok;
    slot.checks.push(table);
    if !table_ok {
        // Its offsets and sizes are not the disk's: hashing them would let
        // a manifest make inspect read the disk many times over.
        slot.checks.push(check(
            "sha256",
            false,
            "not computed: the manifest's partition table differs from the GPT",
        ));
        return (slot, Some(view));
    }
    slot.squashfs = read_squashfs(img, gp.offset);
    let (layout, layout_check) = layout_check(gp, &m, slot.squashfs.as_ref());
    slot.layout = Some(layout);
    slot.checks.push(layout_check);
    if let Some(sq) = &slot.squashfs {
        if let Some(e) = &sq.error {
            slot.checks.push(check("squashfs", false, e.clone()));
        }
    } else {
        slot.checks.push(check(
            "squashfs",
            false,
            "no squashfs superblock at the start of the slot",
        ));
    }

    for p in &m.partitions {
        let Some(want) = p.sha256 else { continue };
        let len = digest_extent(&m, p);
        let name = format!("sha256 {}", p.name.as_str());
        match img.sha256(p.offset, len) {
            Ok(got) if got == want => {
                slot.checks
                    .push(check(name, true, format!("{} ({len} bytes)", Hex(&got))))
            }
            Ok(got)
                if p.kind == azl_formats::manifest::PartitionKind::Boot
                    && esp::slot_of(&m).is_some() =>
            {
                let s = esp::slot_of(&m).unwrap_or(azl_formats::bootstate::Slot::A);
                slot.checks.push(esp::changed(name, &want, &got, s))
            }
            Ok(got) => slot.checks.push(check(
                name,
                false,
                format!(
                    "mismatch: manifest says {}, disk has {} (bytes {}..{})",
                    Hex(&want),
                    Hex(&got),
                    p.offset,
                    p.offset + len
                ),
            )),
            Err(e) => slot.checks.push(check(name, false, e)),
        }
    }

    // Kernel and initramfs as the bootloader will load them.
    let boot = gpt
        .partitions
        .iter()
        .find(|p| kind_of(p) == Some(PartitionKind::Boot));
    if let Some(boot) = boot {
        // A UEFI build (its cmdline names its slot, formats::efi): the
        // slot's own files under EFI/azl/<slot>/ on the ESP.
        let files: Vec<(&str, String, azl_formats::manifest::FileDigest)> = match esp::slot_of(&m) {
            Some(s) => esp::files(&m, s),
            None => vec![
                ("kernel", BOOT_KERNEL.to_string(), m.kernel.clone()),
                ("initramfs", BOOT_INITRAMFS.to_string(), m.initramfs.clone()),
            ],
        };
        for (what, path, want) in files {
            let path = path.as_str();
            let name = format!("{what} on {}", boot.name);
            let want = &want;
            let c = match fsinfo::fat_file_digest(&img.file, boot.offset, boot.size, path) {
                Ok(Some((size, d))) if size == want.size && d == want.sha256 => {
                    check(name, true, format!("{path} matches the manifest"))
                }
                Ok(Some((size, d))) => check(
                    name,
                    false,
                    format!(
                        "{path} is {size} bytes sha256 {}, manifest says {} bytes sha256 {}",
                        Hex(&d),
                        want.size,
                        Hex(&want.sha256)
                    ),
                ),
                Ok(None) => check(name, false, format!("no {path} on the boot partition")),
                Err(e) => check(name, false, e),
            };
            slot.checks.push(c);
        }
    }

    // The output directory's copies, when inspecting OUT/.
    let expect = [
        (output::KERNEL, m.kernel.size, m.kernel.sha256),
        (output::INITRAMFS, m.initramfs.size, m.initramfs.sha256),
    ];
    for (file, size, digest) in expect {
        if let Some(f) = dir_files.iter().find(|f| f.name == file) {
            let ok = f.size == size && f.sha256 == Hex(&digest).to_string();
            slot.checks.push(check(
                format!("{file} file"),
                ok,
                if ok {
                    "matches the manifest".to_string()
                } else {
                    format!(
                        "{} bytes sha256 {}, manifest says {size} bytes sha256 {}",
                        f.size,
                        f.sha256,
                        Hex(&digest)
                    )
                },
            ));
        }
    }
    if let Some(f) = dir_files.iter().find(|f| f.name == output::SERVICES) {
        let want = Hex(&m.service_table_sha256).to_string();
        let ok = f.sha256 == want;
        slot.checks.push(check(
            format!("{} file", output::SERVICES),
            ok,
            if ok {
                "matches the manifest".to_string()
            } else {
                format!("sha256 {}, manifest says {want}", f.sha256)
            },
        ));
    }
    (slot, Some(view))
}

/// Does the manifest's partition table say what the GPT says?
fn gpt_check(gpt: &GptInfo, m: &Manifest) -> Check {
    let mut diffs = Vec::new();
    if gpt.disk_guid != m.disk_guid {
        diffs.push(format!(
            "disk GUID {} vs GPT {}",
            guid_string(&m.disk_guid),
            guid_string(&gpt.disk_guid)
        ));
    }
    if gpt.partitions.len() != m.partitions.len() {
        diffs.push(format!(
            "{} partitions vs {} in the GPT",
            m.partitions.len(),
            gpt.partitions.len()
        ));
    }
    for (i, (mp, gp)) in m.partitions.iter().zip(&gpt.partitions).enumerate() {
        let n = i + 1;
        let mut field = |what: &str, a: String, b: String| {
            if a != b {
                diffs.push(format!("#{n} {what} {a} vs GPT {b}"));
            }
        };
        field("name", mp.name.to_string(), gp.name.clone());
        field(
            "type GUID",
            guid_string(&mp.type_guid),
            guid_string(&gp.type_guid),
        );
        field(
            "partition GUID",
            guid_string(&mp.part_guid),
            guid_string(&gp.part_guid),
        );
        field("offset", mp.offset.to_string(), gp.offset.to_string());
        field("size", mp.size.to_string(), gp.size.to_string());
    }
    let ok = diffs.is_empty();
    check(
        "partition table",
        ok,
        if ok {
            format!("matches the GPT ({} partitions)", gpt.partitions.len())
        } else {
            format!("differs from the GPT: {}", diffs.join("; "))
        },
    )
}

/// The slot's byte layout, and whether it holds together.
fn layout_check(
    gp: &GptPartition,
    m: &Manifest,
    sq: Option<&SquashfsReport>,
) -> (SlotLayout, Check) {
    let v = &m.rootfs.verity;
    let hash_end = v.hash_offset.saturating_add(v.hash_size);
    let region_start = gp.size.saturating_sub(MANIFEST_REGION);
    let layout = SlotLayout {
        partition_size: gp.size,
        squashfs_size: sq.map(|s| s.bytes_used),
        data_size: m.rootfs.data_size,
        verity_size: v.hash_size,
        manifest_region: MANIFEST_REGION,
        free: region_start.saturating_sub(hash_end),
    };
    let mut errs = Vec::new();
    let blocks_bytes = v.data_blocks.saturating_mul(u64::from(v.data_block_size));
    if blocks_bytes != m.rootfs.data_size {
        errs.push(format!(
            "data_size {} is not data_blocks {} × {}",
            m.rootfs.data_size, v.data_blocks, v.data_block_size
        ));
    }
    if !m.rootfs.data_size.is_multiple_of(512) {
        errs.push(format!(
            "data_size {} is not a whole number of 512-byte sectors",
            m.rootfs.data_size
        ));
    }
    if v.hash_offset < m.rootfs.data_size {
        errs.push(format!(
            "verity area at {} overlaps the squashfs data (ends at {})",
            v.hash_offset, m.rootfs.data_size
        ));
    }
    if hash_end > region_start {
        errs.push(format!(
            "verity area ends at {hash_end}, past the manifest region at {region_start}"
        ));
    }
    if let Some(s) = sq {
        if s.bytes_used > m.rootfs.data_size {
            errs.push(format!(
                "squashfs is {} bytes, more than data_size {}",
                s.bytes_used, m.rootfs.data_size
            ));
        }
    }
    let ok = errs.is_empty();
    let c = check(
        "slot layout",
        ok,
        if ok {
            format!(
                "squashfs 0..{}, verity {}..{hash_end}, manifest {region_start}..{}",
                m.rootfs.data_size, v.hash_offset, gp.size
            )
        } else {
            errs.join("; ")
        },
    );
    (layout, c)
}

/// Read the squashfs at `offset`: superblock, then the directory tree
/// summed by top-level entry. `None` when there is no squashfs there.
fn read_squashfs(img: &mut Image, offset: u64) -> Option<SquashfsReport> {
    let magic = img.read_at(offset, 4).ok()?;
    if magic != b"hsqs" {
        return None;
    }
    let file = img.file.try_clone().ok()?;
    let reader = BufReader::new(file);
    let sq = match backhand::Squashfs::from_reader_with_offset(reader, offset) {
        Ok(sq) => sq,
        Err(e) => {
            return Some(SquashfsReport {
                bytes_used: 0,
                compression: String::new(),
                block_size: 0,
                inodes: 0,
                mod_time: 0,
                dirs: Vec::new(),
                error: Some(format!("unreadable squashfs: {e}")),
            })
        }
    };
    let sb = &sq.superblock;
    let mut report = SquashfsReport {
        bytes_used: sb.bytes_used,
        compression: format!("{:?}", sb.compressor).to_lowercase(),
        block_size: sb.block_size,
        inodes: sb.inode_count,
        mod_time: sb.mod_time,
        dirs: Vec::new(),
        error: None,
    };
    match sq.into_filesystem_reader() {
        Ok(fs) => {
            let mut dirs: BTreeMap<String, DirUsage> = BTreeMap::new();
            for node in fs.files() {
                let mut comps = node.fullpath.components().filter_map(|c| match c {
                    std::path::Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                    _ => None,
                });
                let Some(top) = comps.next() else { continue };
                let path = format!("/{top}");
                let e = dirs.entry(path.clone()).or_insert(DirUsage {
                    path,
                    entries: 0,
                    bytes: 0,
                });
                e.entries += 1;
                if let backhand::InnerNode::File(f) = &node.inner {
                    e.bytes += f.file_len() as u64;
                }
            }
            report.dirs = dirs.into_values().collect();
        }
        Err(e) => report.error = Some(format!("unreadable squashfs directory tree: {e}")),
    }
    Some(report)
}

/// The manifest as shown, read from root slot `slot` (GPT entry `number`;
/// for a bundle, its position in the manifest's own table).
fn view(m: &Manifest, slot: &str, number: u32, signature: Signature) -> ManifestView {
    let v = &m.rootfs.verity;
    ManifestView {
        slot: slot.to_string(),
        slot_number: number,
        signature,
        board: m.board.clone(),
        image_name: m.image_name.clone(),
        image_version: m.image_version.clone(),
        security_version: m.security_version,
        build_epoch: m.build_epoch,
        disk_guid: guid_string(&m.disk_guid),
        cmdline: m.cmdline.clone(),
        kernel: FileDigestView {
            size: m.kernel.size,
            sha256: Hex(&m.kernel.sha256).to_string(),
        },
        initramfs: FileDigestView {
            size: m.initramfs.size,
            sha256: Hex(&m.initramfs.sha256).to_string(),
        },
        service_table_sha256: Hex(&m.service_table_sha256).to_string(),
        lock_sha256: m.lock_sha256.map(|d| Hex(&d).to_string()),
        sbom_sha256: Hex(&m.sbom_sha256).to_string(),
        rootfs: RootFsView {
            partition: m.rootfs.partition.to_string(),
            data_size: m.rootfs.data_size,
            verity: VerityView {
                root_hash: Hex(&v.root_hash).to_string(),
                salt: Hex(&v.salt).to_string(),
                uuid: azl_verity::uuid_string(&v.uuid),
                data_block_size: v.data_block_size,
                hash_block_size: v.hash_block_size,
                data_blocks: v.data_blocks,
                hash_offset: v.hash_offset,
                hash_size: v.hash_size,
            },
        },
        partitions: m
            .partitions
            .iter()
            .map(|p| ManifestPartitionView {
                name: p.name.to_string(),
                kind: disk::kind_name(p.kind),
                type_guid: guid_string(&p.type_guid),
                part_guid: guid_string(&p.part_guid),
                offset: p.offset,
                size: p.size,
                sha256: p.sha256.map(|d| Hex(&d).to_string()),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests;
