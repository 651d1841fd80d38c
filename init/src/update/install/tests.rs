//! The installer against regular files standing in for the target slot and
//! the boot-state partition, with bundles built here from random data, a
//! real verity tree and real Ed25519 signatures (formats' bundle writer).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
use super::*;
use crate::update::bootctl::initramfs_select::InitramfsSelect;
use crate::update::bootctl::tests::temp_store;
use azl_formats::bootstate::{BootState, SlotState};
use azl_formats::manifest::{Manifest, PartitionKind, Sig, SignedManifest, Verity};
use azl_formats::verity::{salted_digest, superblock};
use ring::signature::{Ed25519KeyPair, KeyPair};

const BS: usize = 4096;
const BLOCKS: usize = 300; // two tree levels
const SLOT_SIZE: u64 = 2 << 20;
const SLOT_OFFSET: u64 = 40 << 20;
const BOARD: &str = "qemu-virt";

fn key(seed: u8) -> Ed25519KeyPair {
    Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap()
}

fn sign(k: &Ed25519KeyPair, msg: &[u8]) -> Sig {
    let mut ed25519 = [0u8; 64];
    ed25519.copy_from_slice(k.sign(msg).as_ref());
    Sig {
        key_id: azl_formats::manifest::key_id(k.public_key().as_ref()),
        ed25519,
    }
}

/// Pseudo-random bytes (xorshift), different per seed.
fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A verity hash area built from the layout rules (veritysetup format).
fn tree(data: &[u8], salt: &[u8]) -> ([u8; 32], Vec<u8>) {
    let mut below = data.to_vec();
    let mut levels: Vec<Vec<u8>> = Vec::new();
    let root = loop {
        let mut lvl = Vec::new();
        for b in below.chunks(BS) {
            lvl.extend_from_slice(&salted_digest(salt, b));
        }
        lvl.resize(lvl.len().next_multiple_of(BS), 0);
        levels.push(lvl.clone());
        if lvl.len() == BS {
            break salted_digest(salt, &lvl);
        }
        below = lvl;
    };
    let blocks = (data.len() / BS) as u64;
    let mut area = superblock(&[5; 16], salt, BS as u32, BS as u32, blocks)
        .unwrap()
        .to_vec();
    area.resize(BS, 0);
    for l in levels.iter().rev() {
        area.extend_from_slice(l);
    }
    (root, area)
}

/// The parts of a bundle, each changeable before [`Parts::bytes`].
struct Parts {
    manifest: Manifest,
    data: Vec<u8>,
    area: Vec<u8>,
    manifest_key: Ed25519KeyPair,
    header_key: Ed25519KeyPair,
    min_from: Option<u32>,
    /// Change the header after it is built from the manifest, before signing.
    edit_header: fn(&mut Header),
}

impl Parts {
    fn new(slot: Slot, security_version: u32, seed: u64) -> Parts {
        let data = random(BLOCKS * BS, seed);
        let salt = random(32, seed + 1);
        let (root_hash, area) = tree(&data, &salt);
        let mut m = azl_formats::manifest::example();
        m.board = BOARD.into();
        m.security_version = security_version;
        m.image_version = format!("2.{seed}");
        m.rootfs.partition = azl_formats::name(slot.partition()).unwrap();
        m.rootfs.data_size = data.len() as u64;
        m.rootfs.verity = Verity {
            root_hash,
            salt,
            uuid: [5; 16],
            data_block_size: BS as u32,
            hash_block_size: BS as u32,
            data_blocks: BLOCKS as u64,
            hash_offset: data.len() as u64,
            hash_size: area.len() as u64,
        };
        let mut p = m.partitions[0].clone();
        p.name = azl_formats::name(slot.partition()).unwrap();
        p.kind = PartitionKind::Root;
        p.offset = SLOT_OFFSET;
        p.size = SLOT_SIZE;
        m.partitions = vec![p];
        Parts {
            manifest: m,
            data,
            area,
            manifest_key: key(1),
            header_key: key(1),
            min_from: None,
            edit_header: |_| {},
        }
    }

    fn section(&self) -> Vec<u8> {
        let inner = self.manifest.to_bytes().unwrap();
        SignedManifest {
            signature: Some(sign(&self.manifest_key, &inner)),
            manifest: inner,
        }
        .to_bytes()
        .unwrap()
    }

