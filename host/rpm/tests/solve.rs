//! Resolution over a repository made by the reference tools (rpmbuild,
//! createrepo_c), each resolvable case cross-checked against Debian's dnf
//! resolving the same request on the same repository
//! ([`common::dnf_install`]: `dnf --assumeno install`, offline, aarch64,
//! no weak deps; the package set of its transaction table).
//!
//! One repository holds every case (built once per run under
//! `CARGO_TARGET_TMPDIR`); package names are short so dnf's table never
//! wraps them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod common;
use azl_rpm::repo;
use azl_rpm::solve::{self, Problem, Repo, Request, SolveError};
use azl_rpm::source::LocalDir;
use common::{build, createrepo, dnf_install, have, load_primary, Spec};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::OnceLock;

struct Fixture {
    dir: PathBuf,
    repos: Vec<Repo>,
}

fn spec<'a>(name: &'a str, version: &'a str, arch: &'a str, header: &'a str) -> Spec<'a> {
    Spec {
        arch,
        ..Spec::simple(name, version, header)
    }
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        for t in ["rpmbuild", "createrepo_c", "dnf"] {
            assert!(have(t), "{t} is missing: run scripts/setup.sh");
        }
        let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("azl-rpm-solve");
        let _ = std::fs::remove_dir_all(&base);
        let (top, dir) = (base.join("top"), base.join("repo"));
        let specs = [
            // Versions and epochs: only mid-1:1.5 is >= 1:1.0; it wants
            // the newest libv.
            spec("top", "1", "noarch", "Requires: mid >= 1:1.0"),
            spec("mid", "2.0", "noarch", "Requires: libv >= 2.1"),
            spec("mid", "1.5", "noarch", "Epoch: 1\nRequires: libv >= 2.1"),
            spec("libv", "2.0", "noarch", ""),
            spec("libv", "2.5", "noarch", ""),
            spec("libv", "2.2", "noarch", ""),
            // A versioned capability.
            spec("usesvc", "1", "noarch", "Requires: svc(api) >= 2"),
            spec("svcold", "1", "noarch", "Provides: svc(api) = 1"),
            spec("svcnew", "1", "noarch", "Provides: svc(api) = 2"),
            // A file only one package has (listed in primary: under /usr/bin).
            spec("needsh", "1", "noarch", "Requires: /usr/bin/toolsh"),
            Spec {
                files: &[("/usr/bin/toolsh", "#!/bin/sh\n")],
                ..spec("toolbox", "1", "noarch", "")
            },
            // A file primary does not list (not /etc, not *bin/): only
            // filelists says who has it.
            spec("needdata", "1", "noarch", "Requires: /usr/share/dataf/blob"),
            Spec {
                files: &[("/usr/share/dataf/blob", "data\n")],
                ..spec("dataprov", "1", "noarch", "")
            },
            // (a or b): dnf takes the first by name; a broken alternative
            // is passed over.
            spec("chooser", "1", "noarch", "Requires: (altb or alta)"),
            spec("alta", "1", "noarch", ""),
            spec("altb", "1", "noarch", ""),
            spec("chooser2", "1", "noarch", "Requires: (abroken or zok)"),
            spec("abroken", "1", "noarch", "Requires: nothing-has-this"),
            spec("zok", "1", "noarch", ""),
            // (a if b)
            spec("cond", "1", "noarch", "Requires: (condx if condtrig)"),
            spec("condx", "1", "noarch", ""),
            spec("condtrig", "1", "noarch", ""),
            spec("ife", "1", "noarch", "Requires: (ifa if ifb else ifc)"),
            spec("ifa", "1", "noarch", ""),
            spec("ifb", "1", "noarch", ""),
            spec("ifc", "1", "noarch", ""),
            // A conflict: the newest cf conflicts with peer, an older one
            // does not.
            spec("cf", "2", "noarch", "Conflicts: peer"),
            spec("cf", "1", "noarch", ""),
            spec("peer", "1", "noarch", ""),
            spec("cfonly", "1", "noarch", "Conflicts: peer2"),
            spec("peer2", "1", "noarch", ""),
            // Obsoletes.
            spec("oldpkg", "1", "noarch", ""),
            spec("newpkg", "2", "noarch", "Obsoletes: oldpkg < 2"),
            spec("useold", "1", "noarch", "Requires: oldpkg"),
            // Architectures: the x86_64 build is newer and must never win.
            spec("alib", "1.0", "aarch64", ""),
            spec("alib", "2.0", "x86_64", ""),
            spec("aapp", "1", "noarch", "Requires: alib"),
            spec("xonly", "1", "x86_64", ""),
            spec("wantx", "1", "noarch", "Requires: xonly"),
            // Missing, with a chain.
            spec("app", "1.0", "noarch", "Requires: libfoo >= 2"),
            spec("libfoo", "1.0", "noarch", ""),
            spec("apptop", "1", "noarch", "Requires: app"),
            // Weak dependencies.
            spec("weak", "1", "noarch", "Recommends: weakrec"),
            spec("weakrec", "1", "noarch", ""),
        ];
        for s in &specs {
            build(&top, &dir, s);
        }
        createrepo(&dir, &[]);
        let mut packages = load_primary(&dir).unwrap();
        assert_eq!(packages.len(), specs.len());
        // As the image build does: filelists for the paths primary lacks.
        let wanted = repo::unlisted_paths([packages.as_slice()], &[]);
        let src = LocalDir::from_url(dir.to_str().unwrap()).unwrap();
        let added = repo::add_files("r", &src, None, &mut packages, &wanted).unwrap();
        assert_eq!(added, 1, "{wanted:?}");
        Fixture {
            dir,
            repos: vec![Repo {
                name: "r".into(),
                packages,
            }],
        }
    })
}

