//! The host verifier on hostile bytes: the TPM structure parser
//! (`azl_attest::tpm`: TPM2B_ATTEST/TPMS_ATTEST, TPM2B_PUBLIC,
//! TPMT_SIGNATURE) on the raw input, and the whole report path — decode,
//! then `azl_attest::verify` against a fixed signed manifest, pinned AK and
//! nonce from a real swtpm session (`host/attest/testdata/swtpm/`, which
//! also seeds the corpus), with and without `--log-only`.
#![no_main]
use azl_attest::tpm::{EccPublic, EcdsaSignature, Quote};
use azl_attest::verify::{verify, Options, Verdict, MAX_LISTED_DIVERGENCES};
use azl_formats::attest::Report;
use azl_formats::envelope::Enveloped;
use azl_formats::manifest::{Manifest, SignedManifest};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const AK: &[u8] = include_bytes!("../../host/attest/testdata/swtpm/ak.pub");
const NONCE: &[u8] = include_bytes!("../../host/attest/testdata/swtpm/nonce.bin");
const MANIFEST: &[u8] = include_bytes!("../../host/attest/testdata/swtpm/manifest.bin");

static REFERENCE: OnceLock<Manifest> = OnceLock::new();

fn reference() -> &'static Manifest {
    REFERENCE.get_or_init(|| {
        let sm = SignedManifest::from_bytes(MANIFEST).expect("testdata manifest.bin");
        sm.manifest().expect("testdata manifest decodes")
    })
}

fuzz_target!(|data: &[u8]| {
    // The parser alone: every structure from the same bytes.
    if let Ok(q) = Quote::parse_tpm2b(data) {
        assert_eq!(q.attest.len() + 2, data.len());
    }
    let _ = Quote::parse(data);
    if let Ok(k) = EccPublic::parse_tpm2b(data) {
        let _ = azl_formats::ak::check(&k.params());
        assert_eq!(k.sec1()[0], 0x04);
    }
    let _ = EcdsaSignature::parse(data);

    // The report path end to end.
    let Ok(report) = Report::from_bytes(data) else {
        return;
    };
    let m = reference();
    for log_only in [false, true] {
        let out = verify(
            &report,
            m,
            &Options {
                nonce: NONCE,
                pinned_ak: Some(AK),
                log_only,
            },
        );
        let _ = out.to_string();
        match &out.verdict {
            Verdict::Attested(_) => {
                // Only the pinned AK over our nonce attests.
                assert!(!log_only);
                assert_eq!(report.ak_public, AK);
                assert_eq!(report.nonce, NONCE);
            }
            Verdict::LogMatches(_) => assert!(log_only),
            Verdict::Failed(f) => {
                // The reason plus at most the capped list and the count
                // line (plus the claimed-image hint).
                assert!(f.details.len() <= MAX_LISTED_DIVERGENCES + 2, "{out}");
            }
        }
    }
});
