//! Every configuration error imagegen reports, with its `file:line`, and
//! the service compilation (defaults, references, start order).
// Test helpers outside #[test] fns (fixtures, expect()) fail the test by panicking.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
use azl_formats::{CrashLoopAction, Readiness, RestartPolicy};
use azl_image::config::Config;
use azl_image::expand::MapEnv;
use azl_image::pipeline::{check, Checked};
use azl_image::source::SourceFile;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

struct Fixture {
    _dir: tempfile::TempDir,
    /// An executable host file.
    exe: PathBuf,
    /// A non-executable host file.
    data: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("busybox");
    std::fs::write(&exe, b"\x7fELF").unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = dir.path().join("data.txt");
    std::fs::write(&data, b"data").unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o644)).unwrap();
    Fixture {
        _dir: dir,
        exe,
        data,
    }
}

/// A config with busybox at /bin/busybox and /bin/sh → busybox, plus `body`
/// (`@EXE@` and `@DATA@` stand for the fixture's host files).
fn text(f: &Fixture, body: &str) -> String {
    let body = body
        .replace("@EXE@", &f.exe.display().to_string())
        .replace("@DATA@", &f.data.display().to_string());
    format!(
        "[image]\nname = \"demo\"\nversion = \"1.0.0\"\nhostname = \"edge\"\nboard = \"qemu-virt\"\n\
         [kernel]\npath = \"/k\"\n\
         [[user]]\nname = \"app\"\nuid = 1000\ngid = 1001\n\
         [[file]]\nsrc = \"{}\"\ndst = \"/bin/busybox\"\n\
         [[file]]\ndst = \"/bin/sh\"\nsymlink = \"busybox\"\n\
         {body}",
        f.exe.display()
    )
}

fn run(text: &str) -> Result<Checked, String> {
    let cfg = Config::parse(SourceFile::new("demo.toml".into(), text.to_string()))
        .map_err(|e| e.to_string())?;
    check(
        &cfg,
        &MapEnv::new([("HOME", "/home/u")]),
        false,
        false,
        None,
    )
    .map_err(|e| e.to_string())
}

fn ok(body: &str) -> Checked {
    let f = fixture();
    let t = text(&f, body);
    run(&t).unwrap_or_else(|e| panic!("{e}\nconfig:\n{t}"))
}

/// 1-based line of the `n`th (0-based) line containing `needle`.
fn line(text: &str, needle: &str, n: usize) -> usize {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .nth(n)
        .unwrap_or_else(|| panic!("{needle:?} #{n} not in:\n{text}"))
        .0
        + 1
}

/// `body` must give exactly one error: `want`, at the line of the `n`th `at`.
fn expect(body: &str, at: &str, n: usize, want: &str) {
    let f = fixture();
    let t = text(&f, body);
    let e = match run(&t) {
        Ok(_) => panic!("expected an error for:\n{body}"),
        Err(e) => e,
    };
    let want = want
        .replace("@EXE@", &f.exe.display().to_string())
        .replace("@DATA@", &f.data.display().to_string());
    assert_eq!(
        e,
        format!("demo.toml:{}: {want}", line(&t, at, n)),
        "config:\n{t}"
    );
}

/// Like [`expect`] for messages that end in text owned by another crate.
fn expect_prefix(body: &str, at: &str, n: usize, want: &str) {
    let f = fixture();
    let t = text(&f, body);
    let e = run(&t)
        .err()
        .unwrap_or_else(|| panic!("expected an error for:\n{body}"));
    let want = want
        .replace("@EXE@", &f.exe.display().to_string())
        .replace("@DATA@", &f.data.display().to_string());
    let want = format!("demo.toml:{}: {want}", line(&t, at, n));
    assert!(e.starts_with(&want), "got:  {e}\nwant: {want}…");
    assert_eq!(e.lines().count(), 1, "{e}");
}

const SVC_A: &str = "[[service]]\nname = \"a\"\nexec = [\"/bin/sh\"]\n";

