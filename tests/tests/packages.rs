//! An image built from RPMs: busybox and the kernel come from packages
//! made by rpmbuild, signed with a gpg key by rpmsign, in a repository made
//! by createrepo_c; `imagegen lock` pins them, `imagegen build --locked`
//! installs exactly those, and the image boots in QEMU. A repository whose
//! package changed under the lock fails the locked build, naming it.
use azl_e2e::bench;
use azl_e2e::*;
use azl_rpm::testing::{build_spec, createrepo, Key};
use std::path::{Path, PathBuf};

fn spec(name: &str, release: &str, install: &str, files: &str) -> String {
    format!(
        "Name: {name}\nVersion: 1.0\nRelease: {release}\nSummary: {name} for the azl-edge e2e test\n\
         License: GPL-2.0-only\nAutoReqProv: no\n%global debug_package %{{nil}}\n\
         %define __os_install_post %{{nil}}\n%description\nTest package.\n\
         %install\n{install}\n%files\n{files}\n"
    )
}

/// busybox (aarch64, static) with /bin/sh and a few applets as symlinks,
/// and a %pre script (never run) to show up in the build summary.
fn busybox_rpm(top: &Path, repo: &Path, release: &str, build: &str) -> PathBuf {
    let bb = busybox();
    let mut install = format!(
        "mkdir -p %{{buildroot}}/bin %{{buildroot}}/etc\ninstall -m 0755 {} %{{buildroot}}/bin/busybox\n\
         echo {build} > %{{buildroot}}/etc/busybox.build\n",
        bb.display()
    );
    let mut files = String::from("%attr(0755,root,root) /bin/busybox\n/etc/busybox.build\n");
    for a in ["sh", "echo", "cat", "sleep", "uname"] {
        install.push_str(&format!("ln -s busybox %{{buildroot}}/bin/{a}\n"));
        files.push_str(&format!("/bin/{a}\n"));
    }
    let text = spec("busybox", release, &install, &files).replace(
        "%description",
        "%pre\ngetent group wheel >/dev/null || groupadd -r wheel\n%description",
    );
    build_spec(
        top,
        repo,
        ("busybox", "1.0", release, "aarch64"),
        &text,
        "w19.zstdio",
    )
}

/// The small kernel as Fedora ships kernel-core: the Image inside its
/// release directory, with modules.builtin.
fn kernel_rpm(top: &Path, repo: &Path) -> PathBuf {
    let k = Kernel::Small.dir();
    let release = std::fs::read_to_string(k.join("release")).unwrap();
    let release = release.trim();
    let m = format!("/lib/modules/{release}");
    let mut install = format!(
        "mkdir -p %{{buildroot}}{m}\ninstall -m 0644 {} %{{buildroot}}{m}/vmlinuz\n",
        k.join("boot/Image").display()
    );
    let mut files = format!("%dir {m}\n{m}/vmlinuz\n");
    for f in ["modules.builtin", "modules.builtin.modinfo"] {
        let src = k.join(&m[1..]).join(f);
        if src.is_file() {
            install.push_str(&format!(
                "install -m 0644 {} %{{buildroot}}{m}/{f}\n",
                src.display()
            ));
            files.push_str(&format!("{m}/{f}\n"));
        }
    }
    build_spec(
        top,
        repo,
        ("kernel", "1.0", "1", "aarch64"),
        &spec("kernel", "1", &install, &files),
        "w6.xzdio",
    )
}

fn config(repo: &Path, key: &Path) -> String {
    format!(
        "[image]\nname = \"rpmimg\"\nversion = \"1.0.0\"\nhostname = \"testhost\"\nroot = \"disk\"\n\
         board = \"qemu-virt\"\ninit = {}\n\n\
         [[repo]]\nname = \"local\"\nbaseurl = {}\ngpgkey = {}\n\n\
         [packages]\ninstall = [\"/bin/sh\"]\n\n[kernel]\nrpm = \"kernel\"\n\n\
         [[service]]\nname = \"hello\"\nexec = [\"/bin/sh\", \"-c\", \"echo rpm-userland=$(uname -r); /sbin/initctl poweroff\"]\n\
         restart = \"never\"\n",
        toml_str(&init_binary().display().to_string()),
        toml_str(&format!("file://{}", repo.display())),
        toml_str(&key.display().to_string()),
    )
}

