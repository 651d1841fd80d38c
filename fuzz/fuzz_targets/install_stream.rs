//! The installer's streaming path (`update install`), end to end on files:
//! preamble, manifest signature, header signature, layout, hash tree, every
//! data block, the read-back and the boot-state steps. Seeded with the
//! real `imagegen bundle` fixture, so mutations of the payloads, sizes and
//! tail get past the signatures and reach the block-by-block checks.
//!
//! Oracle besides "no panic, no unbounded allocation": a refused bundle
//! never leaves the target with a trial armed or the committed slot
//! changed, and an accepted one is exactly the fixture's signed manifest.
#![no_main]
use azl_formats::bootstate::{BootState, Slot, SlotState};
use azl_formats::bundle::{Preamble, PREAMBLE_LEN};
use azl_formats::envelope::Enveloped;
use azl_formats::manifest::SignedManifest;
use azl_init::update::bootctl::{self, initramfs_select::InitramfsSelect, BootControl};
use azl_init::update::install::{install, Tail, Target, Trust};
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

const BUNDLE: &[u8] = include_bytes!("../../init/src/update/install/fixtures/root-b.azb");
const KEY: &[u8] = include_bytes!("../../init/src/update/install/fixtures/root-b.azb.pub");

struct Setup {
    dir: PathBuf,
    target: Target,
    manifest_sha256: [u8; 32],
}

fn setup() -> &'static Setup {
    static S: OnceLock<Setup> = OnceLock::new();
    S.get_or_init(|| {
        let pre = Preamble::decode(BUNDLE).expect("fixture preamble");
        let section = &BUNDLE[PREAMBLE_LEN..PREAMBLE_LEN + pre.manifest_len as usize];
        let m = SignedManifest::from_bytes(section)
            .expect("fixture manifest")
            .manifest()
            .expect("fixture manifest body");
        let p = m
            .partitions
            .iter()
            .find(|p| p.name == "root-b")
            .expect("fixture has root-b");
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("azl-fuzz-install-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("fuzz scratch dir");
        let dev = dir.join("root-b");
        std::fs::File::create(&dev)
            .and_then(|f| f.set_len(p.size))
            .expect("target file");
        Setup {
            target: Target {
                slot: Slot::B,
                dev: dev.to_str().expect("utf-8 path").to_string(),
                offset: p.offset,
                size: p.size,
            },
            dir,
            manifest_sha256: azl_formats::sha256(section),
        }
    })
}

fn store(dir: &std::path::Path, before: &BootState) -> InitramfsSelect {
    let p = dir.join("bootstate");
    std::fs::File::create(&p)
        .and_then(|f| f.set_len(azl_formats::bootstate::MIN_PARTITION_SIZE))
        .expect("bootstate file");
    let mut ctl = InitramfsSelect::open(p.to_str().expect("utf-8 path")).expect("open store");
    ctl.write(before).expect("factory state");
    ctl
}

fuzz_target!(|data: &[u8]| {
    let s = setup();
    let before = BootState::factory(3, "1.0", [0xa; 32]);
    let mut ctl = store(&s.dir, &before);
    let trust = Trust {
        key: KEY,
        board: "qemu-virt",
    };
    let mut input = data;
    let r = install(
        &mut input,
        Tail::Exact,
        &s.target,
        Slot::A,
        &mut ctl,
        &trust,
        &mut |_| {},
    );
    let after = bootctl::state(&mut ctl).expect("state readable after install");
    assert_eq!(
        after.slot(Slot::A),
        before.slot(Slot::A),
        "committed slot changed"
    );
    assert_eq!(after.active, Slot::A);
    match r {
        Ok(sum) => {
            assert_eq!(
                sum.manifest_sha256, s.manifest_sha256,
                "accepted another manifest"
            );
            assert_eq!(after.slot(Slot::B).state, SlotState::Installed);
        }
        Err(_) => {
            assert!(
                matches!(
                    after.slot(Slot::B).state,
                    SlotState::Empty | SlotState::Writing
                ),
                "refused bundle left root-b {:?}",
                after.slot(Slot::B).state
            );
            assert_eq!(after.trial, None, "refused bundle armed a trial");
        }
    }
});