#[test]
fn unknown_keys() {
    expect_prefix(
        &format!("{SVC_A}colour = \"red\"\n"),
        "colour",
        0,
        "unknown field `colour`, expected one of",
    );
    expect_prefix("[extra]\nx = 1\n", "[extra]", 0, "unknown field `extra`");
    expect_prefix(
        "[[file]]\ndst = \"/x\"\nsrc = \"@EXE@\"\nowner = 1\n",
        "owner",
        0,
        "unknown field `owner`",
    );
}

#[test]
fn wrong_types_and_values() {
    expect_prefix(
        &format!("{SVC_A}restart = \"sometimes\"\n"),
        "sometimes",
        0,
        "unknown variant `sometimes`, expected one of `always`, `on-failure`, `never`",
    );
    expect_prefix(
        &format!("{SVC_A}crash_loop = {{ max_restarts = 5, action = \"explode\" }}\n"),
        "explode",
        0,
        "unknown variant `explode`",
    );
    expect_prefix(
        "[[file]]\ndst = \"/x\"\nsrc = \"@EXE@\"\nuid = -1\n",
        "uid = -1",
        0,
        "",
    );
}

#[test]
fn file_errors() {
    expect(
        "[[file]]\ndst = \"/etc/motd\"\n",
        "[[file]]",
        2,
        "file \"/etc/motd\": missing src (or `symlink = \"target\"`, or `dir = true`)",
    );
    expect(
        "[[file]]\ndst = \"/x\"\nsrc = \"@EXE@\"\nsymlink = \"y\"\n",
        "[[file]]",
        2,
        "file \"/x\": give only one of src, symlink and dir = true",
    );
    expect(
        "[[file]]\ndst = \"/bin/sh\"\nsymlink = \"busybox\"\n",
        "dst = \"/bin/sh\"",
        1,
        "file \"/bin/sh\": already defined at demo.toml:16",
    );
    expect(
        "[[file]]\ndst = \"/x\"\nsrc = \"@EXE@\"\nmode = \"0999\"\n",
        "mode",
        0,
        "file \"/x\": mode \"0999\" is not an octal mode like \"0755\" (at most \"07777\")",
    );
    expect(
        "[[file]]\ndst = \"/x\"\nsymlink = \"y\"\nmode = \"0644\"\n",
        "mode",
        0,
        "file \"/x\": a symlink has no mode of its own; remove `mode`",
    );
    expect(
        "[[file]]\ndst = \"usr/bin/x\"\nsrc = \"@EXE@\"\n",
        "usr/bin/x",
        0,
        "file dst: \"usr/bin/x\" is not an absolute path (must start with `/`)",
    );
    expect(
        "[[file]]\ndst = \"/usr/../x\"\nsrc = \"@EXE@\"\n",
        "/usr/../x",
        0,
        "file dst: \"/usr/../x\" contains a `.` or `..` component",
    );
    expect(
        "[[file]]\ndst = \"/etc/passwd\"\nsrc = \"@DATA@\"\n",
        "/etc/passwd",
        0,
        "file \"/etc/passwd\": generated by imagegen (from [[user]])",
    );
    expect(
        "[[file]]\ndst = \"/init\"\nsrc = \"@EXE@\"\n",
        "dst = \"/init\"",
        0,
        "file \"/init\": generated by imagegen (the init binary)",
    );
    expect(
        "[[file]]\ndst = \"/bin/busybox/x\"\nsrc = \"@EXE@\"\n",
        "/bin/busybox/x",
        0,
        "file \"/bin/busybox/x\": parent /bin/busybox is not a directory in the image (defined at demo.toml:14)",
    );
    expect(
        "[[file]]\ndst = \"/run/x\"\nsrc = \"@EXE@\"\n",
        "/run/x",
        0,
        "file \"/run/x\": init mounts a fresh filesystem on /run at boot, which would hide it",
    );
    expect(
        "[[file]]\ndst = \"/lib/modules/x.ko\"\nsrc = \"@DATA@\"\n",
        "x.ko",
        0,
        "file \"/lib/modules/x.ko\": /lib/modules is filled by imagegen with the board's kernel modules; list modules in the board file instead",
    );
    expect_prefix(
        "[[file]]\ndst = \"/x\"\nsrc = \"@EXE@.missing\"\n",
        "missing",
        0,
        "file \"/x\": src @EXE@.missing: No such file or directory",
    );
    expect(
        "[[file]]\ndst = \"/x\"\nsrc = \"$NOT_SET/x\"\n",
        "NOT_SET",
        0,
        "src \"$NOT_SET/x\": environment variable NOT_SET is not set",
    );
}

