//! The host TPM parser (`azl_attest::tpm`) on bytes a real swtpm produced:
//! an AK made from the formats contract's template and a TPM2_Quote by it.
//! The parsed fields must equal `azl_formats::ak` (the values init creates
//! its AK with) and what tpm2-tools reports for the same bytes. swtpm and
//! tpm2-tools come from scripts/setup.sh; without them this test fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "integration test: a failed step is a failed test"
)]
use azl_attest::swtpm::Swtpm;
use azl_attest::tpm::{EccPublic, EcdsaSignature, PcrSelection, Quote};
use azl_formats::ak;
use azl_formats::eventlog;
use azl_formats::manifest::Hex;
use std::process::Command;

#[test]
fn swtpm_ak_and_quote_parse_to_the_formats_template() {
    assert!(
        Swtpm::available(),
        "swtpm or tpm2-tools not installed (scripts/setup.sh installs them)"
    );
    let tpm = Swtpm::start().unwrap();
    let ak_public = tpm.create_ak("ak").unwrap();
    for (pcr, byte) in [(8u8, 1u8), (9, 2), (11, 3)] {
        tpm.extend(pcr, &[byte; 32]).unwrap();
    }
    let nonce: Vec<u8> = (0..16u8).map(|i| i ^ 0xa5).collect();
    let (attest, sig) = tpm.quote("ak", "sha256:8,9,11", &nonce, "q").unwrap();
    let pcrs = tpm.read_pcrs(&[8, 9, 11]).unwrap();

    // The AK: every template field as formats::ak has it.
    let ak = EccPublic::parse_tpm2b(&ak_public).unwrap();
    assert_eq!(ak.attributes, ak::AK_ATTRIBUTES);
    assert_eq!(ak.name_alg, ak::AK_NAME_ALG);
    assert_eq!(ak.curve, ak::AK_CURVE);
    assert_eq!(ak.scheme, ak::AK_SCHEME);
    assert_eq!(
        ak.params(),
        ak::AkParams {
            object_type: ak::AK_TYPE,
            name_alg: ak::AK_NAME_ALG,
            attributes: ak::AK_ATTRIBUTES,
            scheme: ak::AK_SCHEME,
            curve: ak::AK_CURVE,
        }
    );
    assert_eq!(ak::check(&ak.params()), Ok(()));
    // tpm2_readpublic reads the same point and attributes from the TPM.
    let text = String::from_utf8(tpm.run("tpm2_readpublic", &["-c", "ak.ctx"]).unwrap()).unwrap();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("no {name} in tpm2_readpublic output:\n{text}"))
    };
    assert_eq!(field("x:"), Hex(&ak.x).to_string(), "{text}");
    assert_eq!(field("y:"), Hex(&ak.y).to_string(), "{text}");
    let attrs = text
        .lines()
        .skip_while(|l| l.trim() != "attributes:")
        .find_map(|l| l.trim().strip_prefix("raw:"))
        .map(str::trim);
    assert_eq!(
        attrs,
        Some(format!("0x{:x}", ak::AK_ATTRIBUTES).as_str()),
        "{text}"
    );

    // The quote: TPM-generated, our nonce, sha256:8,9,11, the PCR digest.
    let mut tpm2b = u16::try_from(attest.len()).unwrap().to_be_bytes().to_vec();
    tpm2b.extend_from_slice(&attest);
    let q = Quote::parse_tpm2b(&tpm2b).unwrap();
    assert_eq!(q.attest, &attest[..]);
    assert_eq!(q.extra_data, &nonce[..]);
    assert_eq!(
        q.pcr_select,
        [PcrSelection {
            hash: ak::TPM_ALG_SHA256,
            pcrs: vec![8, 9, 11]
        }]
    );
    let concat: Vec<u8> = pcrs.iter().flat_map(|(_, v)| *v).collect();
    assert_eq!(q.pcr_digest, eventlog::sha256(&concat));
    // tpm2_print reads the same TPMS_ATTEST fields.
    let printed = Command::new("tpm2_print")
        .args(["-t", "TPMS_ATTEST"])
        .arg(tpm.path("q.msg"))
        .output()
        .expect("running tpm2_print (tpm2-tools)");
    assert!(printed.status.success(), "{printed:?}");
    let printed = String::from_utf8(printed.stdout).unwrap();
    for want in [
        format!("clock: {}", q.clock),
        format!("resetCount: {}", q.reset_count),
        format!("restartCount: {}", q.restart_count),
        format!("extraData: {}", Hex(q.extra_data)),
        format!("pcrDigest: {}", Hex(q.pcr_digest)),
        // tpm2_print (5.4) dumps this UINT64 as its little-endian bytes.
        format!(
            "firmwareVersion: {}",
            Hex(&q.firmware_version.to_le_bytes())
        ),
        format!("qualifiedSigner: {}", Hex(q.qualified_signer)),
        "hash: 11 (sha256)\n          sizeofSelect: 3\n          pcrSelect: 000b00".to_string(),
    ] {
        assert!(printed.contains(&want), "{want:?} not in:\n{printed}");
    }

    // The signature: ECDSA-SHA256, valid over the TPMS_ATTEST by the AK.
    let s = EcdsaSignature::parse(&sig).unwrap();
    assert_eq!((ak::TPM_ALG_ECDSA, s.hash), ak::AK_SCHEME);
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_FIXED,
        ak.sec1().as_slice(),
    )
    .verify(&attest, &s.fixed)
    .unwrap();
}