    fn bytes(&self) -> Vec<u8> {
        let section = self.section();
        let mut h = Header::for_root(
            &section,
            self.min_from,
            (self.area.len() as u64, azl_formats::sha256(&self.area)),
            (self.data.len() as u64, azl_formats::sha256(&self.data)),
        );
        (self.edit_header)(&mut h);
        let hb = h.to_bytes().unwrap();
        let sh = SignedHeader {
            signature: sign(&self.header_key, &hb),
            header: hb,
        };
        let mut out = azl_formats::bundle::encode_head(&section, &sh).unwrap();
        out.extend_from_slice(&self.area);
        out.extend_from_slice(&self.data);
        out
    }
}

struct Device {
    _dir: tempfile::TempDir,
    ctl: InitramfsSelect,
    target: Target,
    before: BootState,
}

const OLD: u8 = 0xee;

/// Slot A committed at security version 3; slot B's file full of old bytes.
fn device() -> Device {
    device_at(SLOT_OFFSET, SLOT_SIZE)
}

/// [`device`] with slot B at `offset`, `size` bytes.
fn device_at(offset: u64, size: u64) -> Device {
    let dir = tempfile::tempdir().unwrap();
    let mut ctl = InitramfsSelect::open(&temp_store(dir.path())).unwrap();
    let before = BootState::factory(3, "1.0", [0xa; 32]);
    ctl.write(&before).unwrap();
    let dev = dir.path().join("root-b");
    std::fs::write(&dev, vec![OLD; size as usize]).unwrap();
    let target = Target {
        slot: Slot::B,
        dev: dev.to_str().unwrap().to_string(),
        offset,
        size,
    };
    Device {
        _dir: dir,
        ctl,
        target,
        before,
    }
}

fn run(d: &mut Device, bundle: &[u8]) -> Result<Summary, InstallError> {
    run_with(d, bundle, Tail::Exact)
}

fn run_with(d: &mut Device, bundle: &[u8], tail: Tail) -> Result<Summary, InstallError> {
    let pk = key(1).public_key().as_ref().to_vec();
    let trust = Trust {
        key: &pk,
        board: BOARD,
    };
    let mut input = bundle;
    install(
        &mut input,
        tail,
        &d.target.clone(),
        Slot::A,
        &mut d.ctl,
        &trust,
        &mut |_| {},
    )
}

fn slot_bytes(d: &Device) -> Vec<u8> {
    std::fs::read(&d.target.dev).unwrap()
}

/// Refused before anything was written: state and target as they were.
fn assert_untouched(d: &mut Device) {
    assert_eq!(bootctl::state(&mut d.ctl).unwrap(), d.before);
    assert!(
        slot_bytes(d).iter().all(|&b| b == OLD),
        "target was written"
    );
}

/// Refused after the target was marked: it is Writing with no manifest,
/// and the committed slot's record is unchanged.
fn assert_unbootable(d: &mut Device) {
    let s = bootctl::state(&mut d.ctl).unwrap();
    assert_eq!(s.slot(Slot::B).state, SlotState::Writing);
    assert_eq!(s.slot(Slot::A), d.before.slot(Slot::A));
    assert_eq!((s.active, s.trial), (Slot::A, None));
    let bytes = slot_bytes(d);
    let region = &bytes[(SLOT_SIZE - MANIFEST_REGION) as usize..];
    assert!(region.iter().all(|&b| b == 0), "manifest region not zeroed");
    assert_eq!(s.choose(0).unwrap().slot, Slot::A);
}

fn refused(parts: &Parts) -> (Device, InstallError) {
    let mut d = device();
    let e = run(&mut d, &parts.bytes()).unwrap_err();
    (d, e)
}

#[test]
fn installs_verifies_and_arms_one_trial() {
    let mut d = device();
    let p = Parts::new(Slot::B, 4, 7);
    let s = run(&mut d, &p.bytes()).unwrap();
    assert_eq!((s.slot, s.security_version), (Slot::B, 4));
    let bytes = slot_bytes(&d);
    assert_eq!(&bytes[..p.data.len()], p.data.as_slice());
    assert_eq!(&bytes[p.data.len()..][..p.area.len()], p.area.as_slice());
    let region = &bytes[(SLOT_SIZE - MANIFEST_REGION) as usize..];
    let section = p.section();
    assert_eq!(azl_formats::manifest::region_body(region).unwrap(), section);
    let st = bootctl::state(&mut d.ctl).unwrap();
    assert_eq!(st.trial, Some(Slot::B));
    let b = st.slot(Slot::B);
    assert_eq!(b.state, SlotState::Installed);
    assert_eq!(b.manifest_sha256, azl_formats::sha256(&section));
    assert_eq!(s.manifest_sha256, b.manifest_sha256);
    assert_eq!(st.slot(Slot::A), d.before.slot(Slot::A));
    assert_eq!(st.floor, 3, "the floor rises only at commit");
}

