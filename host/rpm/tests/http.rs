//! Repositories over HTTP from a real nginx started by the test on
//! 127.0.0.1 (tests/common/http.rs), built by rpmbuild + createrepo_c:
//! the same packages as from the directory, packages fetched into the
//! cache and served from it with nginx stopped (and with a source that
//! fails on any call), every HTTP failure typed and naming the URL, and
//! repo_gpgcheck with a good, missing, foreign and stale signature;
//! HTTPS (nginx with a certificate of a CA made by `openssl` in the test)
//! trusted only through `sslcacert`.
//!
//! nginx, rpmbuild, createrepo_c and gpg are installed by scripts/setup.sh;
//! without them these tests fail, loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod common;

use azl_rpm::cache::{fetch_package, Cache, FetchError, Origin};
use azl_rpm::keys::Keys;
use azl_rpm::primary::Package;
use azl_rpm::repomd_sig::{self, LoadError, SignatureError};
use azl_rpm::source::{self, HttpError, Source, SourceError};
use common::http::{nginx_binary, Nginx};
use common::spec::Key;
use common::{build, createrepo, have, load_primary, Spec};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::Command;

fn tools() {
    for t in ["rpmbuild", "createrepo_c", "gpg"] {
        assert!(have(t), "{t} is missing: run scripts/setup.sh");
    }
    assert!(
        nginx_binary().is_some(),
        "nginx is missing: run scripts/setup.sh"
    );
}

struct Fixture {
    w: tempfile::TempDir,
    www: PathBuf,
    repo: PathBuf,
    nginx: Nginx,
}

/// `www/repo`: two packages and their repodata, served by nginx with a
/// few extra locations: `/moved/…` redirects to `/repo/…`, `/ftp/…` to an
/// ftp:// URL, `/loop/…` to itself, and `/chunked/…` serves `/repo/…`
/// without a Content-Length (SSI output is sent chunked).
fn fixture() -> Fixture {
    tools();
    let w = tempfile::tempdir().unwrap();
    let www = w.path().join("www");
    let repo = www.join("repo");
    let top = w.path().join("top");
    build(
        &top,
        &repo,
        &Spec {
            files: &[("/usr/bin/hello", "#!/bin/sh\necho hello\n")],
            ..Spec::simple("hello", "1.0", "Requires: libfoo")
        },
    );
    build(&top, &repo, &Spec::simple("libfoo", "2.1", ""));
    createrepo(&repo, &[]);
    let locations = format!(
        "    location /moved/ {{ rewrite ^/moved/(.*)$ /repo/$1 redirect; }}\n\
         location /ftp/ {{ return 302 ftp://127.0.0.1/repo/repodata/repomd.xml; }}\n\
         location /loop/ {{ rewrite ^ /loop/again redirect; }}\n\
         location /chunked/ {{ alias {}/; ssi on; ssi_types *; }}\n",
        repo.display()
    );
    let nginx = Nginx::start(&w.path().join("nginx"), &www, &locations);
    Fixture {
        w,
        www,
        repo,
        nginx,
    }
}

fn packages_of(src: &dyn Source) -> Vec<Package> {
    let md = repomd_sig::load(src, None).unwrap();
    let primary = azl_rpm::metadata::load(src, md.get("primary").unwrap()).unwrap();
    azl_rpm::primary::parse(&primary).unwrap()
}

fn http_err(e: &SourceError) -> &HttpError {
    match e {
        SourceError::Http { err, .. } => err,
        other => panic!("not an HTTP error: {other}"),
    }
}

#[test]
fn metadata_over_http_is_the_directory_s() {
    let f = fixture();
    let local = load_primary(&f.repo).unwrap();
    assert_eq!(local.len(), 2);
    let http = source::open(&f.nginx.url("repo/")).unwrap();
    assert_eq!(http.url(), f.nginx.url("repo"));
    assert_eq!(packages_of(http.as_ref()), local);
    // Through a redirect on every file.
    let moved = source::open(&f.nginx.url("moved")).unwrap();
    assert_eq!(packages_of(moved.as_ref()), local);
    let log = f.nginx.access_log();
    assert!(
        log.contains("GET /moved/repodata/repomd.xml HTTP/1.1\" 302"),
        "{log}"
    );
    assert!(
        log.contains("GET /repo/repodata/repomd.xml HTTP/1.1\" 200"),
        "{log}"
    );
}

