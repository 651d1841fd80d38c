//! `imagegen attest verify` and `imagegen attest enroll`: file handling and
//! printing around [`azl_attest::verify`]. Exit codes: 0 attested, 1 a check
//! failed (or the manifest signature), 2 the inputs cannot be read,
//! 3 `--log-only` found the log consistent (NOT attested).
use super::load::{self, LoadError};
use azl_attest::tpm::EccPublic;
use azl_attest::verify::{self as verify, Options, Outcome};
use azl_formats::ak;
use azl_formats::attest::{Report, Tier};
use azl_formats::envelope::Enveloped;
use azl_formats::eventlog;
use azl_formats::manifest::{Hex, SignedManifest};
use azl_formats::measure::{self, Kind};
use azl_formats::nonce;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub const EXIT_ATTESTED: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_ERROR: u8 = 2;
pub const EXIT_LOG_ONLY: u8 = 3;

/// Arguments of `imagegen attest verify`.
#[derive(Debug, Clone, Default)]
pub struct VerifyArgs {
    pub report: PathBuf,
    /// `manifest.bin`, a disk image or an output directory.
    pub manifest: PathBuf,
    /// Hex nonce the verifier sent (required unless `log_only`).
    pub nonce: Option<String>,
    /// Pinned AK (TPM2B_PUBLIC file).
    pub ak: Option<PathBuf>,
    /// Manifest public key (default: manifest.pub next to `manifest`).
    pub key: Option<PathBuf>,
    pub log_only: bool,
    /// Hidden: verify the loaded report this many times and print the rate.
    pub bench: Option<u32>,
    /// `--approve KEY -o FILE`: after an ATTESTED verdict, sign the
    /// approval of this trial boot with the verifier's private key KEY
    /// and write it to FILE ([`super::approve`]).
    pub approve: Option<(PathBuf, PathBuf)>,
}

/// The SHA-256 of the first manifest event in a report's log, if any: used
/// to pick the matching slot of a disk image holding several manifests.
fn reported_manifest_digest(report: &Report) -> Option<[u8; 32]> {
    let events = eventlog::parse(&report.event_log).ok()?;
    events
        .iter()
        .find(|e| measure::parse_event_data(&e.data).is_some_and(|(k, _)| k == Kind::Manifest))
        .map(|e| e.sha256)
}

fn manifest_event_digest(sm: &SignedManifest) -> Option<[u8; 32]> {
    let id = sm.manifest().ok()?.identity_bytes().ok()?;
    Some(eventlog::azl_event(Kind::Manifest, &id).0)
}

/// Everything `verify` needs, read from files.
pub struct Inputs {
    pub report_bytes: Vec<u8>,
    pub signed: SignedManifest,
    pub origin: String,
    pub key_path: PathBuf,
    pub key: [u8; 32],
    pub nonce: Vec<u8>,
    pub ak: Option<Vec<u8>>,
    pub log_only: bool,
}

impl Inputs {
    pub fn load(args: &VerifyArgs) -> Result<Inputs, String> {
        let e = |e: LoadError| e.to_string();
        let (report_bytes, report) = load::report(&args.report).map_err(e)?;
        let want = reported_manifest_digest(&report);
        let prefer = |sm: &SignedManifest| want.is_some() && manifest_event_digest(sm) == want;
        let found = load::manifest(&args.manifest, &prefer).map_err(e)?;
        let (key_path, key) = load::public_key(&args.manifest, args.key.as_deref()).map_err(e)?;
        let nonce = match (&args.nonce, args.log_only) {
            // The contract's rule, the same initctl applies: optional 0x,
            // hex digits only, nonce::MIN_LEN..=nonce::MAX_LEN bytes.
            (Some(h), _) => nonce::parse_hex(h).map_err(|err| format!("--nonce {h:?}: {err}"))?,
            (None, true) => Vec::new(),
            (None, false) => {
                return Err("--nonce is required (the nonce this verifier sent the device)".into())
            }
        };
        let ak = match &args.ak {
            Some(p) => Some(
                azl_attest::input::read_ak(p)
                    .map_err(|err| format!("reading the pinned AK: {err}"))?,
            ),
            None => None,
        };
        Ok(Inputs {
            report_bytes,
            signed: found.signed,
            origin: found.origin,
            key_path,
            key,
            nonce,
            ak,
            log_only: args.log_only,
        })
    }

    /// The whole check from bytes: decode the report, verify the manifest
    /// signature, run the verifier.
    pub fn check(&self) -> Outcome {
        let report = match Report::from_bytes(&self.report_bytes) {
            Ok(r) => r,
            Err(err) => return failed(Vec::new(), format!("report does not decode: {err}")),
        };
        let manifest = match load::verify_manifest(&self.signed, &self.key) {
            Ok(m) => m,
            Err(err) => {
                return failed(
                    Vec::new(),
                    format!("reference manifest {}: signature: {err}", self.origin),
                )
            }
        };
        let mut out = verify::verify(
            &report,
            &manifest,
            &Options {
                nonce: &self.nonce,
                pinned_ak: self.ak.as_deref(),
                log_only: self.log_only,
            },
        );
        out.lines.insert(
            0,
            verify::Line::Ok(format!(
                "reference manifest {} ({} {}) signed by key {} ({})",
                self.origin,
                manifest.image_name,
                manifest.image_version,
                Hex(&azl_sign::key_id(&self.key)),
                self.key_path.display()
            )),
        );
        out
    }
}

