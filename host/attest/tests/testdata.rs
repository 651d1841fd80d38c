//! `host/attest/testdata/swtpm/`: a real attestation report — an AK from the
//! formats template and a TPM2_Quote, both made by swtpm — with the signed
//! manifest whose reference it matches. The fuzz target `host_attest`
//! embeds these files (fixed AK, nonce and manifest) and they seed its
//! corpus. `committed_swtpm_report_attests` keeps them valid;
//! `regenerate_swtpm_testdata` (ignored) rewrites them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "integration test: a failed step is a failed test"
)]
use azl_attest::reference::{expected_log, predict};
use azl_attest::swtpm::Swtpm;
use azl_attest::tpm::EccPublic;
use azl_attest::verify::{verify, Options};
use azl_formats::ak;
use azl_formats::attest::{Report, Tier};
use azl_formats::envelope::Enveloped;
use azl_formats::eventlog;
use azl_formats::manifest::{key_id, Sig, SignedManifest};
use azl_formats::measure::QUOTED_PCRS;
use ring::signature::{Ed25519KeyPair, KeyPair};
use std::path::PathBuf;

/// The service table the manifest's reference was predicted with.
const SERVICE_TABLE: &[u8] = b"AZSV\x01\x00 fuzz seed service table";

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/swtpm")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn committed_swtpm_report_attests() {
    let sm = SignedManifest::from_bytes(&read("manifest.bin")).unwrap();
    // Signed with the fuzz crate's fixed test key (seed 0x5a × 32).
    let key = Ed25519KeyPair::from_seed_unchecked(&[0x5a; 32]).unwrap();
    let manifest = azl_formats::signature::verify(&sm, key.public_key().as_ref()).unwrap();
    let ak_public = read("ak.pub");
    let nonce = read("nonce.bin");
    let report = Report::from_bytes(&read("report.bin")).unwrap();
    assert_eq!(report.ak_public, ak_public);
    assert_eq!(report.quote, read("quote.bin"));
    assert_eq!(report.signature, read("sig.bin"));
    assert_eq!(
        ak::check(&EccPublic::parse_tpm2b(&ak_public).unwrap().params()),
        Ok(())
    );
    let out = verify(
        &report,
        &manifest,
        &Options {
            nonce: &nonce,
            pinned_ak: Some(&ak_public),
            log_only: false,
        },
    );
    assert!(out.attested(), "{out}");
}

#[test]
#[ignore = "rewrites host/attest/testdata/swtpm/ from a fresh swtpm (new AK): run by hand when the report format changes"]
fn regenerate_swtpm_testdata() {
    let key = Ed25519KeyPair::from_seed_unchecked(&[0x5a; 32]).unwrap();
    let mut m = azl_formats::manifest::example();
    m.service_table_sha256 = eventlog::sha256(SERVICE_TABLE);
    let id = m.identity_bytes().unwrap();
    m.reference = Some(predict(
        &id,
        &m.cmdline,
        &m.rootfs.verity.root_hash,
        SERVICE_TABLE,
    ));
    let bytes = m.to_bytes().unwrap();
    let mut ed25519 = [0u8; 64];
    ed25519.copy_from_slice(key.sign(&bytes).as_ref());
    let sm = SignedManifest {
        manifest: bytes,
        signature: Some(Sig {
            key_id: key_id(key.public_key().as_ref()),
            ed25519,
        }),
    };
    let log = expected_log(&id, &m.cmdline, &m.rootfs.verity.root_hash, SERVICE_TABLE);

    let tpm = Swtpm::start().unwrap();
    let ak_public = tpm.create_ak("ak").unwrap();
    for e in eventlog::parse(log.as_bytes()).unwrap() {
        tpm.extend(u8::try_from(e.pcr).unwrap(), &e.sha256).unwrap();
    }
    let pcrs = tpm.read_pcrs(&QUOTED_PCRS).unwrap();
    let nonce: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(29) ^ 0xc3).collect();
    let (attest, sig) = tpm.quote("ak", "sha256:8,9,11", &nonce, "q").unwrap();
    let mut quote = u16::try_from(attest.len()).unwrap().to_be_bytes().to_vec();
    quote.extend_from_slice(&attest);
    let report = Report {
        tier: Tier::Tpm,
        nonce: nonce.clone(),
        ak_public: ak_public.clone(),
        quote: quote.clone(),
        signature: sig.clone(),
        pcrs,
        event_log: log.to_bytes(),
        manifest: sm.to_bytes().unwrap(),
    };
    std::fs::create_dir_all(dir()).unwrap();
    for (name, b) in [
        ("manifest.bin", sm.to_bytes().unwrap()),
        ("ak.pub", ak_public),
        ("nonce.bin", nonce),
        ("quote.bin", quote),
        ("sig.bin", sig),
        ("report.bin", report.to_bytes().unwrap()),
    ] {
        std::fs::write(dir().join(name), b).unwrap();
    }
}