#[test]
fn file_defaults() {
    let c = ok("[[file]]\ndst = \"/etc/motd\"\nsrc = \"@DATA@\"\n\
                [[file]]\ndst = \"/usr/bin/tool\"\nsrc = \"@EXE@\"\nuid = 1000\ngid = 5\n\
                [[file]]\ndst = \"/srv\"\ndir = true\n\
                [[file]]\ndst = \"/data\"\ndir = true\nmode = \"0700\"\nuid = 1000\n");
    let get = |p: &str| {
        c.set
            .get(&azl_imagepath::ImagePath::parse(p).unwrap())
            .unwrap()
            .clone()
    };
    assert_eq!(
        get("/etc/motd").mode,
        0o644,
        "mode follows the source's x bits"
    );
    let tool = get("/usr/bin/tool");
    assert_eq!((tool.mode, tool.uid, tool.gid), (0o755, 1000, 5));
    assert_eq!(get("/usr").mode, 0o755, "parents are created");
    assert_eq!(get("/srv").mode, 0o755);
    let data = get("/data");
    assert_eq!(
        (data.mode, data.uid),
        (0o700, 1000),
        "a base dir's mode/owner can be set"
    );
}

#[test]
fn service_exec_errors() {
    expect(
        "[[service]]\nname = \"a\"\nexec = [\"/usr/bin/hello\"]\n",
        "exec",
        0,
        "service \"a\": exec[0] \"/usr/bin/hello\" is not provided by the image (/usr does not exist in the image); add a [[file]] with that dst, or a symlink to one",
    );
    expect(
        "[[service]]\nname = \"a\"\nexec = [\"bin/sh\", \"-c\", \"x\"]\n",
        "exec",
        0,
        "service \"a\": exec[0] \"bin/sh\" must be an absolute path (there is no $PATH search)",
    );
    expect(
        "[[service]]\nname = \"a\"\nexec = []\n",
        "exec",
        0,
        "service \"a\": exec is empty; give at least the program path",
    );
    expect(
        "[[file]]\ndst = \"/bin/data\"\nsrc = \"@DATA@\"\n[[service]]\nname = \"a\"\nexec = [\"/bin/data\"]\n",
        "exec",
        0,
        "service \"a\": exec[0] \"/bin/data\" resolves to /bin/data, which is not executable (mode 0644)",
    );
    expect(
        "[[file]]\ndst = \"/bin/x\"\nsymlink = \"/nowhere/x\"\n[[service]]\nname = \"a\"\nexec = [\"/bin/x\"]\n",
        "exec",
        0,
        "service \"a\": exec[0] \"/bin/x\" is not provided by the image (/nowhere does not exist in the image); add a [[file]] with that dst, or a symlink to one",
    );
    expect(
        "[[service]]\nname = \"a\"\nexec = [\"/bin\"]\n",
        "exec",
        0,
        "service \"a\": exec[0] \"/bin\" resolves to /bin, which is not a regular file",
    );
}

#[test]
fn service_exec_through_symlinks_and_init() {
    let c = ok("[[file]]\ndst = \"/usr/bin\"\nsymlink = \"../bin\"\n\
                [[file]]\ndst = \"/usr/sbin/shell\"\nsymlink = \"/usr/bin/sh\"\n\
                [[service]]\nname = \"a\"\nexec = [\"/usr/sbin/shell\"]\n\
                [[service]]\nname = \"b\"\nexec = [\"/sbin/initctl\", \"status\"]\n\
                [[service]]\nname = \"c\"\nexec = [\"/init\"]\n");
    assert_eq!(c.services.services.len(), 3);
}