fn failed(lines: Vec<verify::Line>, reason: String) -> Outcome {
    Outcome {
        lines,
        verdict: verify::Verdict::Failed(verify::Failure {
            reason,
            details: Vec::new(),
        }),
    }
}

/// `imagegen attest verify`.
pub fn verify_cmd(args: &VerifyArgs) -> u8 {
    let inputs = match Inputs::load(args) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("imagegen: error: {e}");
            return EXIT_ERROR;
        }
    };
    if let Some(n) = args.bench {
        return bench(&inputs, n.max(1));
    }
    // The approval key is loaded before anything is verified: a key that
    // cannot be used is an input error, not a verdict.
    let approver = match &args.approve {
        None => None,
        Some((key, file)) => match azl_sign::SigningKey::load(key) {
            Ok(k) => {
                for w in k.warnings() {
                    eprintln!("imagegen: warning: {w}");
                }
                Some((k, file))
            }
            Err(e) => {
                eprintln!("imagegen: error: --approve: {e}");
                return EXIT_ERROR;
            }
        },
    };
    let out = inputs.check();
    print!("{out}");
    let code = out.exit_code();
    let Some((key, file)) = approver else {
        return code;
    };
    // Fail-closed: only an ATTESTED verdict is approved.
    if !out.attested() {
        eprintln!(
            "imagegen: no approval written: the report did not attest ({} is untouched)",
            file.display()
        );
        return if code == EXIT_ATTESTED {
            EXIT_FAILED
        } else {
            code
        };
    }
    let approved = Report::from_bytes(&inputs.report_bytes)
        .map_err(|e| format!("report does not decode: {e}"))
        .and_then(|r| super::approve::build(&r, &inputs.signed, &key));
    match approved.and_then(|a| super::approve::write(&a, file).map(|()| a)) {
        Ok(a) => {
            print!("{}", super::approve::summary(&a, &key, file));
            EXIT_ATTESTED
        }
        Err(e) => {
            eprintln!("imagegen: error: no approval written: {e}");
            EXIT_FAILED
        }
    }
}

/// Verify the loaded inputs `n` times on this thread; print the rate.
fn bench(inputs: &Inputs, n: u32) -> u8 {
    let mut last = inputs.check();
    let start = Instant::now();
    for _ in 0..n {
        last = inputs.check();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{n} verifications in {secs:.3} s: {:.0} reports/s ({:.1} µs each); verdict: {}",
        f64::from(n) / secs,
        secs * 1e6 / f64::from(n),
        match &last.verdict {
            verify::Verdict::Attested(_) => "ATTESTED".to_string(),
            verify::Verdict::LogMatches(_) => "log matches (not attested)".to_string(),
            verify::Verdict::Failed(f) => format!("FAILED: {}", f.reason),
        }
    );
    last.exit_code()
}

/// `imagegen attest enroll REPORT -o AK`: write the report's AK public
/// (TPM2B_PUBLIC) for later pinning with `--ak`.
pub fn enroll_cmd(report: &Path, out: &Path, force: bool) -> u8 {
    let (_, r) = match load::report(report) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("imagegen: error: {e}");
            return EXIT_ERROR;
        }
    };
    if r.tier != Tier::Tpm || r.ak_public.is_empty() {
        eprintln!("imagegen: error: the report is software-only: it has no AK to enroll");
        return EXIT_FAILED;
    }
    let ak = match EccPublic::parse_tpm2b(&r.ak_public) {
        Ok(ak) => ak,
        Err(e) => {
            eprintln!("imagegen: error: the report's AK public (TPM2B_PUBLIC): {e}");
            return EXIT_FAILED;
        }
    };
    if let Err(e) = ak::check(&ak.params()) {
        eprintln!("imagegen: error: the report's AK: {e}; refusing to enroll it");
        return EXIT_FAILED;
    }
    if out.exists() && !force {
        eprintln!(
            "imagegen: error: {} already exists (use --force to replace it)",
            out.display()
        );
        return EXIT_ERROR;
    }
    if let Err(e) = std::fs::write(out, &r.ak_public) {
        eprintln!("imagegen: error: writing {}: {e}", out.display());
        return EXIT_ERROR;
    }
    eprintln!(
        "imagegen: warning: enrollment trusts whoever produced this report: enroll only over a \
         trusted channel (provisioning on the factory line, or a report whose AK you bound to the \
         TPM's EK certificate), never from a device already in the field"
    );
    println!("AK public (TPM2B_PUBLIC): {}", out.display());
    println!("AK sha256: {}", Hex(&eventlog::sha256(&r.ak_public)));
    EXIT_ATTESTED
}