#[test]
fn refuses_another_board() {
    let mut p = Parts::new(Slot::B, 4, 1);
    p.manifest.board = "rpi4".into();
    let (mut d, e) = refused(&p);
    assert!(
        matches!(e, InstallError::Manifest(ManifestError::WrongBoard { .. })),
        "{e}"
    );
    assert!(e.to_string().contains("rpi4"), "{e}");
    assert_untouched(&mut d);
}

#[test]
fn refuses_a_version_below_the_floor() {
    let (mut d, e) = refused(&Parts::new(Slot::B, 2, 1));
    assert!(
        matches!(
            e,
            InstallError::BelowFloor {
                security_version: 2,
                floor: 3
            }
        ),
        "{e}"
    );
    assert_untouched(&mut d);
}

#[test]
fn refuses_a_bad_manifest_signature() {
    let p = Parts::new(Slot::B, 4, 1);
    let mut b = p.bytes();
    // Flip a byte inside the signed manifest (the board name).
    let at = b
        .windows(BOARD.len())
        .position(|w| w == BOARD.as_bytes())
        .unwrap();
    b[at] ^= 1;
    let mut d = device();
    let e = run(&mut d, &b).unwrap_err();
    assert!(
        matches!(
            e,
            InstallError::Manifest(ManifestError::BadSignature { .. })
        ),
        "{e}"
    );
    assert_untouched(&mut d);
}

#[test]
fn refuses_a_manifest_signed_by_another_key() {
    let mut p = Parts::new(Slot::B, 4, 1);
    p.manifest_key = key(2);
    let (mut d, e) = refused(&p);
    assert!(
        matches!(e, InstallError::Manifest(ManifestError::KeyMismatch { .. })),
        "{e}"
    );
    assert_untouched(&mut d);
}

#[test]
fn refuses_a_header_signed_by_another_key_or_forged() {
    let mut p = Parts::new(Slot::B, 4, 1);
    p.header_key = key(3);
    let (mut d, e) = refused(&p);
    assert!(matches!(e, InstallError::HeaderKey { .. }), "{e}");
    assert_untouched(&mut d);
    // Right key id, wrong signature bytes.
    let p = Parts::new(Slot::B, 4, 1);
    let mut b = p.bytes();
    let pre = Preamble::decode(&b).unwrap();
    let end = PREAMBLE_LEN + (pre.manifest_len + pre.header_len) as usize;
    b[end - 1] ^= 1; // last byte of the signature
    let mut d = device();
    let e = run(&mut d, &b).unwrap_err();
    assert!(matches!(e, InstallError::HeaderSignature), "{e}");
    assert_untouched(&mut d);
}

#[test]
fn refuses_a_header_for_another_manifest() {
    let mut p = Parts::new(Slot::B, 4, 1);
    p.edit_header = |h| h.manifest_sha256[0] ^= 1;
    let (mut d, e) = refused(&p);
    assert!(
        matches!(e, InstallError::Bundle(BundleError::ManifestMismatch)),
        "{e}"
    );
    assert_untouched(&mut d);
}

#[test]
fn refuses_an_image_larger_than_the_slot() {
    let mut p = Parts::new(Slot::B, 4, 1);
    // A signed manifest whose tree sits past the slot's end.
    p.manifest.rootfs.verity.hash_offset = SLOT_SIZE;
    let (mut d, e) = refused(&p);
    assert!(
        matches!(e, InstallError::Bundle(BundleError::DoesNotFit { .. })),
        "{e}"
    );
    assert_untouched(&mut d);
}

