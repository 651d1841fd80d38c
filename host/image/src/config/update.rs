//! The `[update]` table: how a trial boot of this image is judged and who
//! commits it (docs/update.md, "Trial and commit: the health gate"). Its
//! checked form is `azl_formats::UpdatePolicy`, which `bootcfg` puts into
//! the boot config's root spec.
//!
//! ```toml
//! [update]
//! commit = "local"            # or "manual", or "attested" (needs verifier_key)
//! ready_deadline_s = 60       # every service ready within 60 s of boot
//! hold_s = 30                 # then 30 s without any exit or restart
//! health_check = ["/usr/bin/check", "--quick"]   # then this must exit 0
//! health_check_timeout_s = 30
//! # commit = "attested" only:
//! verifier_key = "keys/verifier.key.pub"   # raw Ed25519 public key, relative to this file
//! approval_deadline_s = 600   # wait this long for an approval after the local gates
//! ```
use super::error::ConfigErrorKind;
use crate::diag::Diagnostics;
use crate::source::SourceFile;
use azl_formats::boot::update_limits::{
    APPROVAL_DEADLINE_DEFAULT_S, HEALTH_CHECK_TIMEOUT_DEFAULT_S, HOLD_DEFAULT_S, MAX_S,
    MIN_DEADLINE_S, READY_DEADLINE_DEFAULT_S,
};
use azl_formats::limits::{self, LimitError};
use azl_formats::{CommitPolicy, HealthCheck, UpdatePolicy};
use serde::Deserialize;
use std::path::PathBuf;
use toml::Spanned;

/// `[update]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateSection {
    pub commit: Option<Spanned<CommitWord>>,
    pub ready_deadline_s: Option<Spanned<i64>>,
    pub hold_s: Option<Spanned<i64>>,
    pub health_check: Option<Spanned<Vec<String>>>,
    pub health_check_timeout_s: Option<Spanned<i64>>,
    /// Policy `attested`: the verifier's raw Ed25519 public key file.
    pub verifier_key: Option<Spanned<String>>,
    /// Policy `attested`: seconds to wait for an approval.
    pub approval_deadline_s: Option<Spanned<i64>>,
}

/// `commit = …`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommitWord {
    Local,
    Manual,
    /// Commit only with a remote verifier's signed approval.
    Attested,
}

/// Problems in `[update]`.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error(
        "[update] commit = \"attested\" needs verifier_key = \"PATH\": the raw Ed25519 public key \
         (a KEY.pub as `imagegen keygen` writes it) of the verifier whose approvals commit a trial"
    )]
    AttestedNeedsKey,
    #[error("[update] {key} is set but commit is not \"attested\"")]
    OnlyForAttested { key: &'static str },
    #[error("[update] verifier_key: {0}")]
    VerifierKey(azl_sign::KeyError),
    #[error("[update] {key} = {value} is out of range ({min}..={max} seconds)")]
    Range {
        key: &'static str,
        value: i64,
        min: u32,
        max: u32,
    },
    #[error("[update] health_check: {0}")]
    Limit(LimitError),
    #[error("[update] health_check_timeout_s is set but there is no health_check")]
    TimeoutWithoutCheck,
}

impl From<UpdateError> for ConfigErrorKind {
    fn from(e: UpdateError) -> Self {
        ConfigErrorKind::Update(e)
    }
}

fn seconds<K: From<ConfigErrorKind>>(
    source: &SourceFile,
    key: &'static str,
    v: Option<&Spanned<i64>>,
    default: u32,
    min: u32,
    diags: &mut Diagnostics<K>,
) -> u32 {
    let Some(v) = v else { return default };
    match u32::try_from(*v.get_ref()) {
        Ok(s) if (min..=MAX_S).contains(&s) => s,
        _ => {
            diags.push(
                source.loc(v.span()),
                ConfigErrorKind::from(UpdateError::Range {
                    key,
                    value: *v.get_ref(),
                    min,
                    max: MAX_S,
                }),
            );
            default
        }
    }
}

/// Resolves a path-valued key (`${VAR}` expanded, relative to the config).
pub type KeyPath<'a, K> =
    &'a mut dyn FnMut(&Spanned<String>, &mut Diagnostics<K>) -> Option<PathBuf>;

