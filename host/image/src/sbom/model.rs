//! The SPDX 2.3 JSON document, the subset imagegen writes and reads back
//! (`imagegen inspect --sbom`). Field names and order follow the SPDX 2.3
//! JSON schema; serde writes the fields in declaration order, so the same
//! document always gives the same bytes.
use serde::{Deserialize, Serialize};

pub const SPDX_VERSION: &str = "SPDX-2.3";
pub const DATA_LICENSE: &str = "CC0-1.0";
pub const DOCUMENT_ID: &str = "SPDXRef-DOCUMENT";
pub const NOASSERTION: &str = "NOASSERTION";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    pub spdx_version: String,
    pub data_license: String,
    #[serde(rename = "SPDXID")]
    pub spdx_id: String,
    pub name: String,
    pub document_namespace: String,
    pub creation_info: CreationInfo,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub has_extracted_licensing_infos: Vec<ExtractedLicense>,
    #[serde(default)]
    pub packages: Vec<Package>,
    #[serde(default)]
    pub files: Vec<File>,
    #[serde(default)]
    pub relationships: Vec<Relationship>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreationInfo {
    pub creators: Vec<String>,
    /// `YYYY-MM-DDThh:mm:ssZ`.
    pub created: String,
}

/// A license that is not an SPDX expression, kept verbatim
/// (`LicenseRef-…`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtractedLicense {
    pub license_id: String,
    pub extracted_text: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Package {
    pub name: String,
    #[serde(rename = "SPDXID")]
    pub spdx_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_info: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supplier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub originator: Option<String>,
    pub download_location: String,
    pub files_analyzed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_verification_code: Option<VerificationCode>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checksums: Vec<Checksum>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_package_purpose: Option<String>,
    pub license_concluded: String,
    pub license_declared: String,
    pub copyright_text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_refs: Vec<ExternalRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationCode {
    pub package_verification_code_value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checksum {
    /// `SHA1`, `SHA256`.
    pub algorithm: String,
    pub checksum_value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalRef {
    pub reference_category: String,
    pub reference_type: String,
    pub reference_locator: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct File {
    /// `./` and the path in the image.
    pub file_name: String,
    #[serde(rename = "SPDXID")]
    pub spdx_id: String,
    pub checksums: Vec<Checksum>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

impl File {
    /// The value of the checksum named `algorithm`.
    pub fn checksum(&self, algorithm: &str) -> Option<&str> {
        self.checksums
            .iter()
            .find(|c| c.algorithm == algorithm)
            .map(|c| c.checksum_value.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Relationship {
    pub spdx_element_id: String,
    /// `DESCRIBES`, `CONTAINS`.
    pub relationship_type: String,
    pub related_spdx_element: String,
}

impl Relationship {
    pub fn new(from: &str, kind: &str, to: &str) -> Self {
        Self {
            spdx_element_id: from.to_string(),
            relationship_type: kind.to_string(),
            related_spdx_element: to.to_string(),
        }
    }
}
