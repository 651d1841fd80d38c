//! Bundles laid out from a real (small) built slot: offsets, header
//! fields, the header signature through the shared check, payload digests,
//! the device's layout rule, and refusals.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
use super::*;
use crate::diskimage::{self, Built, DiskImageError, Inputs};
use crate::rootfs::{Content, FileSet, Node, Origin};
use azl_disk::{Layout, PartSpec, TableKind, MIB};
use azl_formats::bundle::{PayloadKind, Preamble, SignedHeader, PREAMBLE_LEN};
use azl_formats::manifest::PartitionKind;
use azl_formats::signature;
use azl_imagepath::ImagePath;
use azl_sign::testing::test_key;

fn layout() -> Layout {
    let spec = |name: &str, kind, size| PartSpec {
        name: name.into(),
        kind,
        size,
    };
    Layout {
        table: TableKind::Gpt,
        partitions: vec![
            spec("boot", PartitionKind::Boot, 2 * MIB),
            spec("root-a", PartitionKind::Root, 2 * MIB),
            spec("root-b", PartitionKind::Root, 2 * MIB),
            spec("bootstate", PartitionKind::BootState, MIB),
            spec("data", PartitionKind::Data, 8 * MIB),
        ],
    }
}

fn files() -> FileSet {
    let mut set = FileSet::new();
    let gen = || Origin::Generated("test".into());
    set.insert(ImagePath::parse("/etc").unwrap(), Node::dir(0o755, gen()))
        .unwrap();
    // Incompressible-ish content so the squashfs spans many data blocks.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let noise: Vec<u8> = (0..300_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    set.insert(
        ImagePath::parse("/etc/noise").unwrap(),
        Node::file(Content::Bytes(noise), 0o644, gen()),
    )
    .unwrap();
    set
}

fn build(slot: Option<&str>, key: Option<&SigningKey>) -> Result<Built, DiskImageError> {
    diskimage::build(&Inputs {
        layout: &layout(),
        seed: b"bundle-test",
        epoch: 1_700_000_000,
        rootfs: &files(),
        kernel: b"kernel",
        initramfs: b"initramfs",
        cmdline: "console=ttyAMA0",
        board: "qemu-virt",
        image_name: "t",
        image_version: "2.0",
        security_version: 7,
        service_table: b"services",
        lock_sha256: None,
        sbom_sha256: [0x5b; 32],
        key,
        slot,
        uefi: false,
    })
}

#[test]
fn layout_header_signature_and_digests() {
    let key = test_key();
    let built = build(Some("root-b"), Some(&key)).unwrap();
    let slot = built.root_slot().unwrap();
    assert_eq!(built.manifest.rootfs.partition.as_str(), "root-b");
    let b = lay_out("root-b", slot, &key, Some(3)).unwrap();
    let m = &built.manifest;
    let v = &m.rootfs.verity;

    // Offsets: preamble, manifest section, header, tree, data.
    let bytes = [b.head.as_slice(), &b.tree, &b.data].concat();
    assert_eq!(bytes.len() as u64, b.size());
    let p = Preamble::decode(&bytes).unwrap();
    let m_end = PREAMBLE_LEN + p.manifest_len as usize;
    let h_end = m_end + p.header_len as usize;
    assert_eq!(h_end, b.head.len());
    let section = &bytes[PREAMBLE_LEN..m_end];
    // The manifest section is the slot's region body, byte for byte.
    assert_eq!(section, built.manifest_bytes().unwrap());
    let region = &slot[slot.len() - MANIFEST_REGION as usize..];
    assert_eq!(&region[4..4 + section.len()], section);
    let tree_at = h_end;
    let data_at = tree_at + v.hash_size as usize;
    assert_eq!(bytes.len(), data_at + m.rootfs.data_size as usize);
    assert_eq!(
        &bytes[tree_at..data_at],
        &slot[v.hash_offset as usize..(v.hash_offset + v.hash_size) as usize]
    );
    assert_eq!(&bytes[data_at..], &slot[..m.rootfs.data_size as usize]);
    assert!(m.rootfs.data_size >= 300_000, "{}", m.rootfs.data_size);

    // Header fields, and its signature through the device's check.
    let sh = SignedHeader::from_bytes(&bytes[m_end..h_end]).unwrap();
    assert_eq!(
        signature::check(&sh.header, &sh.signature, &key.public_key()),
        Ok(())
    );
    assert_eq!(sh.signature.key_id, key.key_id());
    assert_eq!(b.key_id, key.key_id());
    let h = Header::from_bytes(&sh.header).unwrap();
    assert_eq!(h, b.header);
    assert_eq!(h.manifest_sha256, sha256(section));
    assert_eq!(h.min_from_security_version, Some(3));
    let kinds: Vec<_> = h.payloads.iter().map(|p| p.kind).collect();
    assert_eq!(kinds, [PayloadKind::HashTree, PayloadKind::RootData]);
    assert_eq!(h.payloads[0].size, v.hash_size);
    assert_eq!(h.payloads[0].sha256, sha256(&bytes[tree_at..data_at]));
    assert_eq!(h.payloads[1].size, m.rootfs.data_size);
    assert_eq!(h.payloads[1].sha256, sha256(&bytes[data_at..]));
    assert_eq!(b.sha256, sha256(&bytes));
    // The device's layout rule holds against the slot's signed size.
    let part = m.partitions.iter().find(|p| p.name == "root-b").unwrap();
    assert_eq!(
        check_layout(&h, section, m, SlotGeometry { size: part.size }),
        Ok(())
    );
    // The tree verifies against the signed root hash, every block too.
    let tree = azl_formats::verity::VerifiedTree::new(v, b.tree.clone(), MAX_TREE_LEN).unwrap();
    for (i, block) in b.data.chunks(v.data_block_size as usize).enumerate() {
        assert!(tree.check_block(i as u64, block), "block {i}");
    }

    // Reproducible: same inputs, same bytes.
    let again = lay_out(
        "root-b",
        build(Some("root-b"), Some(&key))
            .unwrap()
            .root_slot()
            .unwrap(),
        &key,
        Some(3),
    )
    .unwrap();
    assert_eq!(again.sha256, b.sha256);
    // Summary fields.
    let s = b.summary(Path::new("x.azb"));
    assert_eq!(
        (s.slot.as_str(), s.security_version, s.size),
        ("root-b", 7, b.size())
    );
    assert_eq!(s.payloads[1].kind, "root-data");
    assert!(s.to_string().contains("for slot root-b"), "{s}");
}

