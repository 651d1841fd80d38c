//! The image's [`FileSet`] and installed packages as an SPDX [`Document`]:
//! a package for the image itself (the files imagegen generates), one for
//! the config's hand-listed `[[file]]`s, one per RPM, and every regular
//! file with its SHA-256 and SHA-1, contained by the package that brought
//! it ([`Origin`]).
use super::license::Licenses;
use super::model::{
    Checksum, CreationInfo, Document, ExternalRef, File, Package, Relationship, VerificationCode,
    DATA_LICENSE, DOCUMENT_ID, NOASSERTION, SPDX_VERSION,
};
use super::{Inputs, SbomError};
use crate::packages::Installed;
use crate::rootfs::{Content, Kind, Origin};
use azl_formats::manifest::Hex;
use std::collections::BTreeMap;

pub const IMAGE_ID: &str = "SPDXRef-Image";
pub const CONFIG_FILES_ID: &str = "SPDXRef-ConfigFiles";

/// Which package a file belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Owner {
    Image,
    Config,
    Rpm(String),
}

fn hex_digest(alg: &'static ring::digest::Algorithm, bytes: &[u8]) -> String {
    Hex(ring::digest::digest(alg, bytes).as_ref()).to_string()
}

fn checksum(algorithm: &str, value: String) -> Checksum {
    Checksum {
        algorithm: algorithm.to_string(),
        checksum_value: value,
    }
}

/// An SPDX id fragment: letters, digits, `.` and `-` only.
fn id_part(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' => c,
            _ => '-',
        })
        .collect()
}

/// `[epoch:]version-release` → (epoch, version-release).
fn split_evr(evr: &str) -> (Option<&str>, &str) {
    match evr.split_once(':') {
        Some((e, vr)) => (Some(e), vr),
        None => (None, evr),
    }
}

/// Percent-encoding for a purl or URI component (RFC 3986 unreserved kept).
pub fn pct(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(b))
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The package URL of an RPM: `pkg:rpm/<name>@<version>-<release>?arch=…[&epoch=…]`.
pub fn purl(p: &Installed) -> String {
    let (epoch, vr) = split_evr(&p.evr);
    let mut s = format!("pkg:rpm/{}@{}?arch={}", pct(&p.name), pct(vr), pct(&p.arch));
    if let Some(e) = epoch {
        s.push_str(&format!("&epoch={}", pct(e)));
    }
    s
}

fn rpm_package(p: &Installed, id: String, licenses: &mut Licenses) -> Package {
    let nevra = format!("{}-{}.{}", p.name, p.evr, p.arch);
    Package {
        name: p.name.clone(),
        spdx_id: id,
        version_info: Some(p.evr.clone()),
        supplier: Some(NOASSERTION.into()),
        originator: None,
        download_location: NOASSERTION.into(),
        files_analyzed: false,
        package_verification_code: None,
        checksums: vec![checksum("SHA256", p.sha256.clone())],
        primary_package_purpose: None,
        license_concluded: NOASSERTION.into(),
        license_declared: licenses.declared(&p.license, &nevra),
        copyright_text: NOASSERTION.into(),
        comment: Some(format!(
            "{nevra} from repository {}, {}",
            p.repo, p.location
        )),
        external_refs: vec![ExternalRef {
            reference_category: "PACKAGE-MANAGER".into(),
            reference_type: "purl".into(),
            reference_locator: purl(p),
        }],
    }
}

fn own_package(
    name: String,
    id: &str,
    version: Option<String>,
    purpose: &str,
    comment: &str,
) -> Package {
    Package {
        name,
        spdx_id: id.to_string(),
        version_info: version,
        supplier: Some(NOASSERTION.into()),
        originator: None,
        download_location: NOASSERTION.into(),
        files_analyzed: false,
        package_verification_code: None,
        checksums: Vec::new(),
        primary_package_purpose: Some(purpose.into()),
        license_concluded: NOASSERTION.into(),
        license_declared: NOASSERTION.into(),
        copyright_text: NOASSERTION.into(),
        comment: Some(comment.into()),
        external_refs: Vec::new(),
    }
}