#[test]
fn refuses_absurd_sizes_before_allocating() {
    let mut p = Parts::new(Slot::B, 4, 1);
    p.edit_header = |h| h.payloads[1].size = 10 << 40; // 10 TiB of data
    let (mut d, e) = refused(&p);
    assert!(
        matches!(e, InstallError::Bundle(BundleError::PayloadSize { declared, .. }) if declared == 10 << 40),
        "{e}"
    );
    assert_untouched(&mut d);
    // A signed manifest declaring 10 TiB: larger than the slot.
    let mut p = Parts::new(Slot::B, 4, 1);
    p.manifest.rootfs.verity.data_blocks = (10u64 << 40) / BS as u64;
    p.manifest.rootfs.data_size = 10 << 40;
    p.edit_header = |h| h.payloads[1].size = 10 << 40;
    let (mut d, e) = refused(&p);
    assert!(
        matches!(
            e,
            InstallError::Bundle(BundleError::Layout(_) | BundleError::DoesNotFit { .. })
        ),
        "{e}"
    );
    assert_untouched(&mut d);
}

#[test]
fn refuses_payload_size_or_digest_mismatch() {
    let mut p = Parts::new(Slot::B, 4, 1);
    p.edit_header = |h| h.payloads[0].size += 4096;
    let (mut d, e) = refused(&p);
    assert!(
        matches!(
            e,
            InstallError::Bundle(BundleError::PayloadSize {
                kind: PayloadKind::HashTree,
                ..
            })
        ),
        "{e}"
    );
    assert_untouched(&mut d);
    let mut p = Parts::new(Slot::B, 4, 1);
    p.edit_header = |h| h.payloads[0].sha256[0] ^= 1;
    let (mut d, e) = refused(&p);
    assert!(
        matches!(e, InstallError::PayloadDigest(PayloadKind::HashTree)),
        "{e}"
    );
    assert_untouched(&mut d);
    let mut p = Parts::new(Slot::B, 4, 1);
    p.edit_header = |h| h.payloads[1].sha256[0] ^= 1;
    let (mut d, e) = refused(&p);
    assert!(
        matches!(e, InstallError::PayloadDigest(PayloadKind::RootData)),
        "{e}"
    );
    assert_unbootable(&mut d);
}

#[test]
fn refuses_a_tampered_tree() {
    let mut p = Parts::new(Slot::B, 4, 1);
    p.area[BS + 5] ^= 1; // top level; the header digest is of the tampered area
    let (mut d, e) = refused(&p);
    assert!(matches!(e, InstallError::Tree(_)), "{e}");
    assert_untouched(&mut d);
}

#[test]
fn refuses_a_tampered_data_block_and_never_writes_it() {
    let mut p = Parts::new(Slot::B, 4, 1);
    let bad = 200;
    p.data[bad * BS + 9] ^= 1;
    let (mut d, e) = refused(&p);
    assert!(
        matches!(e, InstallError::DataBlock { block, offset } if block == bad as u64 && offset == (bad * BS) as u64),
        "{e}"
    );
    assert_unbootable(&mut d);
    let bytes = slot_bytes(&d);
    assert_ne!(&bytes[bad * BS..][..BS], &p.data[bad * BS..][..BS]);
    assert!(bytes[bad * BS..][..BS].iter().all(|&b| b == OLD));
}

#[test]
fn refuses_truncated_input_at_every_section() {
    let p = Parts::new(Slot::B, 4, 1);
    let b = p.bytes();
    let pre = Preamble::decode(&b).unwrap();
    let m_end = PREAMBLE_LEN + pre.manifest_len as usize;
    let h_end = m_end + pre.header_len as usize;
    let t_end = h_end + p.area.len();
    for (cut, section, written) in [
        (0, "preamble", false),
        (9, "preamble", false),
        (PREAMBLE_LEN + 3, "manifest", false),
        (m_end + 10, "header", false),
        (h_end + 100, "hash-tree", false),
        (t_end + 5 * BS + 1, "root-data", true),
        (b.len() - 1, "root-data", true),
    ] {
        let mut d = device();
        let e = run(&mut d, &b[..cut]).unwrap_err();
        assert!(
            matches!(&e, InstallError::Bundle(BundleError::Truncated { section: s, .. }) if *s == section),
            "cut at {cut}: {e}"
        );
        if written {
            assert_unbootable(&mut d);
        } else {
            assert_untouched(&mut d);
        }
    }
}

#[test]
fn refuses_garbage_and_trailing_bytes() {
    let mut d = device();
    let e = run(&mut d, &random(100_000, 9)).unwrap_err();
    assert!(
        matches!(e, InstallError::Bundle(BundleError::NotABundle(_))),
        "{e}"
    );
    assert_untouched(&mut d);
    let mut b = Parts::new(Slot::B, 4, 1).bytes();
    b.push(0);
    let mut d = device();
    let e = run(&mut d, &b).unwrap_err();
    assert!(
        matches!(
            e,
            InstallError::Trailing {
                block_device: false
            }
        ),
        "{e}"
    );
    assert_unbootable(&mut d);
}