#[test]
fn service_reference_errors() {
    expect(
        &format!("{SVC_A}after = [\"zz\"]\n"),
        "after",
        0,
        "service \"a\": after names unknown service \"zz\"",
    );
    expect(
        &format!("{SVC_A}user = \"nobody\"\n"),
        "nobody",
        0,
        "service \"a\": unknown user \"nobody\" (define it in [[user]], or use a numeric uid)",
    );
    expect(
        &format!("{SVC_A}group = \"wheel\"\n"),
        "wheel",
        0,
        "service \"a\": unknown group \"wheel\" (each [[user]] defines a group of its name; or use a numeric gid)",
    );
    expect(
        &format!("{SVC_A}{SVC_A}"),
        "name = \"a\"",
        1,
        "service \"a\" is defined twice (first at line 19)",
    );
    expect_prefix(
        "[[service]]\nname = \"bad name\"\nexec = [\"/bin/sh\"]\n",
        "bad name",
        0,
        "service name \"bad name\" is invalid",
    );
    expect(
        &format!("{SVC_A}workdir = \"/srv\"\n"),
        "workdir",
        0,
        "service \"a\": workdir \"/srv\" is not a directory in the image (/srv does not exist in the image)",
    );
    expect(
        &format!("{SVC_A}memory_max = \"64X\"\n"),
        "memory_max",
        0,
        "service \"a\": memory_max \"64X\" is not a size like \"64M\" or a number of bytes (K, M, G are powers of 1024)",
    );
    expect(
        &format!("{SVC_A}restart_delay_ms = 5000\nrestart_delay_max_ms = 1000\n"),
        "restart_delay_max_ms",
        0,
        "service \"a\": restart_delay_ms (5000) is larger than restart_delay_max_ms (1000)",
    );
    expect(
        &format!("{SVC_A}env = {{ \"1X\" = \"v\" }}\n"),
        "env",
        0,
        "service \"a\": env key \"1X\" is invalid (letters, digits and `_`, not starting with a digit)",
    );
}

#[test]
fn cycles_are_printed_as_paths() {
    let svc = |n: &str, after: &str| {
        format!("[[service]]\nname = \"{n}\"\nexec = [\"/bin/sh\"]\nafter = [{after}]\n")
    };
    let body = [svc("a", "\"c\""), svc("b", "\"a\""), svc("c", "\"b\"")].concat();
    expect(
        &body,
        "after = [\"c\"]",
        0,
        "services wait for each other in a cycle: a → c → b → a",
    );
    expect(
        &svc("self", "\"self\""),
        "after",
        0,
        "services wait for each other in a cycle: self → self",
    );
}

#[test]
fn several_errors_at_once() {
    let f = fixture();
    let t = text(
        &f,
        "[[file]]\ndst = \"/x\"\n\
         [[service]]\nname = \"a\"\nexec = [\"/nope\"]\nuser = \"ghost\"\nafter = [\"b\"]\n",
    );
    let e = run(&t).unwrap_err();
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 4, "{e}");
    assert!(lines.iter().all(|l| l.starts_with("demo.toml:")), "{e}");
}

#[test]
fn image_and_user_errors() {
    let f = fixture();
    let t = text(&f, "").replace("name = \"demo\"", "name = \"-demo\"");
    let e = run(&t).unwrap_err();
    assert!(
        e.starts_with("demo.toml:2: image name \"-demo\" is invalid"),
        "{e}"
    );
    expect(
        "[[user]]\nname = \"app\"\nuid = 1002\ngid = 1002\n",
        "name = \"app\"",
        1,
        "user \"app\" is defined twice (first at line 9)",
    );
    expect_prefix(
        "[[user]]\nname = \"Bad\"\nuid = 1002\ngid = 1002\n",
        "Bad",
        0,
        "user name \"Bad\" is invalid",
    );
}