/// A source that must not be used: counts calls and fails each.
struct Failing(Cell<usize>);

impl Source for Failing {
    fn url(&self) -> String {
        "failing://".into()
    }
    fn get(&self, href: &str, _max: u64) -> Result<Vec<u8>, SourceError> {
        self.0.set(self.0.get() + 1);
        Err(SourceError::Unsupported(format!("failing://{href}")))
    }
}

#[test]
fn packages_are_cached_and_rebuilds_work_offline() {
    let mut f = fixture();
    let pkgs = load_primary(&f.repo).unwrap();
    let cache = Cache::new(f.w.path().join("cache/rpms"));
    let http = source::open(&f.nginx.url("repo")).unwrap();
    for p in &pkgs {
        let sum = p.checksum.as_ref().unwrap();
        let got = fetch_package(http.as_ref(), &p.location, p.package_size, sum, &cache).unwrap();
        assert_eq!(got.origin, Origin::Source, "{}", p.nevra());
        assert_eq!(got.bytes, std::fs::read(f.repo.join(&p.location)).unwrap());
        let entry = cache.path(sum);
        assert!(
            entry.starts_with(f.w.path().join("cache/rpms/sha256").join(&sum.hex[..2])),
            "{}",
            entry.display()
        );
    }
    f.nginx.stop();
    // nginx is gone: an uncached package cannot be had.
    let empty = Cache::new(f.w.path().join("empty"));
    let p = &pkgs[0];
    let sum = p.checksum.as_ref().unwrap();
    let e = fetch_package(http.as_ref(), &p.location, p.package_size, sum, &empty).unwrap_err();
    match &e {
        FetchError::Source(s) => assert!(matches!(http_err(s), HttpError::Transport { .. }), "{e}"),
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains(&f.nginx.url("repo/")), "{e}");
    // Cached ones are, from the stopped server and from a failing source.
    let failing = Failing(Cell::new(0));
    for p in &pkgs {
        let sum = p.checksum.as_ref().unwrap();
        for src in [http.as_ref(), &failing as &dyn Source] {
            let got = fetch_package(src, &p.location, p.package_size, sum, &cache).unwrap();
            assert_eq!(got.origin, Origin::Cache);
            assert_eq!(got.bytes, std::fs::read(f.repo.join(&p.location)).unwrap());
        }
    }
    assert_eq!(failing.0.get(), 0, "a cache hit contacted the source");
}

fn copy_dir(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-r")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn http_failures_are_typed_and_name_the_url() {
    let f = fixture();
    let pkgs = load_primary(&f.repo).unwrap();
    let p = pkgs.iter().find(|p| p.name == "hello").unwrap();
    let sum = p.checksum.as_ref().unwrap();
    let cache = Cache::new(f.w.path().join("cache"));
    let repo = source::open(&f.nginx.url("repo")).unwrap();

    // 404, with the URL.
    let e = repo.get("repodata/none.xml", 100).unwrap_err();
    assert!(
        matches!(
            http_err(&e),
            HttpError::Status {
                status: 404,
                via: None
            }
        ),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        format!(
            "{}: the server answered 404",
            f.nginx.url("repo/repodata/none.xml")
        )
    );

    // Larger than declared: refused by Content-Length, and without one
    // (chunked) by the byte window.
    let declared = p.package_size - 1;
    let e = fetch_package(repo.as_ref(), &p.location, declared, sum, &cache).unwrap_err();
    match &e {
        FetchError::Source(s) => assert!(
            matches!(http_err(s), HttpError::TooLarge { how: "Content-Length", max, .. } if *max == declared),
            "{e}"
        ),
        other => panic!("{other}"),
    }
    let chunked = source::open(&f.nginx.url("chunked")).unwrap();
    let e = chunked.get(&p.location, declared).unwrap_err();
    assert!(
        matches!(http_err(&e), HttpError::TooLarge { how: "body", .. }),
        "{e}"
    );
    // …and the same path with room for it is whole.
    assert_eq!(
        chunked.get(&p.location, p.package_size).unwrap(),
        std::fs::read(f.repo.join(&p.location)).unwrap()
    );

    // A checksum mismatch served by the server: same size, one byte changed.
    let tampered = f.www.join("tampered");
    copy_dir(&f.repo, &tampered);
    let file = tampered.join(&p.location);
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();
    let src = source::open(&f.nginx.url("tampered")).unwrap();
    let e = fetch_package(src.as_ref(), &p.location, p.package_size, sum, &cache).unwrap_err();
    assert!(matches!(e, FetchError::Checksum { .. }), "{e}");
    assert!(
        e.to_string().starts_with(&format!(
            "{}: is sha256 ",
            f.nginx.url("tampered/hello-1.0-1.noarch.rpm")
        )),
        "{e}"
    );
    assert!(!cache.path(sum).exists(), "a bad package was cached");

    // Redirects: to ftp:// refused, a loop stopped.
    let ftp = source::open(&f.nginx.url("ftp")).unwrap();
    let e = ftp.get("repodata/repomd.xml", 1 << 20).unwrap_err();
    assert!(
        matches!(http_err(&e), HttpError::RedirectScheme { location } if location.starts_with("ftp://")),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with(&f.nginx.url("ftp/repodata/repomd.xml")),
        "{e}"
    );
    let lp = source::open(&f.nginx.url("loop")).unwrap();
    let e = lp.get("x", 10).unwrap_err();
    assert!(
        matches!(http_err(&e), HttpError::Redirects { max: 5, .. }),
        "{e}"
    );
}

