use super::*;
use crate::rootfs::{Content, FileSet, Node, Origin};
use crate::source::Loc;
use azl_imagepath::ImagePath;

fn hex(alg: &'static ring::digest::Algorithm, b: &[u8]) -> String {
    azl_formats::manifest::Hex(ring::digest::digest(alg, b).as_ref()).to_string()
}

fn installed(name: &str, evr: &str, license: &str) -> Installed {
    Installed {
        name: name.into(),
        evr: evr.into(),
        arch: "aarch64".into(),
        repo: "base".into(),
        sha256: "ab".repeat(32),
        license: license.into(),
        location: format!("Packages/{name}.rpm"),
    }
}

fn put(set: &mut FileSet, path: &str, content: Content, origin: Origin) {
    set.insert(
        ImagePath::parse(path).unwrap(),
        Node::file(content, 0o644, origin),
    )
    .unwrap();
}

struct Fixture {
    set: FileSet,
    packages: Vec<Installed>,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("motd");
    std::fs::write(&host, b"hello from the host\n").unwrap();
    let mut set = FileSet::new();
    put(
        &mut set,
        "/usr/bin/busybox",
        Content::Bytes(b"busybox binary".to_vec()),
        Origin::Package("busybox-1:1.36.1-1.aarch64".into()),
    );
    put(
        &mut set,
        "/usr/share/doc/x",
        Content::Bytes(b"doc".to_vec()),
        Origin::Package("tool-2.0-3.aarch64".into()),
    );
    put(
        &mut set,
        "/etc/motd",
        Content::Host(host),
        Origin::Config(Loc {
            file: "image.toml".into(),
            line: Some(7),
        }),
    );
    put(
        &mut set,
        "/init",
        Content::Bytes(b"init".to_vec()),
        Origin::Generated("the init binary".into()),
    );
    set.insert(
        ImagePath::parse("/bin/sh").unwrap(),
        Node::symlink("/usr/bin/busybox", Origin::Generated("link".into())),
    )
    .unwrap();
    Fixture {
        set,
        packages: vec![
            installed("busybox", "1:1.36.1-1", "GPL-2.0-only"),
            installed("tool", "2.0-3", "GPLv2+ and BSD"),
            installed("kernel", "6.1-1", "GPL-2.0-only WITH Linux-syscall-note"),
        ],
        _dir: dir,
    }
}

fn inputs(f: &Fixture) -> Inputs<'_> {
    Inputs {
        image_name: "demo image",
        image_version: "1.0",
        epoch: 1_700_000_000,
        rootfs: &f.set,
        packages: &f.packages,
    }
}