fn request(install: &[&str], exclude: &[&str]) -> Request {
    Request {
        install: install.iter().map(|s| s.to_string()).collect(),
        exclude: exclude.iter().map(|s| s.to_string()).collect(),
        ..Request::default()
    }
}

fn ours(install: &[&str], exclude: &[&str]) -> Result<BTreeSet<String>, SolveError> {
    let f = fixture();
    let s = solve::resolve(&f.repos, &request(install, exclude))?;
    let v: Vec<String> = s.packages.iter().map(|c| c.nevra()).collect();
    let mut sorted = v.clone();
    sorted.sort();
    // Output order: by name then EVR (names here sort the same as text).
    assert_eq!(v, sorted, "the solution is sorted");
    Ok(v.into_iter().collect())
}

/// Our set, asserted equal to dnf's and to `want`.
fn agree(install: &[&str], exclude: &[&str], want: &[&str]) {
    let mine = ours(install, exclude).unwrap_or_else(|e| panic!("{install:?}: {e}"));
    let theirs = dnf_install(&fixture().dir, install, exclude)
        .unwrap_or_else(|e| panic!("dnf {install:?}: {e}"));
    assert_eq!(mine, theirs, "{install:?}: ours vs dnf");
    let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
    assert_eq!(mine, want, "{install:?}");
}

fn unsolvable(install: &[&str], exclude: &[&str]) -> (Vec<Problem>, String) {
    match ours(install, exclude) {
        Err(SolveError::Unsolvable(u)) => {
            let text = u.to_string();
            (u.problems, text)
        }
        other => panic!("{install:?}: {other:?}"),
    }
}

fn dnf_refuses(install: &[&str], exclude: &[&str]) -> String {
    match dnf_install(&fixture().dir, install, exclude) {
        Err(out) => out,
        Ok(set) => panic!("dnf resolved {install:?}: {set:?}"),
    }
}