#[test]
fn repo_gpgcheck_needs_a_good_signature_over_the_exact_repomd() {
    let f = fixture();
    let keydir = f.w.path().join("keys");
    let key = Key::new(&keydir, "repo@azl.test");
    let other = Key::new(&keydir, "other@azl.test");
    let keys = Keys::from_armored("repo.asc", &key.public()).unwrap();
    let repomd = f.repo.join("repodata/repomd.xml");

    let unsigned = f.www.join("unsigned");
    copy_dir(&f.repo, &unsigned);
    let foreign = f.www.join("foreign");
    copy_dir(&f.repo, &foreign);
    other.detach_sign(&foreign.join("repodata/repomd.xml"));
    key.detach_sign(&repomd);
    let stale = f.www.join("stale");
    copy_dir(&f.repo, &stale);
    let md = stale.join("repodata/repomd.xml");
    let text = std::fs::read_to_string(&md).unwrap();
    std::fs::write(&md, text.replacen("<revision>", "<revision>1", 1)).unwrap();

    // Good: verified, then parsed; the same repomd as without the check.
    let good = source::open(&f.nginx.url("repo")).unwrap();
    let md = repomd_sig::load(good.as_ref(), Some(&keys)).unwrap();
    assert_eq!(md, repomd_sig::load(good.as_ref(), None).unwrap());

    let sig_err = |dir: &str| {
        let src = source::open(&f.nginx.url(dir)).unwrap();
        match repomd_sig::load(src.as_ref(), Some(&keys)).unwrap_err() {
            LoadError::Signature(s) => s,
            other => panic!("{dir}: {other}"),
        }
    };
    let e = sig_err("unsigned");
    match &e {
        SignatureError::Missing { err } => {
            assert!(
                matches!(http_err(err), HttpError::Status { status: 404, .. }),
                "{e}"
            )
        }
        other => panic!("{other}"),
    }
    assert!(
        e.to_string().contains("unsigned/repodata/repomd.xml.asc"),
        "{e}"
    );
    for dir in ["foreign", "stale"] {
        let e = sig_err(dir);
        assert!(matches!(e, SignatureError::Bad { .. }), "{dir}: {e}");
        assert!(
            e.to_string().starts_with(&format!(
                "{}: does not verify repomd.xml with a key of repo.asc",
                f.nginx.url(&format!("{dir}/repodata/repomd.xml.asc"))
            )),
            "{dir}: {e}"
        );
    }
    // Without repo_gpgcheck the stale one is read (its checksums still
    // guard the files).
    let stale = source::open(&f.nginx.url("stale")).unwrap();
    assert!(repomd_sig::load(stale.as_ref(), None).is_ok());
    // The same check on a local directory.
    let local = source::open(f.repo.to_str().unwrap()).unwrap();
    repomd_sig::load(local.as_ref(), Some(&keys)).unwrap();
}