#[test]
fn services_defaults_and_order() {
    let c = ok(
        "[[service]]\nname = \"web\"\nexec = [\"/bin/sh\", \"-c\", \"x\"]\nafter = [\"db\", \"net\"]\nuser = \"app\"\n\
         [[service]]\nname = \"log\"\nexec = [\"/bin/sh\"]\n\
         [[service]]\nname = \"db\"\nexec = [\"/bin/sh\"]\nafter = [\"net\"]\nuser = 1000\ngroup = 7\n\
         memory_max = \"64M\"\nready = \"notify\"\nrestart = \"always\"\nstop_timeout_ms = 900\n\
         crash_loop = { max_restarts = 2, action = \"reboot\" }\nenv = { B = \"2\", A = \"1\" }\nworkdir = \"/data\"\n\
         [[service]]\nname = \"net\"\nexec = [\"/bin/sh\"]\nuser = 4242\nrestart_delay_ms = 60000\n",
    );
    let t = &c.services;
    t.validate().unwrap();
    let order: Vec<&str> = t.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        order,
        ["log", "net", "db", "web"],
        "dependencies first, config order otherwise"
    );
    let s = |n: &str| t.services.iter().find(|s| s.name.as_str() == n).unwrap();
    let log = s("log");
    assert_eq!((log.uid, log.gid), (0, 0));
    assert_eq!(log.restart, RestartPolicy::OnFailure);
    assert_eq!(
        (log.restart_delay_ms, log.restart_delay_max_ms),
        (500, 30_000)
    );
    assert_eq!(
        (
            log.crash_loop.max_restarts,
            log.crash_loop.window_s,
            log.crash_loop.action
        ),
        (5, 60, CrashLoopAction::GiveUp)
    );
    assert_eq!(
        (log.ready, log.memory_max, log.stop_timeout_ms, &log.workdir),
        (Readiness::Started, None, None, &None)
    );
    assert_eq!(
        (s("web").uid, s("web").gid),
        (1000, 1001),
        "a named user brings its group"
    );
    let db = s("db");
    assert_eq!((db.uid, db.gid), (1000, 7));
    assert_eq!(db.memory_max, Some(64 << 20));
    assert_eq!(
        (db.ready, db.restart, db.stop_timeout_ms),
        (Readiness::Notify, RestartPolicy::Always, Some(900))
    );
    assert_eq!(
        (
            db.crash_loop.max_restarts,
            db.crash_loop.window_s,
            db.crash_loop.action
        ),
        (2, 60, CrashLoopAction::Reboot)
    );
    assert_eq!(
        db.env,
        [
            ("A".to_string(), "1".to_string()),
            ("B".to_string(), "2".to_string())
        ]
    );
    assert_eq!(db.workdir.as_deref(), Some("/data"));
    let net = s("net");
    assert_eq!(
        (net.uid, net.gid),
        (4242, 4242),
        "an unknown numeric uid: same gid"
    );
    assert_eq!(
        (net.restart_delay_ms, net.restart_delay_max_ms),
        (60_000, 60_000)
    );
    assert_eq!(
        s("web")
            .after
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>(),
        ["db", "net"]
    );
}

/// Checking `n` generated services (`after(i)` gives service i's `after`
/// list) must take time linear-ish in `n`: it was quadratic (34 s for
/// 100k services, 90 s with an `after` chain, in release builds).
fn check_many(
    n: usize,
    after: impl Fn(usize) -> String,
) -> (Result<Checked, String>, std::time::Duration) {
    let f = fixture();
    let mut body = String::with_capacity(n * 64);
    for i in 0..n {
        body.push_str(&format!(
            "[[service]]\nname = \"s{i}\"\nexec = [\"/bin/sh\"]\nafter = [{}]\n",
            after(i)
        ));
    }
    let t = text(&f, &body);
    let start = std::time::Instant::now();
    let r = run(&t);
    (r, start.elapsed())
}

/// Generous: a linear check of 100k services takes about 25 s in a debug
/// build here; the quadratic one ran over 8 minutes without finishing.
const SCALE_BOUND: std::time::Duration = std::time::Duration::from_secs(120);
const SCALE_N: usize = 100_000;

#[test]
fn scale_100k_independent_services() {
    let (r, took) = check_many(SCALE_N, |_| String::new());
    let c = r.unwrap();
    assert_eq!(c.services.services.len(), SCALE_N);
    assert!(took < SCALE_BOUND, "100k services took {took:?}");
}

