//! Build provenance: `provenance.json` next to the image, an in-toto
//! Statement v1 with a SLSA Provenance v1 predicate — what was built
//! (subjects with digests), from what (the image config and its sha256,
//! every RPM, the kernel, the lock file, the init binary, the board file)
//! and by which builder (imagegen and its version) — in a DSSE envelope
//! signed with the build's Ed25519 key, the one that signs the manifest
//! (docs/packages.md#provenance). No time or host path beyond what the
//! command line gave goes in, so the same inputs give the same bytes.
pub mod dsse;
pub mod statement;

use crate::packages::Installed;
use statement::{
    sha256_set, BuildDefinition, Builder, ExternalParameters, FileParam, InternalParameters,
    Provenance, ResourceDescriptor, RunDetails, Statement,
};
use std::collections::BTreeMap;

/// The provenance file's name next to the image.
pub const FILE: &str = "provenance.json";

/// What the statement records.
pub struct Inputs<'a> {
    /// The config as given on the command line, and its bytes' digest.
    pub config_path: &'a str,
    pub config_sha256: [u8; 32],
    pub board: &'a str,
    pub board_sha256: [u8; 32],
    pub slot: Option<&'a str>,
    pub locked: bool,
    pub signed: bool,
    pub epoch: u32,
    pub kernel_sha256: [u8; 32],
    pub init_sha256: [u8; 32],
    pub lock_sha256: Option<[u8; 32]>,
    pub packages: &'a [Installed],
    /// The outputs, by file name.
    pub subjects: Vec<(&'a str, [u8; 32])>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProvenanceError {
    #[error("provenance: encoding: {0}")]
    Encode(serde_json::Error),
}

fn named(name: &str, uri: Option<String>, d: &[u8; 32]) -> ResourceDescriptor {
    ResourceDescriptor {
        name: name.to_string(),
        uri,
        digest: sha256_set(d),
    }
}

/// The statement of `i`.
pub fn statement(i: &Inputs) -> Statement {
    let version = env!("CARGO_PKG_VERSION");
    let mut deps = vec![
        named("board", Some(format!("board:{}", i.board)), &i.board_sha256),
        named("kernel", None, &i.kernel_sha256),
        named("init", None, &i.init_sha256),
    ];
    if let Some(l) = &i.lock_sha256 {
        deps.push(named(crate::packages::lock::FILE, None, l));
    }
    for p in i.packages {
        deps.push(ResourceDescriptor {
            name: format!("{}-{}.{}", p.name, p.evr, p.arch),
            uri: Some(crate::sbom::collect::purl(p)),
            digest: BTreeMap::from([("sha256".to_string(), p.sha256.clone())]),
        });
    }
    Statement {
        type_: statement::STATEMENT_TYPE.into(),
        subject: i.subjects.iter().map(|(n, d)| named(n, None, d)).collect(),
        predicate_type: statement::PREDICATE_TYPE.into(),
        predicate: Provenance {
            build_definition: BuildDefinition {
                build_type: statement::BUILD_TYPE.into(),
                external_parameters: ExternalParameters {
                    config: FileParam {
                        path: i.config_path.to_string(),
                        sha256: azl_formats::manifest::Hex(&i.config_sha256).to_string(),
                    },
                    board: i.board.to_string(),
                    slot: i.slot.map(str::to_string),
                    locked: i.locked,
                    signed: i.signed,
                },
                internal_parameters: InternalParameters {
                    source_date_epoch: i.epoch,
                },
                resolved_dependencies: deps,
            },
            run_details: RunDetails {
                builder: Builder {
                    id: format!("{}@{version}", statement::BUILDER_ID),
                    version: BTreeMap::from([("imagegen".to_string(), version.to_string())]),
                },
            },
        },
    }
}

/// `provenance.json`: the statement in a DSSE envelope, signed with `key`
/// (no signature without one).
pub fn build(i: &Inputs, key: Option<&azl_sign::SigningKey>) -> Result<Vec<u8>, ProvenanceError> {
    let payload = serde_json::to_vec(&statement(i)).map_err(ProvenanceError::Encode)?;
    let mut out =
        serde_json::to_vec_pretty(&dsse::seal(&payload, key)).map_err(ProvenanceError::Encode)?;
    out.push(b'\n');
    Ok(out)
}