/// A new P-256 key, unencrypted (for `openssl req`).
const NEW_KEY: &str = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

/// `openssl` with the whitespace-separated `args` in `dir`; panics with
/// its stderr on failure.
fn openssl(dir: &Path, args: &str) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args.split_whitespace())
        .output()
        .expect("openssl is missing: run scripts/setup.sh");
    assert!(
        out.status.success(),
        "openssl {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test CA `<name>.pem` / `<name>.key` in `dir`.
fn make_ca(dir: &Path, name: &str) -> PathBuf {
    openssl(
        dir,
        &format!(
            "req -x509 {NEW_KEY} -keyout {name}.key -out {name}.pem -days 3 -subj /CN=azl-test-{name} \
             -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign"
        ),
    );
    dir.join(format!("{name}.pem"))
}

/// A certificate for 127.0.0.1 signed by CA `ca` (from [`make_ca`]):
/// `server.pem`, `server.key`.
fn make_server_cert(dir: &Path, ca: &str) -> (PathBuf, PathBuf) {
    openssl(
        dir,
        &format!("req {NEW_KEY} -keyout server.key -out server.csr -subj /CN=127.0.0.1"),
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &format!(
            "x509 -req -in server.csr -CA {ca}.pem -CAkey {ca}.key -CAcreateserial \
             -out server.pem -days 3 -extfile server.ext"
        ),
    );
    (dir.join("server.pem"), dir.join("server.key"))
}

fn https_source(url: &str, ca: Option<&Path>) -> Result<Box<dyn Source>, SourceError> {
    let options = source::HttpOptions {
        ca_certs: ca.map(|p| std::fs::read(p).unwrap()),
        ..Default::default()
    };
    source::open_with(url, options)
}

/// HTTPS from nginx with a certificate of a test CA: with that CA as
/// `sslcacert` the metadata is the directory's; with the webpki roots or
/// another CA the TLS handshake fails, naming the URL; a CA file that
/// holds no certificate is refused before any connection.
#[test]
fn https_trusts_exactly_the_configured_ca() {
    let f = fixture();
    let pki = f.w.path().join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    let ca = make_ca(&pki, "ca");
    let other = make_ca(&pki, "other");
    let (cert, key) = make_server_cert(&pki, "ca");
    let tls = common::http::Tls {
        cert: &cert,
        key: &key,
    };
    let nginx = Nginx::start_tls(&f.w.path().join("nginx-tls"), &f.www, &tls);
    let url = nginx.url("repo");
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let local = load_primary(&f.repo).unwrap();
    let src = https_source(&url, Some(&ca)).unwrap();
    assert_eq!(packages_of(src.as_ref()), local);
    // An RPM over HTTPS, checked against its metadata checksum.
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path().join("cache"));
    let p = &local[0];
    let sum = p.checksum.as_ref().unwrap();
    let got = fetch_package(src.as_ref(), &p.location, p.package_size, sum, &cache).unwrap();
    assert_eq!(got.bytes, std::fs::read(f.repo.join(&p.location)).unwrap());
    for (what, ca) in [
        ("webpki roots", None),
        ("another CA", Some(other.as_path())),
    ] {
        let src = https_source(&url, ca).unwrap();
        let e = src.get("repodata/repomd.xml", 1 << 20).unwrap_err();
        assert!(
            matches!(http_err(&e), HttpError::Transport { .. }),
            "{what}: {e}"
        );
        let text = e.to_string();
        assert!(text.contains(&url), "{what}: {text}");
        assert!(
            text.to_lowercase().contains("certificate"),
            "{what}: {text}"
        );
    }
    std::fs::write(pki.join("empty.pem"), "no certificates here\n").unwrap();
    let e = https_source(&url, Some(&pki.join("empty.pem")))
        .err()
        .unwrap();
    assert!(matches!(http_err(&e), HttpError::CaCerts(_)), "{e}");
    assert!(e.to_string().contains("holds no PEM certificate"), "{e}");
}