#[test]
fn slots_differ_only_where_the_slot_is_named() {
    let key = test_key();
    let a = build(Some("root-a"), Some(&key)).unwrap();
    let b = build(Some("root-b"), Some(&key)).unwrap();
    let default = build(None, Some(&key)).unwrap();
    assert_eq!(default.manifest, a.manifest, "build's default is root-a");
    let (ma, mb) = (&a.manifest, &b.manifest);
    assert_eq!(ma.rootfs.partition.as_str(), "root-a");
    assert_eq!(mb.rootfs.partition.as_str(), "root-b");
    assert_ne!(ma.rootfs.verity.salt, mb.rootfs.verity.salt);
    assert_ne!(ma.rootfs.verity.uuid, mb.rootfs.verity.uuid);
    assert_eq!(ma.rootfs.data_size, mb.rootfs.data_size);
    assert_eq!(ma.disk_guid, mb.disk_guid);
    // The same squashfs in both slots.
    let n = ma.rootfs.data_size as usize;
    assert_eq!(a.root_slot().unwrap()[..n], b.root_slot().unwrap()[..n]);
    // Each manifest records a digest for its own slot only.
    let digest =
        |m: &Manifest, name: &str| m.partitions.iter().find(|p| p.name == name).unwrap().sha256;
    assert!(digest(ma, "root-a").is_some() && digest(ma, "root-b").is_none());
    assert!(digest(mb, "root-b").is_some() && digest(mb, "root-a").is_none());
}

#[test]
fn refusals() {
    let key = test_key();
    match build(Some("data"), Some(&key)) {
        Err(e @ DiskImageError::UnknownSlot { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("\"data\" is not a root slot of board qemu-virt"),
                "{msg}"
            );
            assert!(msg.contains("root slots: root-a, root-b"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        build(Some("root-c"), Some(&key)),
        Err(DiskImageError::UnknownSlot { .. })
    ));
    // An unsigned slot, or a slot signed by another key, is not bundled.
    let unsigned = build(Some("root-b"), None).unwrap();
    assert!(matches!(
        lay_out("root-b", unsigned.root_slot().unwrap(), &key, None),
        Err(BundleBuildError::Unsigned { .. })
    ));
    let signed = build(Some("root-b"), Some(&key)).unwrap();
    let e = lay_out("root-b", signed.root_slot().unwrap(), &test_key(), None).unwrap_err();
    assert!(matches!(e, BundleBuildError::KeyMismatch { .. }), "{e}");
    assert!(
        e.to_string()
            .starts_with("slot root-b: the manifest is signed by key"),
        "{e}"
    );
    // A slot without a manifest region, or one too short for its manifest.
    let empty = vec![0u8; 2 << 20];
    assert!(matches!(
        lay_out("root-b", &empty, &key, None),
        Err(BundleBuildError::Region { .. })
    ));
    assert!(matches!(
        lay_out("root-b", &[0u8; 100], &key, None),
        Err(BundleBuildError::Range { .. })
    ));
    let slot = signed.root_slot().unwrap();
    let mut cut = slot[..slot.len() - 2 * MANIFEST_REGION as usize].to_vec();
    cut.extend_from_slice(&slot[slot.len() - MANIFEST_REGION as usize..]);
    // Still fits here; shrink until the layout rule fails.
    let tiny = [
        &slot[..4096],
        &slot[slot.len() - MANIFEST_REGION as usize..],
    ]
    .concat();
    let e = lay_out("root-b", &tiny, &key, None).unwrap_err();
    assert!(matches!(e, BundleBuildError::Range { .. }), "{e}");
    assert!(lay_out("root-b", &cut, &key, None).is_ok());
}