#[test]
fn every_regular_file_with_both_digests_in_its_package() {
    let f = fixture();
    let s = build(&inputs(&f)).unwrap();
    let d = &s.document;
    assert_eq!(d.spdx_version, "SPDX-2.3");
    assert_eq!(d.data_license, "CC0-1.0");
    assert_eq!(d.creation_info.created, "2023-11-14T22:13:20Z");
    assert_eq!(
        d.creation_info.creators,
        vec![format!("Tool: imagegen-{}", env!("CARGO_PKG_VERSION"))]
    );
    let names: Vec<&str> = d.files.iter().map(|f| f.file_name.as_str()).collect();
    assert_eq!(
        names,
        [
            "./etc/motd",
            "./init",
            "./usr/bin/busybox",
            "./usr/share/doc/x"
        ]
    );
    let motd = &d.files[0];
    assert_eq!(
        motd.checksum("SHA256").unwrap(),
        hex(&ring::digest::SHA256, b"hello from the host\n")
    );
    assert_eq!(
        motd.checksum("SHA1").unwrap(),
        hex(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            b"hello from the host\n"
        )
    );
    let contains = |from: &str, to: &str| {
        d.relationships.iter().any(|r| {
            r.spdx_element_id == from
                && r.relationship_type == "CONTAINS"
                && r.related_spdx_element == to
        })
    };
    let pkg = |name: &str| d.packages.iter().find(|p| p.name == name).unwrap();
    let busybox = pkg("busybox");
    assert_eq!(busybox.version_info.as_deref(), Some("1:1.36.1-1"));
    assert_eq!(busybox.license_declared, "GPL-2.0-only");
    assert_eq!(busybox.checksums[0].algorithm, "SHA256");
    assert_eq!(busybox.checksums[0].checksum_value, "ab".repeat(32));
    assert_eq!(
        busybox.external_refs[0].reference_locator,
        "pkg:rpm/busybox@1.36.1-1?arch=aarch64&epoch=1"
    );
    assert!(contains(&busybox.spdx_id, &d.files[2].spdx_id));
    assert!(contains(collect::CONFIG_FILES_ID, &motd.spdx_id));
    assert!(contains(collect::IMAGE_ID, &d.files[1].spdx_id));
    assert!(contains(collect::IMAGE_ID, &busybox.spdx_id));
    assert!(d
        .relationships
        .iter()
        .any(|r| r.spdx_element_id == "SPDXRef-DOCUMENT"
            && r.relationship_type == "DESCRIBES"
            && r.related_spdx_element == collect::IMAGE_ID));
    // The kernel package has no files in the root: not analysed.
    let kernel = pkg("kernel");
    assert!(!kernel.files_analyzed);
    assert!(kernel.package_verification_code.is_none());
    assert_eq!(
        kernel.license_declared,
        "GPL-2.0-only WITH Linux-syscall-note"
    );
    // A header License that is no SPDX expression is kept verbatim.
    assert_eq!(pkg("tool").license_declared, "LicenseRef-rpm-1");
    assert_eq!(
        d.has_extracted_licensing_infos[0].extracted_text,
        "GPLv2+ and BSD"
    );
    // SPDX 2.3 §7.9 verification code of busybox's one file.
    let sha1 = hex(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, b"busybox binary");
    assert_eq!(
        busybox
            .package_verification_code
            .as_ref()
            .unwrap()
            .package_verification_code_value,
        hex(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, sha1.as_bytes())
    );
}

#[test]
fn same_inputs_same_bytes_and_the_namespace_follows_the_content() {
    let f = fixture();
    let a = build(&inputs(&f)).unwrap();
    let b = build(&inputs(&f)).unwrap();
    assert_eq!(a.bytes, b.bytes);
    assert_eq!(a.sha256, azl_formats::sha256(&a.bytes));
    assert!(a
        .document
        .document_namespace
        .starts_with("https://azl-edge.invalid/spdx/demo%20image-1.0-"));
    let mut g = fixture();
    g.set.set_content(
        &ImagePath::parse("/init").unwrap(),
        Content::Bytes(b"another init".to_vec()),
    );
    let c = build(&inputs(&g)).unwrap();
    assert_ne!(a.document.document_namespace, c.document.document_namespace);
}

#[test]
fn parse_reads_back_what_build_wrote_and_refuses_others() {
    let f = fixture();
    let s = build(&inputs(&f)).unwrap();
    let p = std::path::Path::new("sbom.spdx.json");
    assert_eq!(parse(p, &s.bytes).unwrap(), s.document);
    let e = parse(p, b"{").unwrap_err().to_string();
    assert!(
        e.starts_with("sbom.spdx.json: not an SPDX JSON document"),
        "{e}"
    );
    let other = String::from_utf8(s.bytes.clone())
        .unwrap()
        .replace("SPDX-2.3", "SPDX-2.2");
    let e = parse(p, other.as_bytes()).unwrap_err().to_string();
    assert!(e.contains("spdxVersion is \"SPDX-2.2\""), "{e}");
}

#[test]
fn an_unreadable_host_file_is_named() {
    let mut set = FileSet::new();
    put(
        &mut set,
        "/etc/gone",
        Content::Host("/nonexistent/azl-sbom-test".into()),
        Origin::Generated("x".into()),
    );
    let e = build(&Inputs {
        image_name: "x",
        image_version: "1",
        epoch: 0,
        rootfs: &set,
        packages: &[],
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("/nonexistent/azl-sbom-test"), "{e}");
}