#[test]
fn versions_and_epochs() {
    agree(
        &["top"],
        &[],
        &["libv-2.5-1.noarch", "mid-1:1.5-1.noarch", "top-1-1.noarch"],
    );
    // A request with a version, and one that nothing satisfies.
    agree(&["libv < 2.5"], &[], &["libv-2.2-1.noarch"]);
    let (_, text) = unsolvable(&["mid >= 2:0"], &[]);
    assert!(text.contains("nothing provides mid >= 2:0"), "{text}");
}

#[test]
fn versioned_capability() {
    agree(
        &["usesvc"],
        &[],
        &["svcnew-1-1.noarch", "usesvc-1-1.noarch"],
    );
    agree(&["svc(api) < 2"], &[], &["svcold-1-1.noarch"]);
}

#[test]
fn file_provides() {
    agree(
        &["needsh"],
        &[],
        &["needsh-1-1.noarch", "toolbox-1-1.noarch"],
    );
    agree(&["/usr/bin/toolsh"], &[], &["toolbox-1-1.noarch"]);
}

/// A required path primary does not list is found in filelists (read
/// only for such paths); without it nothing provides the path.
#[test]
fn file_provides_outside_primary_come_from_filelists() {
    let primary_only = load_primary(&fixture().dir).unwrap();
    let unlisted = repo::unlisted_paths([primary_only.as_slice()], &["/usr/share/dataf/x".into()]);
    let want: BTreeSet<String> = ["/usr/share/dataf/blob", "/usr/share/dataf/x"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(unlisted, want);
    let repos = [Repo {
        name: "r".into(),
        packages: primary_only,
    }];
    match solve::resolve(&repos, &request(&["needdata"], &[])) {
        Err(SolveError::Unsolvable(u)) => {
            let text = u.to_string();
            assert!(
                text.contains("requires /usr/share/dataf/blob, and nothing provides it"),
                "{text}"
            );
        }
        other => panic!("resolved without filelists: {other:?}"),
    }
    agree(
        &["needdata"],
        &[],
        &["dataprov-1-1.noarch", "needdata-1-1.noarch"],
    );
    agree(&["/usr/share/dataf/blob"], &[], &["dataprov-1-1.noarch"]);
}

#[test]
fn rich_or() {
    agree(
        &["chooser"],
        &[],
        &["alta-1-1.noarch", "chooser-1-1.noarch"],
    );
    agree(
        &["chooser2"],
        &[],
        &["chooser2-1-1.noarch", "zok-1-1.noarch"],
    );
}

#[test]
fn rich_if() {
    agree(&["cond"], &[], &["cond-1-1.noarch"]);
    agree(
        &["cond", "condtrig"],
        &[],
        &["cond-1-1.noarch", "condtrig-1-1.noarch", "condx-1-1.noarch"],
    );
}

/// `(a if b else c)` is `b → a` and `b ∨ c`: with neither installed
/// both solvers satisfy `b ∨ c` by name order (ifb), which brings ifa.
#[test]
fn rich_if_else() {
    agree(
        &["ife"],
        &[],
        &["ifa-1-1.noarch", "ifb-1-1.noarch", "ife-1-1.noarch"],
    );
    agree(&["ife"], &["ifb"], &["ifc-1-1.noarch", "ife-1-1.noarch"]);
}

#[test]
fn conflicts() {
    // The newest cf conflicts with peer: both solvers take cf-1.
    agree(&["cf", "peer"], &[], &["cf-1-1.noarch", "peer-1-1.noarch"]);
    agree(&["cf"], &[], &["cf-2-1.noarch"]);
    // No compatible version: reported, naming both packages.
    let (problems, text) = unsolvable(&["cfonly", "peer2"], &[]);
    assert!(
        problems
            .iter()
            .any(|p| matches!(p, Problem::Conflict { package, other, .. }
                if package == "cfonly-1-1.noarch" && other == "peer2-1-1.noarch")),
        "{text}"
    );
    assert!(text.contains("conflicts with peer2"), "{text}");
    dnf_refuses(&["cfonly", "peer2"], &[]);
}

#[test]
fn obsoletes() {
    // Asking for an obsoleted package installs its obsoleter (dnf does).
    agree(&["oldpkg"], &[], &["newpkg-2-1.noarch"]);
    // A requirement on it is met by the package itself: the obsoleter
    // does not provide it.
    agree(
        &["useold"],
        &[],
        &["oldpkg-1-1.noarch", "useold-1-1.noarch"],
    );
    // Never both.
    let (_, text) = unsolvable(&["newpkg", "useold"], &[]);
    assert!(text.contains("obsoletes oldpkg < 2"), "{text}");
    dnf_refuses(&["newpkg", "useold"], &[]);
}

#[test]
fn only_target_arch_and_noarch() {
    agree(&["aapp"], &[], &["aapp-1-1.noarch", "alib-1.0-1.aarch64"]);
    let (_, text) = unsolvable(&["wantx"], &[]);
    assert_eq!(
        text,
        "cannot install wantx: wantx-1-1.noarch requires xonly, and nothing provides it \
         (xonly-1-1.x86_64 provides it but is not for aarch64)"
    );
    dnf_refuses(&["wantx"], &[]);
}

#[test]
fn missing_dependency_names_the_chain() {
    let (problems, text) = unsolvable(&["apptop"], &[]);
    assert_eq!(
        text,
        "cannot install apptop: apptop-1-1.noarch requires app, app-1.0-1.noarch requires \
         libfoo >= 2, and nothing provides it (libfoo-1.0-1.noarch provides libfoo = 1.0-1)"
    );
    match &problems[..] {
        [Problem::Missing { chain, .. }] => {
            assert_eq!(chain.request, "apptop");
            assert_eq!(chain.links.len(), 2);
            assert_eq!(chain.links[1].package, "app-1.0-1.noarch");
            assert_eq!(chain.links[1].requires, "libfoo >= 2");
        }
        p => panic!("{p:?}"),
    }
    let dnf = dnf_refuses(&["apptop"], &[]);
    assert!(
        dnf.contains("nothing provides libfoo >= 2 needed by app-1.0-1.noarch"),
        "{dnf}"
    );
    let (_, text) = unsolvable(&["no-such-thing"], &[]);
    assert_eq!(
        text,
        "cannot install no-such-thing: nothing provides no-such-thing"
    );
}

#[test]
fn exclude() {
    agree(
        &["chooser"],
        &["alta"],
        &["altb-1-1.noarch", "chooser-1-1.noarch"],
    );
    // A glob that removes every alternative: reported with the reason.
    let (_, text) = unsolvable(&["chooser"], &["alt*"]);
    assert!(
        text.contains("chooser-1-1.noarch requires (altb or alta), and nothing provides it")
            && text.contains("alta-1-1.noarch provides it but is excluded by `alt*`"),
        "{text}"
    );
    dnf_refuses(&["chooser"], &["alt*"]);
}

#[test]
fn weak_deps_only_when_asked() {
    agree(&["weak"], &[], &["weak-1-1.noarch"]);
    let f = fixture();
    let s = solve::resolve(
        &f.repos,
        &Request {
            weak_deps: true,
            ..request(&["weak"], &[])
        },
    )
    .unwrap();
    let names: Vec<&str> = s.packages.iter().map(|c| c.package.name.as_str()).collect();
    assert_eq!(names, ["weak", "weakrec"]);
}

/// The benchmark generator's repository resolves (no reference tool:
/// in-memory packages), every package of the closure once.
#[test]
fn synthetic_repository_resolves() {
    let repos = vec![Repo {
        name: "syn".into(),
        packages: common::synthetic(3000),
    }];
    let s = solve::resolve(&repos, &request(&["p2999", "p1500"], &[])).unwrap();
    let mut names: Vec<&str> = s.packages.iter().map(|c| c.package.name.as_str()).collect();
    assert!(
        names.contains(&"p2999") && names.contains(&"p0"),
        "{names:?}"
    );
    let n = names.len();
    names.dedup();
    assert_eq!(names.len(), n, "one version per name");
}
