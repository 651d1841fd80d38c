//! The SBOM next to an image (`sbom.spdx.json`) against the signed
//! manifest's `sbom_sha256`: plain `inspect` checks it when the file is
//! there; `inspect --sbom` also reads it and summarises packages, files
//! and licenses.
use super::{check, inspect, Check, InspectError, InspectOptions, ManifestView, Report};
use crate::sbom::{self, Document};
use azl_formats::manifest::Hex;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// Width of the key column in the text output.
const KEY: usize = 16;

/// The manifest an output directory's SBOM belongs to: the slot its boot
/// config names, else the first one with a manifest.
pub(super) fn manifest_for<'a>(
    manifests: &'a [ManifestView],
    root: Option<&str>,
) -> Option<&'a ManifestView> {
    root.and_then(|r| manifests.iter().find(|m| m.slot == r))
        .or_else(|| manifests.first())
}

/// Compare the SBOM's bytes with the manifest's digest.
fn digest_check(path: &Path, bytes: &[u8], m: &ManifestView) -> Check {
    let got = Hex(&azl_formats::sha256(bytes)).to_string();
    let ok = got == m.sbom_sha256;
    check(
        sbom::FILE,
        ok,
        if ok {
            format!("{} matches the manifest of {}", path.display(), m.slot)
        } else {
            format!(
                "{} is sha256 {got}, the manifest of {} says {}: the SBOM is not the one this image was built with",
                path.display(),
                m.slot,
                m.sbom_sha256
            )
        },
    )
}

/// Plain `inspect`: the check of `dir/sbom.spdx.json`, when it exists.
pub(super) fn check_next_to(
    dir: &Path,
    manifests: &[ManifestView],
    root: Option<&str>,
) -> Option<Check> {
    let path = dir.join(sbom::FILE);
    if path.symlink_metadata().is_err() {
        return None;
    }
    let m = manifest_for(manifests, root)?;
    Some(match azl_fileread::read(&path, sbom::MAX) {
        Ok(bytes) => digest_check(&path, &bytes, m),
        Err(e) => check(sbom::FILE, false, e.to_string()),
    })
}

/// One package of the SBOM.
#[derive(Debug, Clone, Serialize)]
pub struct PackageSummary {
    pub name: String,
    pub version: Option<String>,
    pub license: String,
    /// Files it contains in the root filesystem.
    pub files: usize,
    /// Its package URL, for RPMs.
    pub purl: Option<String>,
}

/// `imagegen inspect --sbom`: the SBOM checked and summarised. Serialized
/// as the `--json` output.
#[derive(Debug, Clone, Serialize)]
pub struct SbomReport {
    pub path: String,
    pub sha256: String,
    /// The slot whose manifest it was checked against.
    pub manifest_slot: Option<String>,
    pub check: Option<Check>,
    pub document_name: String,
    pub document_namespace: String,
    pub created: String,
    pub creators: Vec<String>,
    pub packages: Vec<PackageSummary>,
    pub files: usize,
    /// Every declared license expression, sorted.
    pub licenses: Vec<String>,
    /// The image's problems and the SBOM's, one line each.
    pub problems: Vec<String>,
    pub ok: bool,
}

impl SbomReport {
    pub fn exit_code(&self) -> u8 {
        if self.ok {
            0
        } else {
            super::EXIT_FAILED
        }
    }
}

fn summarise(d: &Document) -> (Vec<PackageSummary>, Vec<String>) {
    let mut files: BTreeMap<&str, usize> = BTreeMap::new();
    let file_ids: BTreeSet<&str> = d.files.iter().map(|f| f.spdx_id.as_str()).collect();
    for r in &d.relationships {
        if r.relationship_type == "CONTAINS" && file_ids.contains(r.related_spdx_element.as_str()) {
            *files.entry(r.spdx_element_id.as_str()).or_default() += 1;
        }
    }
    let packages = d
        .packages
        .iter()
        .map(|p| PackageSummary {
            name: p.name.clone(),
            version: p.version_info.clone(),
            license: p.license_declared.clone(),
            files: files.get(p.spdx_id.as_str()).copied().unwrap_or(0),
            purl: p
                .external_refs
                .iter()
                .find(|r| r.reference_type == "purl")
                .map(|r| r.reference_locator.clone()),
        })
        .collect();
    let licenses: BTreeSet<String> = d
        .packages
        .iter()
        .map(|p| p.license_declared.clone())
        .filter(|l| l != sbom::model::NOASSERTION)
        .collect();
    (packages, licenses.into_iter().collect())
}