#[test]
fn scale_100k_long_after_chain() {
    // s0 after s1 after … after s99999: the start order is the reverse.
    let (r, took) = check_many(SCALE_N, |i| {
        if i + 1 < SCALE_N {
            format!("\"s{}\"", i + 1)
        } else {
            String::new()
        }
    });
    let c = r.unwrap();
    let t = &c.services.services;
    assert_eq!(t.len(), SCALE_N);
    assert_eq!(
        t.first().unwrap().name.as_str(),
        format!("s{}", SCALE_N - 1)
    );
    assert_eq!(t.last().unwrap().name.as_str(), "s0");
    assert!(took < SCALE_BOUND, "a 100k after chain took {took:?}");
}

#[test]
fn scale_one_service_after_100k_others() {
    let (r, took) = check_many(SCALE_N, |i| {
        if i == 0 {
            // Every other service, and each twice (duplicates are harmless).
            (1..SCALE_N)
                .chain(1..SCALE_N)
                .map(|j| format!("\"s{j}\""))
                .collect::<Vec<_>>()
                .join(",")
        } else {
            String::new()
        }
    });
    let c = r.unwrap();
    let t = &c.services.services;
    assert_eq!(t.last().unwrap().name.as_str(), "s0");
    assert_eq!(t.last().unwrap().after.len(), SCALE_N - 1);
    assert!(took < SCALE_BOUND, "100k-wide after took {took:?}");
}

#[test]
fn scale_100k_long_cycle() {
    // s0 after s1 after … after s99999 after s0.
    let (r, took) = check_many(SCALE_N, |i| format!("\"s{}\"", (i + 1) % SCALE_N));
    let e = r.unwrap_err();
    assert!(
        e.contains("services wait for each other in a cycle: s0 → s1 → s2 → "),
        "{}",
        e.get(..300).unwrap_or(&e)
    );
    assert!(
        e.trim_end().ends_with("s99999 → s0"),
        "…{}",
        e.get(e.len() - 100..).unwrap_or(&e)
    );
    assert!(took < SCALE_BOUND, "a 100k cycle took {took:?}");
}

/// What init refuses (azl_formats::limits) is refused at build time, with
/// the line, the service and the limit.
#[test]
fn limits_init_enforces() {
    let args = |n: usize| {
        std::iter::once("\"/bin/sh\"".to_string())
            .chain((1..n).map(|i| format!("\"a{i}\"")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let env = |n: usize| {
        (0..n)
            .map(|i| format!("K{i} = \"v\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let svc = |exec: String, env: String| {
        format!("[[service]]\nname = \"big\"\nexec = [{exec}]\nenv = {{ {env} }}\n")
    };
    let max_env = azl_formats::limits::MAX_SERVICE_ENV;
    // At the limits: accepted.
    ok(&svc(args(63), env(max_env)));
    expect(
        &svc(args(64), env(1)),
        "exec = [",
        0,
        "service \"big\": exec has 64 arguments, at most 63 are supported",
    );
    expect(
        &svc(args(1), env(max_env + 1)),
        "env = {",
        0,
        &format!(
            "service \"big\": env has {} entries, at most {max_env} are supported",
            max_env + 1
        ),
    );
    let range = "is out of range (0..=4294967294; 4294967295 means \"unchanged\" to the kernel)";
    expect(
        &format!("{SVC_A}user = 4294967295\n"),
        "user = 4294967295",
        0,
        &format!("service \"a\": user 4294967295 {range}"),
    );
    expect(
        &format!("{SVC_A}group = 4294967295\n"),
        "group = 4294967295",
        0,
        &format!("service \"a\": group 4294967295 {range}"),
    );
    expect(
        "[[user]]\nname = \"max\"\nuid = 4294967295\ngid = 5\n",
        "uid = 4294967295",
        0,
        &format!("user \"max\": uid 4294967295 {range}"),
    );
    expect(
        "[[user]]\nname = \"max\"\nuid = 5\ngid = 4294967295\n",
        "gid = 4294967295",
        0,
        &format!("user \"max\": gid 4294967295 {range}"),
    );
    // The largest valid id is fine.
    ok("[[user]]\nname = \"max\"\nuid = 4294967294\ngid = 4294967294\n");
}