/// SPDX 2.3 §7.9: SHA-1 over the sorted, concatenated SHA-1s of the files.
fn verification_code(mut sha1s: Vec<&str>) -> VerificationCode {
    sha1s.sort_unstable();
    VerificationCode {
        package_verification_code_value: hex_digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            sha1s.concat().as_bytes(),
        ),
    }
}

fn read(content: &Content) -> Result<std::borrow::Cow<'_, [u8]>, SbomError> {
    match content {
        Content::Bytes(b) => Ok(std::borrow::Cow::Borrowed(b)),
        Content::Host(p) => std::fs::read(p)
            .map(std::borrow::Cow::Owned)
            .map_err(|source| SbomError::Read {
                path: p.clone(),
                source,
            }),
    }
}

/// The document, with `namespace` as its `documentNamespace`.
pub fn document(i: &Inputs, namespace: &str) -> Result<Document, SbomError> {
    let mut licenses = Licenses::default();
    let mut packages = vec![own_package(
        i.image_name.to_string(),
        IMAGE_ID,
        Some(i.image_version.to_string()),
        "OPERATING-SYSTEM",
        "the azl-edge image; contains the files imagegen generates",
    )];
    let mut ids: BTreeMap<Owner, usize> = BTreeMap::new();
    ids.insert(Owner::Image, 0);
    let mut has_config = false;
    for (n, p) in i.packages.iter().enumerate() {
        let id = format!("SPDXRef-Package-{}-{}", n + 1, id_part(&p.name));
        ids.insert(
            Owner::Rpm(format!("{}-{}.{}", p.name, p.evr, p.arch)),
            packages.len(),
        );
        packages.push(rpm_package(p, id, &mut licenses));
    }

    let mut files = Vec::new();
    let mut owned: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (path, node) in i.rootfs.iter() {
        let Kind::File(content) = &node.kind else {
            continue;
        };
        let bytes = read(content)?;
        let owner = match &node.origin {
            Origin::Package(nevra) => Owner::Rpm(nevra.clone()),
            Origin::Config(_) => Owner::Config,
            Origin::Generated(_) | Origin::Implicit => Owner::Image,
        };
        if owner == Owner::Config && !has_config {
            has_config = true;
            ids.insert(Owner::Config, packages.len());
            packages.push(own_package(
                format!("{}-config-files", i.image_name),
                CONFIG_FILES_ID,
                Some(i.image_version.to_string()),
                "FILE",
                "the files the image config lists ([[file]])",
            ));
        }
        let pkg = ids.get(&owner).copied().unwrap_or(0);
        owned.entry(pkg).or_default().push(files.len());
        files.push(File {
            file_name: format!(".{path}"),
            spdx_id: format!("SPDXRef-File-{}", files.len() + 1),
            checksums: vec![
                checksum(
                    "SHA1",
                    hex_digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &bytes),
                ),
                checksum("SHA256", hex_digest(&ring::digest::SHA256, &bytes)),
            ],
            comment: None,
        });
    }

    let mut relationships = vec![Relationship::new(DOCUMENT_ID, "DESCRIBES", IMAGE_ID)];
    for p in packages.iter().skip(1) {
        relationships.push(Relationship::new(IMAGE_ID, "CONTAINS", &p.spdx_id));
    }
    for (pkg, members) in &owned {
        let Some(p) = packages.get_mut(*pkg) else {
            continue;
        };
        let member_files: Vec<&File> = members.iter().filter_map(|f| files.get(*f)).collect();
        p.files_analyzed = true;
        p.package_verification_code = Some(verification_code(
            member_files
                .iter()
                .filter_map(|f| f.checksum("SHA1"))
                .collect(),
        ));
        for f in member_files {
            relationships.push(Relationship::new(&p.spdx_id, "CONTAINS", &f.spdx_id));
        }
    }

    Ok(Document {
        spdx_version: SPDX_VERSION.into(),
        data_license: DATA_LICENSE.into(),
        spdx_id: DOCUMENT_ID.into(),
        name: format!("{}-{}", i.image_name, i.image_version),
        document_namespace: namespace.to_string(),
        creation_info: CreationInfo {
            creators: vec![format!("Tool: imagegen-{}", env!("CARGO_PKG_VERSION"))],
            created: super::time::utc(u64::from(i.epoch)),
        },
        has_extracted_licensing_infos: licenses.into_extracted(),
        packages,
        files,
        relationships,
    })
}