/// A bundle written raw to a block device, zero-padded to `len`
/// and, at `dirty` bytes after the bundle, one non-zero byte.
fn on_device(len: usize, dirty: Option<usize>) -> Vec<u8> {
    let mut b = Parts::new(Slot::B, 4, 1).bytes();
    let end = b.len();
    b.resize(len.max(end), 0);
    if let Some(at) = dirty {
        b[end + at] = 0x5a;
    }
    b
}

const PADDED: Tail = Tail::ZeroPadded {
    limit: PADDING_LIMIT,
};

#[test]
fn block_device_input_may_be_zero_padded_only() {
    // Padded to the next 512-byte sector and to a whole MiB: accepted.
    for len in [
        0,
        Parts::new(Slot::B, 4, 1)
            .bytes()
            .len()
            .next_multiple_of(512),
        3 << 20,
    ] {
        let mut d = device();
        run_with(&mut d, &on_device(len, None), PADDED).unwrap();
        let st = bootctl::state(&mut d.ctl).unwrap();
        assert_eq!(st.trial, Some(Slot::B), "padded to {len}");
    }
    // A non-zero byte in the padding, at its start or deep inside: refused.
    for at in [0, 511, 700_000] {
        let mut d = device();
        let e = run_with(&mut d, &on_device(2 << 20, Some(at)), PADDED).unwrap_err();
        assert!(
            matches!(e, InstallError::Trailing { block_device: true }),
            "dirty at {at}: {e}"
        );
        assert!(e.to_string().contains("after its last payload"), "{e}");
        assert_unbootable(&mut d);
    }
    // Past the limit the device is not read: a byte there is not seen.
    let mut d = device();
    let at = PADDING_LIMIT as usize + 10;
    run_with(&mut d, &on_device(3 << 20, Some(at)), PADDED).unwrap();
    // The same padded bytes from a file or stdin are refused: strict.
    let mut d = device();
    let e = run_with(&mut d, &on_device(3 << 20, None), Tail::Exact).unwrap_err();
    assert!(
        matches!(
            e,
            InstallError::Trailing {
                block_device: false
            }
        ),
        "{e}"
    );
}

#[test]
fn refuses_a_bundle_for_the_running_slot() {
    let (mut d, e) = refused(&Parts::new(Slot::A, 4, 1));
    assert!(
        matches!(e, InstallError::ForRunningSlot { slot: Slot::A }),
        "{e}"
    );
    assert!(e.to_string().contains("must target root-b"), "{e}");
    assert_untouched(&mut d);
}

#[test]
fn refuses_a_bundle_for_a_newer_installed_system() {
    let mut p = Parts::new(Slot::B, 4, 1);
    p.min_from = Some(4);
    let (mut d, e) = refused(&p);
    assert!(
        matches!(e, InstallError::TooOldToUpdateFrom { running: 3, min: 4 }),
        "{e}"
    );
    assert_untouched(&mut d);
}

#[test]
fn refuses_kernel_payloads_on_initramfs_select() {
    let mut p = Parts::new(Slot::B, 4, 1);
    p.edit_header = |h| {
        let m = azl_formats::manifest::example();
        h.payloads.push(azl_formats::bundle::Payload {
            kind: PayloadKind::Kernel,
            size: m.kernel.size,
            sha256: m.kernel.sha256,
        })
    };
    let (mut d, e) = refused(&p);
    assert!(
        matches!(e, InstallError::BootPayload(PayloadKind::Kernel)),
        "{e}"
    );
    assert!(e.to_string().contains("does not update the kernel"), "{e}");
    assert_untouched(&mut d);
}

