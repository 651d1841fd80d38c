//! `packages::install` on a repository made by rpmbuild + createrepo_c:
//! a package with a character device node (`%dev`) is refused unless
//! `[packages] allow_devices` names it, and then the node is in the tree;
//! an allowance for a package that is not installed is refused too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use azl_image::config::packages::{PackageSettings, RepoSettings};
use azl_image::packages::{install, PackagesError};
use azl_rpm::package::entries::Kind;
use azl_rpm::testing::{build_spec, createrepo};

const DEVS: &str = "Name: devs\nVersion: 1\nRelease: 1\nSummary: a device node\nLicense: MIT\n\
BuildArch: noarch\n%description\nd\n%install\nmkdir -p %{buildroot}/dev\n\
%files\n%dev(c,1,3) %attr(0666,root,root) /dev/null\n";

fn settings(repo: &std::path::Path, allow: &[&str]) -> PackageSettings {
    PackageSettings {
        repos: vec![RepoSettings {
            name: "local".into(),
            baseurl: format!("file://{}", repo.display()),
            gpgkey: None,
            gpgcheck: false,
            repo_gpgcheck: false,
            sslcacert: None,
        }],
        install: vec!["devs".into()],
        allow_devices: allow.iter().map(|s| s.to_string()).collect(),
        ..PackageSettings::default()
    }
}

#[test]
fn device_nodes_only_from_the_packages_allowed() {
    let d = tempfile::tempdir().unwrap();
    let repo = d.path().join("repo");
    build_spec(
        &d.path().join("top"),
        &repo,
        ("devs", "1", "1", "noarch"),
        DEVS,
        "w19.zstdio",
    );
    createrepo(&repo);
    let cache = d.path().join("cache");
    let Err(e) = install(&settings(&repo, &[]), None, &cache) else {
        panic!("a device node was accepted without an allowance");
    };
    let text = e.to_string();
    assert!(matches!(e, PackagesError::Package { .. }), "{text}");
    assert!(
        text.contains("devs-1-1.noarch") && text.contains("/dev/null"),
        "{text}"
    );
    let p = install(&settings(&repo, &["devs"]), None, &cache).unwrap();
    let node = p.tree.iter().find(|(i, _)| i.path == "/dev/null").unwrap();
    assert!(
        matches!(
            node.0.kind,
            Kind::Device {
                block: false,
                major: 1,
                minor: 3
            }
        ),
        "{:?}",
        node.0.kind
    );
    let Err(e) = install(&settings(&repo, &["devs", "other"]), None, &cache) else {
        panic!("an allowance for a package not installed was accepted");
    };
    assert!(
        matches!(e, PackagesError::UnusedDeviceAllowance(ref n) if n == "other"),
        "{e}"
    );
}
