//! The in-toto Statement v1 with a SLSA Provenance v1 predicate, the
//! fields imagegen fills (<https://slsa.dev/spec/v1.0/provenance>).
//! Digests are lower-case hex in `{"sha256": …}` maps.
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// What an imagegen build is, as SLSA's `buildType`.
pub const BUILD_TYPE: &str = "https://azl-edge.invalid/imagegen/build/v1";
/// The builder's id prefix; imagegen's version completes it.
pub const BUILDER_ID: &str = "https://azl-edge.invalid/imagegen";

pub type DigestSet = BTreeMap<String, String>;

/// `{"sha256": hex}`.
pub fn sha256_set(d: &[u8; 32]) -> DigestSet {
    DigestSet::from([(
        "sha256".to_string(),
        azl_formats::manifest::Hex(d).to_string(),
    )])
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub type_: String,
    pub subject: Vec<ResourceDescriptor>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: Provenance,
}

/// An in-toto ResourceDescriptor (the fields used here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceDescriptor {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    pub digest: DigestSet,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    pub build_definition: BuildDefinition,
    pub run_details: RunDetails,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildDefinition {
    pub build_type: String,
    pub external_parameters: ExternalParameters,
    pub internal_parameters: InternalParameters,
    pub resolved_dependencies: Vec<ResourceDescriptor>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalParameters {
    /// The image config, as given on the command line, and its sha256.
    pub config: FileParam,
    /// The board, by name.
    pub board: String,
    /// The root slot filled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
    /// `--locked`.
    pub locked: bool,
    /// Whether the manifest is signed (`false`: `--insecure-unsigned`).
    pub signed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileParam {
    pub path: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InternalParameters {
    /// `SOURCE_DATE_EPOCH` (0 when unset).
    pub source_date_epoch: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunDetails {
    pub builder: Builder,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Builder {
    pub id: String,
    pub version: BTreeMap<String, String>,
}
