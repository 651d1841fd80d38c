//! The approval file (`update approve`): never panics, never allocates
//! beyond the input's size; an approval signed by the fuzz key that
//! passes the device's check names exactly what was expected.
#![no_main]
use azl_formats::approval::{self, Answer, Expect};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key: [u8; 32] = match azl_fuzz::public_key().try_into() {
        Ok(k) => k,
        Err(_) => return,
    };
    let answered = [Answer {
        nonce: vec![0xa1; 16],
        ak_sha256: [0xa4; 32],
    }];
    let manifest = [0x1a; 32];
    let expect = Expect {
        verifier_key: &key,
        manifest_sha256: &manifest,
        answered: &answered,
    };
    if let Ok(body) = approval::check(data, &expect) {
        assert_eq!(body.manifest_sha256, manifest);
        assert_eq!((body.nonce.as_slice(), body.ak_sha256), (&[0xa1; 16][..], [0xa4; 32]));
    }
    // The answered-quotes record parser on the same bytes.
    for a in approval::parse_answers(data) {
        assert!((azl_formats::nonce::MIN_LEN..=azl_formats::nonce::MAX_LEN).contains(&a.nonce.len()));
    }
});