fn imagegen_in(dir: &Path, args: &[&str]) -> CmdResult {
    let mut cmd = std::process::Command::new(imagegen());
    cmd.args(args).current_dir(dir);
    run(cmd)
}

/// A repository of signed busybox and kernel RPMs in a new temporary
/// directory, the image config that installs them, and a signing key.
struct Signed {
    dir: tempfile::TempDir,
    repo: PathBuf,
    gpg: Key,
    bb: PathBuf,
    kernel: PathBuf,
    cfg: PathBuf,
    key: PathBuf,
}

fn signed_repo() -> Signed {
    let dir = tempdir();
    let d = dir.path();
    let repo = d.join("repo");
    let top = d.join("rpmbuild");
    let gpg = Key::new(d, "azl e2e <e2e@azl-edge.invalid>");
    let bb = busybox_rpm(&top, &repo, "1", "first");
    let kernel = kernel_rpm(&top, &repo);
    for p in [&bb, &kernel] {
        gpg.sign(p);
    }
    createrepo(&repo);
    let pubkey = d.join("RPM-GPG-KEY-e2e");
    std::fs::write(&pubkey, gpg.public()).unwrap();
    let cfg = d.join("image.toml");
    std::fs::write(&cfg, config(&repo, &pubkey)).unwrap();
    let key = keygen(d, "signing.key");
    Signed {
        dir,
        repo,
        gpg,
        bb,
        kernel,
        cfg,
        key,
    }
}

