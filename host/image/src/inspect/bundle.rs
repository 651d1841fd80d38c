//! `imagegen inspect BUNDLE`: an update bundle (`formats::bundle`) read back
//! and checked the way `update install` checks it, without a device.
//!
//! The file is hostile input. It is opened with `azl_fileread::open` (a
//! regular file only), and every read is bounded before it is made: the
//! manifest and header sections by the preamble's checked lengths, the
//! hash tree by [`MAX_TREE_LEN`] and the file's size, the data in single
//! blocks. Nothing the manifest says is acted on before its signature
//! verified; nothing the header says before its own signature (same key)
//! verified and [`check_layout`] held it to the manifest and the target
//! slot's size in the manifest's own partition table. Then the payload
//! digests, the tree against the signed root hash
//! ([`VerifiedTree::new`]) and every data block against the tree.
use super::{check, view, Check, InspectError, Keys, ManifestView, SigStatus, Signature};
use azl_formats::bundle::{
    check_layout, BundleError, Header, PayloadKind, Preamble, SignedHeader, SlotGeometry,
    MAX_TREE_LEN, PREAMBLE_LEN,
};
use azl_formats::envelope::Enveloped;
use azl_formats::manifest::{Hex, Manifest, SignedManifest};
use azl_formats::signature::{self as fsig, VerifyError};
use azl_formats::verity::VerifiedTree;
use serde::Serialize;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Does `path` start with the bundle magic? (Read errors: not a bundle;
/// the disk reader then reports them.)
pub(super) fn is_bundle(path: &Path) -> bool {
    let Ok((file, size)) = azl_fileread::open(path) else {
        return false;
    };
    let mut magic = [0u8; 4];
    size >= 4 && file.read_exact_at(&mut magic, 0).is_ok() && magic == azl_formats::bundle::MAGIC
}

/// What `inspect` found in a bundle (the `bundle` object of `--json`).
#[derive(Debug, Clone, Serialize)]
pub struct BundleReport {
    pub path: String,
    /// Bytes of the file.
    pub size: u64,
    /// sha256 of the whole file (when every byte could be read).
    pub sha256: Option<String>,
    /// The root slot it installs into (the manifest's `rootfs.partition`).
    pub slot: Option<String>,
    pub security_version: Option<u32>,
    /// The slot partition's size in the manifest's partition table.
    pub slot_size: Option<u64>,
    pub manifest_signature: Option<Signature>,
    pub header_signature: Option<Signature>,
    pub header: Option<HeaderView>,
    pub checks: Vec<Check>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HeaderView {
    pub manifest_sha256: String,
    pub min_from_security_version: Option<u32>,
    pub payloads: Vec<PayloadView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PayloadView {
    pub kind: &'static str,
    /// Byte offset in the bundle file.
    pub offset: u64,
    pub size: u64,
    pub sha256: String,
}

/// Reads of the bundle file, bounded by its size, with errors that name it.
struct Input<'a> {
    file: File,
    path: &'a Path,
    size: u64,
}

/// A read that could not be made: the file ends first (a check failure),
/// or the read itself failed (nothing can be inspected).
enum Short {
    Truncated { got: u64 },
    Io(InspectError),
}

impl Input<'_> {
    /// `len` bytes at `offset`; `len` is bounded by the caller.
    fn read(&self, offset: u64, len: usize) -> Result<Vec<u8>, Short> {
        let end = offset.saturating_add(len as u64);
        if end > self.size {
            return Err(Short::Truncated {
                got: self.size.saturating_sub(offset),
            });
        }
        let mut buf = vec![0u8; len];
        self.file
            .read_exact_at(&mut buf, offset)
            .map_err(|source| {
                Short::Io(InspectError::Open {
                    path: self.path.to_path_buf(),
                    source,
                })
            })?;
        Ok(buf)
    }
}

/// Read a whole section; a short file is a failed `check` named after it.
fn section(
    input: &Input,
    offset: u64,
    len: usize,
    name: &'static str,
    checks: &mut Vec<Check>,
) -> Result<Option<Vec<u8>>, InspectError> {
    match input.read(offset, len) {
        Ok(b) => Ok(Some(b)),
        Err(Short::Truncated { got }) => {
            let e = BundleError::Truncated {
                section: name,
                got,
                expected: len as u64,
            };
            checks.push(check("length", false, e.to_string()));
            Ok(None)
        }
        Err(Short::Io(e)) => Err(e),
    }
}

/// Inspect the bundle at `path`: the report, and the manifest's view for
/// the report's `manifests` (when it decodes).
pub(super) fn inspect(
    path: &Path,
    keys: &Keys,
) -> Result<(BundleReport, Option<ManifestView>), InspectError> {
    let (file, size) = azl_fileread::open(path)?;
    let input = Input { file, path, size };
    let mut r = BundleReport {
        path: path.display().to_string(),
        size,
        sha256: None,
        slot: None,
        security_version: None,
        slot_size: None,
        manifest_signature: None,
        header_signature: None,
        header: None,
        checks: Vec::new(),
    };
    let mut manifest_view = None;
    run(&input, keys, &mut r, &mut manifest_view)?;
    Ok((r, manifest_view))
}

/// The checks in the device's order; each stops at the first failure that
/// makes the rest meaningless.
fn run(
    input: &Input,
    keys: &Keys,
    r: &mut BundleReport,
    manifest_view: &mut Option<ManifestView>,
) -> Result<(), InspectError> {
    let checks = &mut r.checks;
    // Preamble and the two sections (lengths bounded by the preamble).
    let Some(pre) = section(input, 0, PREAMBLE_LEN, "preamble", checks)? else {
        return Ok(());
    };
    let p = match Preamble::decode(&pre) {
        Ok(p) => p,
        Err(e) => {
            checks.push(check("preamble", false, e.to_string()));
            return Ok(());
        }
    };
    checks.push(check(
        "preamble",
        true,
        format!(
            "format {}, manifest {} bytes, header {} bytes",
            azl_formats::bundle::FORMAT_VERSION,
            p.manifest_len,
            p.header_len
        ),
    ));
    let m_at = PREAMBLE_LEN as u64;
    let h_at = m_at + u64::from(p.manifest_len);
    let head_len = h_at + u64::from(p.header_len);
    let Some(msec) = section(input, m_at, p.manifest_len as usize, "manifest", checks)? else {
        return Ok(());
    };
    let Some(hsec) = section(input, h_at, p.header_len as usize, "header", checks)? else {
        return Ok(());
    };

    // The manifest: signed by a key we trust, or nothing it says is used.
    let sm = match SignedManifest::from_bytes(&msec) {
        Ok(sm) => sm,
        Err(e) => {
            checks.push(check("manifest", false, format!("does not decode: {e}")));
            return Ok(());
        }
    };
    let msig = keys.check(&sm);
    let key = keys.candidate(sm.signature.as_ref().map(|s| s.key_id));
    let decoded = sm.manifest();
    if let Ok(m) = &decoded {
        let number = m
            .partitions
            .iter()
            .position(|p| p.name == m.rootfs.partition)
            .map_or(0, |i| i as u32 + 1);
        *manifest_view = Some(view(m, m.rootfs.partition.as_str(), number, msig.clone()));
        r.slot = Some(m.rootfs.partition.to_string());
        r.security_version = Some(m.security_version);
    }
    r.manifest_signature = Some(msig.clone());
    let (key_file, key) = match (msig.status, key) {
        (SigStatus::Verified, Some((file, key))) => (file.display().to_string(), *key),
        (status, _) => {
            let why = match status {
                SigStatus::Unsigned => {
                    "the manifest is unsigned (bundles are always signed)".into()
                }
                SigStatus::Unverified => format!(
                    "no public key with key id {} (pass --key KEY.pub)",
                    msig.key_id.as_deref().unwrap_or("?")
                ),
                _ => msig
                    .reason
                    .clone()
                    .unwrap_or_else(|| "does not verify".into()),
            };
            checks.push(check("manifest signature", false, why));
            return Ok(());
        }
    };
    let m = match decoded {
        Ok(m) => m,
        Err(e) => {
            checks.push(check("manifest", false, format!("does not decode: {e}")));
            return Ok(());
        }
    };
    checks.push(check(
        "manifest signature",
        true,
        format!(
            "{} {} for board {}, slot {}, security version {}",
            m.image_name, m.image_version, m.board, m.rootfs.partition, m.security_version
        ),
    ));

    // The header: the same key, then its layout against the manifest.
    let header = match header(&hsec, &key, &key_file, r) {
        Some(h) => h,
        None => return Ok(()),
    };
    let checks = &mut r.checks;
    let slot = m
        .partitions
        .iter()
        .find(|p| p.name == m.rootfs.partition)
        .map(|p| p.size);
    r.slot_size = slot;
    let Some(slot_size) = slot else {
        checks.push(check(
            "target slot",
            false,
            format!(
                "the manifest's partition table has no {}",
                m.rootfs.partition
            ),
        ));
        return Ok(());
    };
    let mut offset = head_len;
    let payloads: Vec<PayloadView> = header
        .payloads
        .iter()
        .map(|p| {
            let v = PayloadView {
                kind: p.kind.name(),
                offset,
                size: p.size,
                sha256: Hex(&p.sha256).to_string(),
            };
            offset = offset.saturating_add(p.size);
            v
        })
        .collect();
    r.header = Some(HeaderView {
        manifest_sha256: Hex(&header.manifest_sha256).to_string(),
        min_from_security_version: header.min_from_security_version,
        payloads,
    });
    if let Err(e) = check_layout(&header, &msec, &m, SlotGeometry { size: slot_size }) {
        checks.push(check("layout", false, e.to_string()));
        return Ok(());
    }
    checks.push(check(
        "layout",
        true,
        format!(
            "payloads hash-tree, root-data fit {} ({slot_size} bytes)",
            m.rootfs.partition
        ),
    ));
    payloads_check(input, &m, &header, head_len, checks)?;
    if checks.iter().all(|c| c.ok) {
        r.sha256 = Some(file_digest(input)?);
    }
    Ok(())
}

/// Decode the signed header and check its signature with the manifest's
/// key; the failure is recorded in `r`.
fn header(hsec: &[u8], key: &[u8; 32], key_file: &str, r: &mut BundleReport) -> Option<Header> {
    let sh = match SignedHeader::from_bytes(hsec) {
        Ok(sh) => sh,
        Err(e) => {
            r.checks
                .push(check("header", false, format!("does not decode: {e}")));
            return None;
        }
    };
    let id = Some(Hex(&sh.signature.key_id).to_string());
    let res = fsig::check(&sh.header, &sh.signature, key);
    r.header_signature = Some(Signature {
        status: if res.is_ok() {
            SigStatus::Verified
        } else {
            SigStatus::Invalid
        },
        key_id: id,
        key_file: Some(key_file.to_string()),
        reason: res.as_ref().err().map(ToString::to_string),
    });
    match res {
        Ok(()) => {}
        Err(VerifyError::KeyMismatch { expected, found }) => {
            r.checks.push(check(
                "header signature",
                false,
                format!(
                    "bundle header signed by key {} but the manifest's key is {}",
                    Hex(&found),
                    Hex(&expected)
                ),
            ));
            return None;
        }
        Err(_) => {
            r.checks.push(check(
                "header signature",
                false,
                "bundle header signature does not verify (altered or forged)",
            ));
            return None;
        }
    }
    match Header::from_bytes(&sh.header) {
        Ok(h) => {
            r.checks.push(check(
                "header signature",
                true,
                "signed by the manifest's key",
            ));
            Some(h)
        }
        Err(e) => {
            r.checks
                .push(check("header", false, format!("does not decode: {e}")));
            None
        }
    }
}

/// The file's length against the layout, the payload digests, the tree
/// against the signed root hash and every data block against the tree.
fn payloads_check(
    input: &Input,
    m: &Manifest,
    header: &Header,
    head_len: u64,
    checks: &mut Vec<Check>,
) -> Result<(), InspectError> {
    let v = &m.rootfs.verity;
    // check_layout held the sizes to the manifest (tree then data).
    let tree_at = head_len;
    let data_at = tree_at.saturating_add(v.hash_size);
    let data_end = data_at.saturating_add(m.rootfs.data_size);
    // UEFI boards: kernel, initramfs, cmdline after the data (sizes held
    // to the manifest by check_layout).
    let boot: Vec<&azl_formats::bundle::Payload> = header
        .payloads
        .iter()
        .filter(|p| !matches!(p.kind, PayloadKind::HashTree | PayloadKind::RootData))
        .collect();
    let end = boot
        .iter()
        .fold(data_end, |at, p| at.saturating_add(p.size));
    if input.size != end {
        let what = if input.size > end {
            format!(
                "bundle has {} bytes after its last payload (it should end at byte {end})",
                input.size - end
            )
        } else {
            let (section, start, len) = if input.size < data_at {
                ("hash-tree", tree_at, v.hash_size)
            } else if input.size < data_end {
                ("root-data", data_at, m.rootfs.data_size)
            } else {
                ("kernel files", data_end, end - data_end)
            };
            BundleError::Truncated {
                section,
                got: input.size.saturating_sub(start),
                expected: len,
            }
            .to_string()
        };
        checks.push(check("length", false, what));
        return Ok(());
    }
    checks.push(check(
        "length",
        true,
        format!("{end} bytes, as the layout implies"),
    ));
    let mut at = data_end;
    for p in &boot {
        let name = format!("sha256 {}", p.kind.name());
        let c = match input.read(at, usize::try_from(p.size).unwrap_or(usize::MAX)) {
            Ok(bytes) if azl_formats::sha256(&bytes) == p.sha256 => {
                check(name, true, format!("{} ({} bytes)", Hex(&p.sha256), p.size))
            }
            Ok(bytes) => check(
                name,
                false,
                format!(
                    "bundle {} payload does not match its sha256: header says {}, payload has {}",
                    p.kind.name(),
                    Hex(&p.sha256),
                    Hex(&azl_formats::sha256(&bytes))
                ),
            ),
            Err(Short::Truncated { got }) => check(
                name,
                false,
                format!(
                    "bundle is truncated in its {}: {got} of {} bytes",
                    p.kind.name(),
                    p.size
                ),
            ),
            Err(Short::Io(e)) => return Err(e),
        };
        checks.push(c);
        at = at.saturating_add(p.size);
    }

    // The tree: bounded, hashed, then checked against the root hash.
    let tree_len = match VerifiedTree::expected_size(v, MAX_TREE_LEN) {
        Ok(n) => n,
        Err(e) => {
            checks.push(check("hash tree", false, format!("bundle hash tree: {e}")));
            return Ok(());
        }
    };
    let area = match input.read(tree_at, usize::try_from(tree_len).unwrap_or(usize::MAX)) {
        Ok(a) => a,
        Err(Short::Truncated { got }) => {
            checks.push(check(
                "length",
                false,
                format!("bundle is truncated in its hash-tree: {got} of {tree_len} bytes"),
            ));
            return Ok(());
        }
        Err(Short::Io(e)) => return Err(e),
    };
    let want = |i: usize| header.payloads.get(i).map(|p| p.sha256);
    let tree_sha = azl_formats::sha256(&area);
    let tree_ok = want(0) == Some(tree_sha);
    checks.push(check(
        "sha256 hash-tree",
        tree_ok,
        if tree_ok {
            format!("{} ({tree_len} bytes)", Hex(&tree_sha))
        } else {
            format!(
                "bundle hash-tree payload does not match its sha256: header says {}, payload has {}",
                want(0).map_or_else(String::new, |d| Hex(&d).to_string()),
                Hex(&tree_sha)
            )
        },
    ));
    let tree = match VerifiedTree::new(v, area, MAX_TREE_LEN) {
        Ok(t) => {
            checks.push(check(
                "hash tree",
                true,
                format!("matches the signed root hash {}", Hex(&v.root_hash)),
            ));
            Some(t)
        }
        Err(e) => {
            checks.push(check("hash tree", false, format!("bundle hash tree: {e}")));
            None
        }
    };

    // The data: one block at a time, digest and tree check together.
    let bs = v.data_block_size as usize;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut bad: Vec<u64> = Vec::new();
    let mut bad_count = 0u64;
    let mut block = vec![0u8; bs];
    for index in 0..v.data_blocks {
        let at = data_at + index * bs as u64;
        input
            .file
            .read_exact_at(&mut block, at)
            .map_err(|source| InspectError::Open {
                path: input.path.to_path_buf(),
                source,
            })?;
        ctx.update(&block);
        if let Some(t) = &tree {
            if !t.check_block(index, &block) {
                bad_count += 1;
                if bad.len() < 8 {
                    bad.push(index);
                }
            }
        }
    }
    let data_sha: [u8; 32] = ctx.finish().as_ref().try_into().unwrap_or([0; 32]);
    let data_ok = want(1) == Some(data_sha);
    checks.push(check(
        "sha256 root-data",
        data_ok,
        if data_ok {
            format!("{} ({} bytes)", Hex(&data_sha), m.rootfs.data_size)
        } else {
            format!(
                "bundle root-data payload does not match its sha256: header says {}, payload has {}",
                want(1).map_or_else(String::new, |d| Hex(&d).to_string()),
                Hex(&data_sha)
            )
        },
    ));
    if tree.is_some() {
        let ok = bad_count == 0;
        checks.push(check(
            "data blocks",
            ok,
            if ok {
                format!("all {} blocks match the signed verity tree", v.data_blocks)
            } else {
                let list: Vec<String> = bad
                    .iter()
                    .map(|b| format!("{b} (slot offset {})", b * bs as u64))
                    .collect();
                format!(
                    "{bad_count} of {} data blocks do not match the signed verity tree: block {}",
                    v.data_blocks,
                    list.join(", ")
                )
            },
        ));
    }
    Ok(())
}

/// sha256 of the whole file, read in 1 MiB chunks.
fn file_digest(input: &Input) -> Result<String, InspectError> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0u64;
    while at < input.size {
        let n = usize::try_from((input.size - at).min(buf.len() as u64)).unwrap_or(0);
        let chunk = buf.get_mut(..n).unwrap_or_default();
        input
            .file
            .read_exact_at(chunk, at)
            .map_err(|source| InspectError::Open {
                path: input.path.to_path_buf(),
                source,
            })?;
        ctx.update(chunk);
        at += n as u64;
    }
    Ok(Hex(ctx.finish().as_ref()).to_string())
}