/// Where the image's own files are: the output directory, or the disk
/// image's.
fn image_dir(path: &Path) -> PathBuf {
    if path.is_dir() {
        return path.to_path_buf();
    }
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Check the SBOM at `sbom_path` (default: next to the image) against the
/// image's manifest and summarise it.
pub fn sbom_report(
    opts: &InspectOptions,
    sbom_path: Option<&Path>,
) -> Result<SbomReport, InspectError> {
    let image: Report = inspect(opts)?;
    let path = sbom_path.map_or_else(|| image_dir(&opts.path).join(sbom::FILE), Path::to_path_buf);
    let bytes = azl_fileread::read(&path, sbom::MAX)?;
    let document = sbom::parse(&path, &bytes)?;
    let root = image
        .boot_config
        .as_ref()
        .and_then(|c| c.root_partition.as_deref());
    let m = manifest_for(&image.manifests, root);
    let check = m.map(|m| digest_check(&path, &bytes, m));
    let mut problems: Vec<String> = image
        .problems
        .iter()
        .filter(|p| !p.starts_with(&format!("{}:", sbom::FILE)))
        .cloned()
        .collect();
    match &check {
        Some(c) if !c.ok => problems.push(format!("{}: {}", c.name, c.detail)),
        Some(_) => {}
        None => problems.push(format!(
            "{}: no manifest in {} to check it against",
            path.display(),
            opts.path.display()
        )),
    }
    let (packages, licenses) = summarise(&document);
    Ok(SbomReport {
        path: path.display().to_string(),
        sha256: Hex(&azl_formats::sha256(&bytes)).to_string(),
        manifest_slot: m.map(|m| m.slot.clone()),
        check,
        document_name: document.name.clone(),
        document_namespace: document.document_namespace.clone(),
        created: document.creation_info.created.clone(),
        creators: document.creation_info.creators.clone(),
        files: document.files.len(),
        packages,
        licenses,
        ok: problems.is_empty(),
        problems,
    })
}

impl fmt::Display for SbomReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kv = |f: &mut fmt::Formatter<'_>, k: &str, v: &str| writeln!(f, "  {k:<KEY$}{v}");
        writeln!(f, "sbom {}", self.path)?;
        kv(f, "sha256", &self.sha256)?;
        if let Some(c) = &self.check {
            kv(f, "manifest", &c.detail)?;
        }
        kv(f, "document", &self.document_name)?;
        kv(f, "namespace", &self.document_namespace)?;
        kv(
            f,
            "created",
            &format!("{} by {}", self.created, self.creators.join(", ")),
        )?;
        kv(f, "files", &self.files.to_string())?;
        kv(f, "packages", &self.packages.len().to_string())?;
        for p in &self.packages {
            writeln!(
                f,
                "    {} {}  {}  ({} file{})",
                p.name,
                p.version.as_deref().unwrap_or("-"),
                p.license,
                p.files,
                if p.files == 1 { "" } else { "s" }
            )?;
        }
        kv(f, "licenses", &self.licenses.join(", "))?;
        writeln!(f)?;
        if self.problems.is_empty() {
            writeln!(f, "result: OK")
        } else {
            writeln!(f, "result: FAILED ({} problems)", self.problems.len())?;
            for p in &self.problems {
                writeln!(f, "  - {p}")?;
            }
            Ok(())
        }
    }
}