/// The commit policy; `key_path` resolves `verifier_key` (relative to
/// the config file, `${VAR}` expanded). The key file is read here, so a
/// missing or malformed key is a located build error naming the file.
fn commit_policy<K: From<ConfigErrorKind>>(
    source: &SourceFile,
    u: &UpdateSection,
    key_path: KeyPath<'_, K>,
    diags: &mut Diagnostics<K>,
) -> CommitPolicy {
    let word = u.commit.as_ref().map(|c| *c.get_ref());
    if word != Some(CommitWord::Attested) {
        for (key, span) in [
            ("verifier_key", u.verifier_key.as_ref().map(Spanned::span)),
            (
                "approval_deadline_s",
                u.approval_deadline_s.as_ref().map(Spanned::span),
            ),
        ] {
            if let Some(span) = span {
                diags.push(
                    source.loc(span),
                    ConfigErrorKind::from(UpdateError::OnlyForAttested { key }),
                );
            }
        }
    }
    match word {
        None | Some(CommitWord::Local) => CommitPolicy::Local,
        Some(CommitWord::Manual) => CommitPolicy::Manual,
        Some(CommitWord::Attested) => {
            let deadline_s = seconds(
                source,
                "approval_deadline_s",
                u.approval_deadline_s.as_ref(),
                APPROVAL_DEADLINE_DEFAULT_S,
                MIN_DEADLINE_S,
                diags,
            );
            let verifier_key = match &u.verifier_key {
                None => {
                    let at = u.commit.as_ref().map(Spanned::span).unwrap_or_default();
                    diags.push(
                        source.loc(at),
                        ConfigErrorKind::from(UpdateError::AttestedNeedsKey),
                    );
                    None
                }
                Some(v) => key_path(v, diags).and_then(|p| {
                    azl_sign::load_public_key(&p)
                        .map_err(|e| {
                            diags.push(
                                source.loc(v.span()),
                                ConfigErrorKind::from(UpdateError::VerifierKey(e)),
                            )
                        })
                        .ok()
                }),
            };
            CommitPolicy::Attested {
                verifier_key: verifier_key.unwrap_or([0; 32]),
                deadline_s,
            }
        }
    }
}

/// Check `[update]` (absent: every default) into the policy init applies.
/// `key_path` resolves the `verifier_key` path value.
pub fn check<K: From<ConfigErrorKind>>(
    source: &SourceFile,
    section: Option<&UpdateSection>,
    key_path: KeyPath<'_, K>,
    diags: &mut Diagnostics<K>,
) -> UpdatePolicy {
    let Some(u) = section else {
        return UpdatePolicy::default();
    };
    let commit = commit_policy(source, u, key_path, diags);
    let ready_deadline_s = seconds(
        source,
        "ready_deadline_s",
        u.ready_deadline_s.as_ref(),
        READY_DEADLINE_DEFAULT_S,
        MIN_DEADLINE_S,
        diags,
    );
    let hold_s = seconds(
        source,
        "hold_s",
        u.hold_s.as_ref(),
        HOLD_DEFAULT_S,
        0,
        diags,
    );
    let timeout_s = seconds(
        source,
        "health_check_timeout_s",
        u.health_check_timeout_s.as_ref(),
        HEALTH_CHECK_TIMEOUT_DEFAULT_S,
        MIN_DEADLINE_S,
        diags,
    );
    let health_check = match (&u.health_check, &u.health_check_timeout_s) {
        (None, Some(t)) => {
            diags.push(
                source.loc(t.span()),
                ConfigErrorKind::from(UpdateError::TimeoutWithoutCheck),
            );
            None
        }
        (None, None) => None,
        (Some(exec), _) => {
            let hc = HealthCheck {
                exec: exec.get_ref().clone(),
                timeout_s,
            };
            // The same limits as a service's exec (init spawns it as one).
            match limits::check_service(&hc.as_service()) {
                Ok(()) => Some(hc),
                Err(e) => {
                    diags.push(
                        source.loc(exec.span()),
                        ConfigErrorKind::from(UpdateError::Limit(e)),
                    );
                    None
                }
            }
        }
    };
    UpdatePolicy {
        commit,
        ready_deadline_s,
        hold_s,
        health_check,
    }
}