#[test]
fn refuses_while_a_trial_runs_and_for_a_moved_slot() {
    // Running B as a trial (A committed): installing into A is refused.
    let mut d = device();
    run(&mut d, &Parts::new(Slot::B, 4, 1).bytes()).unwrap();
    let trying = bootctl::state(&mut d.ctl)
        .unwrap()
        .choose(0)
        .unwrap()
        .write
        .unwrap();
    d.ctl.write(&trying).unwrap();
    let pk = key(1).public_key().as_ref().to_vec();
    let trust = Trust {
        key: &pk,
        board: BOARD,
    };
    let mut t = d.target.clone();
    t.slot = Slot::A;
    let b = Parts::new(Slot::A, 5, 2).bytes();
    let e = install(
        &mut b.as_slice(),
        Tail::Exact,
        &t,
        Slot::B,
        &mut d.ctl,
        &trust,
        &mut |_| {},
    )
    .unwrap_err();
    assert!(e.to_string().contains("committed slot"), "{e}");
    // A manifest whose partition table puts the slot elsewhere.
    let mut p = Parts::new(Slot::B, 4, 1);
    p.manifest.partitions[0].offset += 4096;
    let (mut d, e) = refused(&p);
    assert!(
        matches!(e, InstallError::Manifest(ManifestError::SlotMoved { .. })),
        "{e}"
    );
    assert_untouched(&mut d);
}

/// What `imagegen bundle` writes, the installer installs: a committed
/// bundle (`fixtures/make.sh` regenerates it) for root-b of board
/// qemu-virt, security version 5, with its public key. The target's GPT
/// position is the one its signed partition table names.
#[test]
fn installs_a_bundle_imagegen_wrote() {
    let bundle = include_bytes!("fixtures/root-b.azb");
    let key = include_bytes!("fixtures/root-b.azb.pub");
    let pre = Preamble::decode(bundle).unwrap();
    let section = &bundle[PREAMBLE_LEN..PREAMBLE_LEN + pre.manifest_len as usize];
    let m = SignedManifest::from_bytes(section)
        .unwrap()
        .manifest()
        .unwrap();
    let p = m.partitions.iter().find(|p| p.name == "root-b").unwrap();
    let mut d = device_at(p.offset, p.size);
    let trust = Trust {
        key: key.as_slice(),
        board: BOARD,
    };
    let mut input = bundle.as_slice();
    let s = install(
        &mut input,
        Tail::Exact,
        &d.target.clone(),
        Slot::A,
        &mut d.ctl,
        &trust,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!((s.slot, s.security_version), (Slot::B, 5));
    assert_eq!(s.image, "fixture 2.0");
    assert_eq!(s.manifest_sha256, azl_formats::sha256(section));
    let v = &m.rootfs.verity;
    let (data, tree) = (s.data_bytes as usize, s.tree_bytes as usize);
    assert!(data >= 3 * BS && tree == v.hash_size as usize, "{s:?}");
    // The slot now holds the payloads where the manifest says, and the
    // manifest region stage 1 reads.
    let bytes = std::fs::read(&d.target.dev).unwrap();
    let payloads = &bundle[bundle.len() - tree - data..];
    assert_eq!(&bytes[v.hash_offset as usize..][..tree], &payloads[..tree]);
    assert_eq!(&bytes[..data], &payloads[tree..]);
    let region = &bytes[(p.size - MANIFEST_REGION) as usize..];
    assert_eq!(azl_formats::manifest::region_body(region).unwrap(), section);
    let st = bootctl::state(&mut d.ctl).unwrap();
    assert_eq!(st.trial, Some(Slot::B));
    assert_eq!(st.slot(Slot::B).state, SlotState::Installed);

    // The same bytes under another device key, or one flipped data byte: refused.
    let mut d = device_at(p.offset, p.size);
    let other = key_pub(2);
    let trust = Trust {
        key: &other,
        board: BOARD,
    };
    let mut input = bundle.as_slice();
    assert!(matches!(
        install(
            &mut input,
            Tail::Exact,
            &d.target.clone(),
            Slot::A,
            &mut d.ctl,
            &trust,
            &mut |_| {}
        ),
        Err(InstallError::Manifest(_))
    ));
    let mut bad = bundle.to_vec();
    let at = bad.len() - 100;
    bad[at] ^= 1;
    let mut d = device_at(p.offset, p.size);
    let trust = Trust {
        key: key.as_slice(),
        board: BOARD,
    };
    let mut input = bad.as_slice();
    assert!(matches!(
        install(
            &mut input,
            Tail::Exact,
            &d.target.clone(),
            Slot::A,
            &mut d.ctl,
            &trust,
            &mut |_| {}
        ),
        Err(InstallError::DataBlock { .. })
    ));
}

fn key_pub(seed: u8) -> Vec<u8> {
    key(seed).public_key().as_ref().to_vec()
}