#[test]
fn an_image_from_signed_rpms_locks_builds_and_boots() {
    let Signed {
        dir,
        repo,
        gpg,
        bb,
        kernel,
        cfg,
        key,
    } = signed_repo();
    let d = dir.path();

    // imagegen lock: both packages pinned with their sha256.
    let cfg_s = cfg.display().to_string();
    let r = imagegen_in(d, &["lock", "-c", &cfg_s]);
    assert!(r.ok, "imagegen lock failed:\n{}{}", r.stdout, r.stderr);
    let lock = std::fs::read_to_string(d.join("imagegen.lock")).unwrap();
    for (p, file) in [("busybox", &bb), ("kernel", &kernel)] {
        let bytes = std::fs::read(file).unwrap();
        let sha: String = ring::digest::digest(&ring::digest::SHA256, &bytes)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(lock.contains(&format!("name = \"{p}\"")), "{lock}");
        assert!(lock.contains(&sha), "{p} sha256 {sha} not in\n{lock}");
    }

    // build --locked, and boot it: PID 1 starts the RPM's busybox shell.
    let out = d.join("out");
    let out_s = out.display().to_string();
    let key_s = key.display().to_string();
    let r = imagegen_in(
        d,
        &[
            "build", "-c", &cfg_s, "-o", &out_s, "--key", &key_s, "--locked",
        ],
    );
    assert!(
        r.ok,
        "imagegen build --locked failed:\n{}{}",
        r.stdout, r.stderr
    );
    assert!(
        r.stdout
            .contains("packages   2: busybox-1.0-1.aarch64, kernel-1.0-1.aarch64"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("not run    busybox-1.0-1.aarch64 %pre (/bin/sh): getent group wheel >/dev/null || groupadd -r wheel"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("rpm-kernels"),
        "kernel not from the RPM:\n{}",
        r.stdout
    );
    let b = boot(&out, &Boot::default());
    let release = std::fs::read_to_string(Kernel::Small.dir().join("release")).unwrap();
    assert_eq!(b.value("rpm-userland"), release.trim(), "{}", b.dump());
    b.assert_clean_poweroff();

    // The repository's busybox is rebuilt (same NEVRA, other content): --locked refuses it.
    let bb2 = busybox_rpm(&d.join("rpmbuild2"), &repo, "1", "second");
    assert_eq!(bb2, bb);
    gpg.sign(&bb2);
    createrepo(&repo);
    let r = imagegen_in(
        d,
        &[
            "build", "-c", &cfg_s, "-o", &out_s, "--key", &key_s, "--locked",
        ],
    );
    assert!(
        !r.ok,
        "locked build accepted a changed package:\n{}",
        r.stdout
    );
    assert!(r.stderr.contains("busybox-1.0-1.aarch64"), "{}", r.stderr);
    assert!(r.stderr.contains("another content"), "{}", r.stderr);
    // Without --locked the build takes the repository as it is now.
    let r = imagegen_in(d, &["build", "-c", &cfg_s, "-o", &out_s, "--key", &key_s]);
    assert!(r.ok, "{}{}", r.stdout, r.stderr);
}

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The SPDX reference validator, as scripts/setup.sh installs it.
fn pyspdxtools() -> PathBuf {
    let p = cache().join("tools/bin/pyspdxtools");
    assert!(
        p.is_file(),
        "{} missing: run scripts/setup.sh (installs spdx-tools)",
        p.display()
    );
    p
}

/// Every regular file under `root`, by its path in the image.
fn regular_files(root: &Path, dir: &Path, out: &mut std::collections::BTreeMap<String, String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let t = e.file_type().unwrap();
        if t.is_dir() {
            regular_files(root, &e.path(), out);
        } else if t.is_file() {
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            out.insert(
                format!("./{rel}"),
                sha256_hex(&std::fs::read(e.path()).unwrap()),
            );
        }
    }
}

/// The SBOM and provenance of an image from signed RPMs, checked with
/// tools that are not imagegen: pyspdxtools validates the SPDX document,
/// unsquashfs extracts the root the file hashes are compared with, ring
/// verifies the DSSE signature; an edited SBOM fails `inspect`.
#[test]
fn an_rpm_image_has_a_valid_sbom_and_signed_provenance() {
    use base64::Engine;
    let Signed {
        dir,
        bb,
        kernel,
        cfg,
        key,
        ..
    } = signed_repo();
    let d = dir.path();
    let cfg_s = cfg.display().to_string();
    let r = imagegen_in(d, &["lock", "-c", &cfg_s]);
    assert!(r.ok, "imagegen lock failed:\n{}{}", r.stdout, r.stderr);
    let out = d.join("out");
    let out_s = out.display().to_string();
    let key_s = key.display().to_string();
    let r = imagegen_in(
        d,
        &[
            "build", "-c", &cfg_s, "-o", &out_s, "--key", &key_s, "--locked",
        ],
    );
    assert!(r.ok, "imagegen build failed:\n{}{}", r.stdout, r.stderr);

    // The SPDX reference validator accepts the document.
    let sbom_path = out.join("sbom.spdx.json");
    let mut cmd = std::process::Command::new(pyspdxtools());
    cmd.arg("-i").arg(&sbom_path);
    let r = run(cmd);
    assert!(
        r.ok,
        "pyspdxtools rejects the SBOM:\n{}{}",
        r.stdout, r.stderr
    );
    let sbom_bytes = std::fs::read(&sbom_path).unwrap();
    let sbom: serde_json::Value = serde_json::from_slice(&sbom_bytes).unwrap();
    assert_eq!(sbom["spdxVersion"], "SPDX-2.3");
    let packages = sbom["packages"].as_array().unwrap();
    for (name, file) in [("busybox", &bb), ("kernel", &kernel)] {
        let p = packages
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no package {name} in the SBOM"));
        assert_eq!(p["versionInfo"], "1.0-1");
        assert_eq!(p["licenseDeclared"], "GPL-2.0-only", "from the RPM header");
        assert_eq!(
            p["checksums"][0]["checksumValue"],
            sha256_hex(&std::fs::read(file).unwrap())
        );
        assert_eq!(
            p["externalRefs"][0]["referenceLocator"],
            format!("pkg:rpm/{name}@1.0-1?arch=aarch64")
        );
    }

    // The manifest carries the SBOM's and the lock's digests.
    let report = inspect_json(&out);
    assert_eq!(report["ok"], true, "{report:#}");
    let m = &report["manifests"][0];
    assert_eq!(m["sbom_sha256"], sha256_hex(&sbom_bytes));
    let lock = std::fs::read(d.join("imagegen.lock")).unwrap();
    assert_eq!(m["lock_sha256"], sha256_hex(&lock));
    assert_eq!(report["sbom"]["ok"], true, "{report:#}");

    // Every file in the SBOM is in the root filesystem with that sha256,
    // and every regular file of the root is in the SBOM (unsquashfs).
    let root_img = d.join("root-a.img");
    extract_partition(&out.join("disk.img"), "root-a", &root_img);
    let data_size = m["rootfs"]["data_size"].as_u64().unwrap() as usize;
    let sq = d.join("root.sqfs");
    std::fs::write(&sq, read_at(&root_img, 0, data_size)).unwrap();
    let tree = d.join("root");
    let r = run_mut(
        std::process::Command::new("unsquashfs")
            .arg("-no-xattrs")
            .arg("-d")
            .arg(&tree)
            .arg(&sq),
    );
    assert!(r.ok, "unsquashfs: {}{}", r.stdout, r.stderr);
    assert!(
        tree.join("bin/busybox").is_file(),
        "unsquashfs extracted nothing"
    );
    let mut on_disk = std::collections::BTreeMap::new();
    regular_files(&tree, &tree, &mut on_disk);
    let in_sbom: std::collections::BTreeMap<String, String> = sbom["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let sha = f["checksums"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["algorithm"] == "SHA256")
                .unwrap()["checksumValue"]
                .as_str()
                .unwrap()
                .to_string();
            (f["fileName"].as_str().unwrap().to_string(), sha)
        })
        .collect();
    assert_eq!(
        in_sbom, on_disk,
        "SBOM files differ from the root filesystem"
    );
    assert!(in_sbom.contains_key("./bin/busybox"));

    // The provenance: a DSSE envelope signed by the manifest key, checked
    // with ring over the DSSE pre-authentication encoding.
    let env: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("provenance.json")).unwrap()).unwrap();
    let ptype = env["payloadType"].as_str().unwrap();
    assert_eq!(ptype, "application/vnd.in-toto+json");
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload = b64.decode(env["payload"].as_str().unwrap()).unwrap();
    let mut pae = format!("DSSEv1 {} {ptype} {} ", ptype.len(), payload.len()).into_bytes();
    pae.extend_from_slice(&payload);
    let sig = b64
        .decode(env["signatures"][0]["sig"].as_str().unwrap())
        .unwrap();
    let public = std::fs::read(out.join("manifest.pub")).unwrap();
    let pk = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &public);
    pk.verify(&pae, &sig)
        .expect("provenance signature does not verify with manifest.pub");
    let st: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(st["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(st["predicateType"], "https://slsa.dev/provenance/v1");
    let subjects = st["subject"].as_array().unwrap();
    assert!(
        subjects
            .iter()
            .any(|s| s["name"] == "sbom.spdx.json"
                && s["digest"]["sha256"] == sha256_hex(&sbom_bytes))
    );
    let bd = &st["predicate"]["buildDefinition"];
    assert_eq!(
        bd["externalParameters"]["config"]["sha256"],
        sha256_hex(&std::fs::read(&cfg).unwrap())
    );
    let deps = bd["resolvedDependencies"].as_array().unwrap();
    for (name, sha) in [
        (
            "busybox-1.0-1.aarch64",
            sha256_hex(&std::fs::read(&bb).unwrap()),
        ),
        ("imagegen.lock", sha256_hex(&lock)),
    ] {
        assert!(
            deps.iter()
                .any(|x| x["name"] == name && x["digest"]["sha256"] == sha),
            "{name} {sha} not in {deps:#?}"
        );
    }

    // Tamper: an edited SBOM fails inspect, which names the file.
    let edited = String::from_utf8(sbom_bytes.clone())
        .unwrap()
        .replace("GPL-2.0-only", "MIT");
    std::fs::write(&sbom_path, edited).unwrap();
    let r = imagegen_in(d, &["inspect", &out_s]);
    assert_eq!(r.code, Some(1), "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("sbom.spdx.json"), "{}", r.stdout);
    let r = imagegen_in(d, &["inspect", &out_s, "--sbom"]);
    assert_eq!(r.code, Some(1), "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("sbom.spdx.json is sha256"),
        "{}",
        r.stdout
    );
}

/// The same image as [`config`] from hand-listed files: busybox and its
/// applet links, the kernel from its directory (the baseline of the
/// cached-build benchmark).
fn config_from_files() -> String {
    let mut s = format!(
        "[image]\nname = \"rpmimg\"\nversion = \"1.0.0\"\nhostname = \"testhost\"\nroot = \"disk\"\n\
         board = \"qemu-virt\"\ninit = {}\n\n[kernel]\npath = {}\n\n\
         [[file]]\nsrc = {}\ndst = \"/bin/busybox\"\nmode = \"0755\"\n",
        toml_str(&init_binary().display().to_string()),
        toml_str(&Kernel::Small.dir().display().to_string()),
        toml_str(&busybox().display().to_string()),
    );
    for a in ["sh", "echo", "cat", "sleep", "uname"] {
        s.push_str(&format!(
            "\n[[file]]\nsymlink = \"busybox\"\ndst = \"/bin/{a}\"\n"
        ));
    }
    s.push_str(
        "\n[[service]]\nname = \"hello\"\nexec = [\"/bin/sh\", \"-c\", \"echo hi\"]\nrestart = \"never\"\n",
    );
    s
}

/// Benchmark (`scripts/bench.sh bench_cached_rpm_build`): `imagegen build
/// --locked` of the RPM image with every package already in the cache
/// (goal ≤ 2 s), against the same image built from hand-listed files in
/// the same run. Median of 5 each, interleaved; printed as a table.
#[test]
#[ignore = "benchmark: scripts/bench.sh"]
fn bench_cached_rpm_build() {
    let Signed { dir, cfg, key, .. } = signed_repo();
    let d = dir.path();
    let files = d.join("files.toml");
    std::fs::write(&files, config_from_files()).unwrap();
    let (cfg_s, files_s) = (cfg.display().to_string(), files.display().to_string());
    let key_s = key.display().to_string();
    let r = imagegen_in(d, &["lock", "-c", &cfg_s]);
    assert!(r.ok, "imagegen lock failed:\n{}{}", r.stdout, r.stderr);
    let build = |config: &str, out: &str, locked: bool| {
        let mut args = vec!["build", "-c", config, "-o", out, "--key", &key_s];
        if locked {
            args.push("--locked");
        }
        let t = std::time::Instant::now();
        let r = imagegen_in(d, &args);
        let took = t.elapsed().as_secs_f64();
        assert!(r.ok, "imagegen build failed:\n{}{}", r.stdout, r.stderr);
        took
    };
    // Fills the RPM cache (and the kernel materialised from its RPM).
    build(&cfg_s, "out-warm", true);
    let (mut rpm, mut plain) = (Vec::new(), Vec::new());
    for i in 0..5 {
        rpm.push(build(&cfg_s, &format!("out-rpm-{i}"), true));
        plain.push(build(&files_s, &format!("out-files-{i}"), false));
    }
    let (mr, mp) = (bench::median(rpm), bench::median(plain));
    bench::begin("image build from cached RPMs");
    println!("| | median of 5 | |\n|---|---:|---|");
    println!("| `imagegen build --locked`, busybox + kernel RPMs from the cache (check digests + signatures, unpack) | {mr:.2} s | goal ≤ 2 s: {} |", bench::verdict(mr <= 2.0));
    println!("| the same image from hand-listed files (baseline) | {mp:.2} s | |");
    println!("| ratio | {:.2}× | |", mr / mp);
    bench::end("bench_cached_rpm_build");
}
