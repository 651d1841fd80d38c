//! Harness for the end-to-end tests: finds the built artifacts (imagegen,
//! the aarch64 init, the cached kernels, busybox for test services), writes
//! image configs, builds them with the real `imagegen build`, boots them
//! with the real `imagegen run` (QEMU, optionally swtpm) and gives the
//! serial log back for assertions.
//!
//! Nothing is mocked: a missing artifact is a test failure that says which
//! script produces it (`scripts/test.sh` runs them all).
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub use tempfile::TempDir;

pub mod attested;
pub mod bench;
pub mod floor;
pub mod update;

/// Which kernel to boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// Debian's stock modular arm64 kernel: virtio, dm-verity, … are modules.
    Debian,
    /// The small kernel built from linux-source-6.1 with the board fragment.
    Small,
}

impl Kernel {
    pub fn dir(self) -> PathBuf {
        let name = match self {
            Kernel::Debian => "debian-6.1",
            Kernel::Small => "small-6.1",
        };
        let d = cache().join("kernels").join(name);
        assert!(
            d.is_dir(),
            "kernel {} missing: run scripts/kernels.sh (or scripts/test.sh)",
            d.display()
        );
        d
    }
}

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

pub fn cache() -> PathBuf {
    match std::env::var_os("AZL_CACHE") {
        Some(c) => PathBuf::from(c),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
            .join(".cache/azl-edge"),
    }
}

fn artifact(env: &str, default: PathBuf, how: &str) -> PathBuf {
    let p = std::env::var_os(env).map(PathBuf::from).unwrap_or(default);
    assert!(p.exists(), "{} missing ({how}; or set {env})", p.display());
    p
}

pub fn imagegen() -> PathBuf {
    artifact(
        "AZL_IMAGEGEN",
        workspace().join("target/release/imagegen"),
        "cargo build --release -p imagegen",
    )
}

pub fn init_binary() -> PathBuf {
    artifact(
        "AZL_INIT",
        workspace().join("target/aarch64-unknown-linux-musl/release/init"),
        "cargo build --release -p azl-init --target aarch64-unknown-linux-musl",
    )
}

pub fn busybox() -> PathBuf {
    artifact(
        "AZL_BUSYBOX",
        cache().join("guest/busybox-arm64/bin/busybox"),
        "run scripts/guest-tools.sh",
    )
}

/// Busybox applets test services use.
const APPLETS: &[&str] = &[
    "sh", "sleep", "echo", "cat", "ls", "kill", "grep", "ps", "hostname", "test", "true", "false",
    "wc", "mount", "sync", "date", "head", "tail", "stat", "dd", "rm", "mkdir", "touch", "sed",
    "awk", "seq", "env", "id", "uptime",
];

/// An image config under construction. `body` holds `[[service]]`,
/// `[[file]]`, … sections in TOML; busybox is always included.
pub struct Image {
    pub name: String,
    pub kernel: Kernel,
    pub body: String,
    pub board: Option<PathBuf>,
    pub cmdline: String,
    /// `[image] root`: "initramfs" (everything in the initramfs) or "disk"
    /// (verified squashfs root on a GPT disk image).
    pub root: &'static str,
    /// Extra `imagegen build` arguments (`--key K`, `--insecure-unsigned`).
    pub build_args: Vec<String>,
    /// `[image] version` (default "1.0.0").
    pub version: String,
    /// `[image] security_version` (unset: imagegen's default, 0).
    pub security_version: Option<u32>,
}

impl Image {
    pub fn new(name: &str, kernel: Kernel) -> Image {
        Image {
            name: name.into(),
            kernel,
            body: String::new(),
            board: None,
            cmdline: String::new(),
            root: "initramfs",
            build_args: Vec::new(),
            version: "1.0.0".into(),
            security_version: None,
        }
    }

    /// Set `[image] version` and `security_version`.
    pub fn release(mut self, version: &str, security_version: u32) -> Image {
        self.version = version.into();
        self.security_version = Some(security_version);
        self
    }

    /// A verified-disk image signed with `key` (from [`keygen`]).
    pub fn disk(mut self, key: &Path) -> Image {
        self.root = "disk";
        self.build_args = vec!["--key".into(), key.display().to_string()];
        self
    }

    /// A verified-disk image without a signature (`--insecure-unsigned`).
    pub fn disk_unsigned(mut self) -> Image {
        self.root = "disk";
        self.build_args = vec!["--insecure-unsigned".into()];
        self
    }

    /// Add TOML sections.
    pub fn with(mut self, toml: &str) -> Image {
        self.body.push_str(toml);
        self.body.push('\n');
        self
    }

    /// Add a shell-script service (`/bin/sh -c SCRIPT`) with extra keys.
    pub fn sh_service(self, name: &str, script: &str, extra: &str) -> Image {
        let script = toml_str(script);
        self.with(&format!(
            "[[service]]\nname = \"{name}\"\nexec = [\"/bin/sh\", \"-c\", {script}]\n{extra}\n"
        ))
    }

    /// Add a service that powers the machine off once `after` are ready,
    /// after running `script` (whose output lands in the log).
    pub fn finisher(self, after: &[&str], script: &str) -> Image {
        let after: Vec<String> = after.iter().map(|a| format!("\"{a}\"")).collect();
        let body = format!("{script}\n/sbin/initctl poweroff");
        self.sh_service(
            "finish",
            &body,
            &format!("restart = \"never\"\nafter = [{}]", after.join(", ")),
        )
    }

    /// Add busybox applet links beyond the default set.
    pub fn with_applets(mut self, applets: &[&str]) -> Image {
        for a in applets {
            self.body.push_str(&format!(
                "\n[[file]]\nsymlink = \"busybox\"\ndst = \"/bin/{a}\"\n"
            ));
        }
        self
    }

    pub fn board_file(mut self, path: PathBuf) -> Image {
        self.board = Some(path);
        self
    }

    pub fn config_text(&self) -> String {
        let board = match &self.board {
            Some(p) => p.display().to_string(),
            None => "qemu-virt".into(),
        };
        let mut s = format!(
            "[image]\nname = \"{}\"\nversion = {}\nhostname = \"testhost\"\nroot = \"{}\"\nboard = {}\ninit = {}\n{}\n[kernel]\npath = {}\n",
            self.name,
            toml_str(&self.version),
            self.root,
            toml_str(&board),
            toml_str(&init_binary().display().to_string()),
            self.security_version
                .map(|v| format!("security_version = {v}\n"))
                .unwrap_or_default(),
            toml_str(&self.kernel.dir().display().to_string()),
        );
        if !self.cmdline.is_empty() {
            s.push_str(&format!("cmdline = {}\n", toml_str(&self.cmdline)));
        }
        s.push_str(&format!(
            "\n[[file]]\nsrc = {}\ndst = \"/bin/busybox\"\nmode = \"0755\"\n",
            toml_str(&busybox().display().to_string())
        ));
        for a in APPLETS {
            s.push_str(&format!(
                "\n[[file]]\nsymlink = \"busybox\"\ndst = \"/bin/{a}\"\n"
            ));
        }
        s.push('\n');
        s.push_str(&self.body);
        s
    }

    /// Write the config into `dir` and run `imagegen build`; panics with
    /// imagegen's stderr on failure.
    pub fn build(&self, dir: &Path) -> PathBuf {
        let out = dir.join("out");
        let args: Vec<&str> = self.build_args.iter().map(String::as_str).collect();
        let r = build_config(dir, &self.config_text(), &args);
        assert!(
            r.ok,
            "imagegen build failed:\n{}\n--- config ---\n{}",
            r.stderr,
            self.config_text()
        );
        out
    }
}

/// Quote a string for TOML.
pub fn toml_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// Result of running imagegen.
pub struct CmdResult {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Write `config` to `dir/image.toml` and run `imagegen build --config … -o dir/out EXTRA`.
pub fn build_config(dir: &Path, config: &str, extra: &[&str]) -> CmdResult {
    let cfg = dir.join("image.toml");
    std::fs::write(&cfg, config).unwrap_or_else(|e| panic!("write {}: {e}", cfg.display()));
    let out = dir.join("out");
    let mut cmd = Command::new(imagegen());
    cmd.arg("build")
        .arg("--config")
        .arg(&cfg)
        .arg("-o")
        .arg(&out)
        .args(extra);
    run(cmd)
}

pub fn run(mut cmd: Command) -> CmdResult {
    run_mut(&mut cmd)
}

/// Run a command built in place (`run_mut(Command::new("x").arg(..))`).
pub fn run_mut(cmd: &mut Command) -> CmdResult {
    let o = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    CmdResult {
        ok: o.status.success(),
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into(),
        stderr: String::from_utf8_lossy(&o.stderr).into(),
    }
}

/// Options for one boot.
#[derive(Default)]
pub struct Boot {
    pub tpm: bool,
    pub disks: Vec<PathBuf>,
    pub timeout: Option<Duration>,
    pub append: String,
}

/// What a boot produced.
pub struct Booted {
    pub code: Option<i32>,
    pub serial: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Booted {
    /// Index of the first serial line containing `needle`, or a panic that
    /// shows the log.
    pub fn line(&self, needle: &str) -> usize {
        self.serial
            .lines()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("serial log lacks {needle:?}\n{}", self.dump()))
    }

    pub fn has(&self, needle: &str) -> bool {
        self.serial.contains(needle)
    }

    pub fn count(&self, needle: &str) -> usize {
        self.serial.lines().filter(|l| l.contains(needle)).count()
    }

    /// Assert the needles appear in this order (first occurrences).
    pub fn assert_order(&self, needles: &[&str]) {
        let idx: Vec<usize> = needles.iter().map(|n| self.line(n)).collect();
        assert!(
            idx.windows(2).all(|w| w[0] < w[1]),
            "expected order {needles:?}, got lines {idx:?}\n{}",
            self.dump()
        );
    }

    pub fn assert_clean_poweroff(&self) {
        assert_eq!(self.code, Some(0), "QEMU exit code\n{}", self.dump());
        self.line("shutdown: power off");
        self.line("reboot: Power down");
    }

    /// Text after a marker line like `value=…` printed by a test service.
    pub fn value(&self, key: &str) -> String {
        let needle = format!("{key}=");
        let l = self.line(&needle);
        let line = self.serial.lines().nth(l).unwrap_or_default();
        line.split(&needle)
            .nth(1)
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    pub fn dump(&self) -> String {
        format!(
            "--- serial ({:?}, exit {:?}) ---\n{}\n--- stderr ---\n{}",
            self.elapsed, self.code, self.serial, self.stderr
        )
    }
}

/// The `imagegen run` command for `opts` (timeout `default` when unset).
pub fn run_command(out: &Path, opts: &Boot, default: Duration) -> Command {
    let timeout = opts.timeout.unwrap_or(default);
    let mut cmd = Command::new(imagegen());
    cmd.arg("run")
        .arg(out)
        .arg("--timeout")
        .arg(timeout.as_secs().to_string());
    if opts.tpm {
        cmd.arg("--tpm");
    }
    for d in &opts.disks {
        cmd.arg("--disk").arg(d);
    }
    if !opts.append.is_empty() {
        cmd.arg("--append").arg(&opts.append);
    }
    cmd
}

/// Boot an imagegen output directory with `imagegen run`.
pub fn boot(out: &Path, opts: &Boot) -> Booted {
    let cmd = run_command(out, opts, Duration::from_secs(120));
    let start = Instant::now();
    let r = run(cmd);
    let b = Booted {
        code: r.code,
        serial: r.stdout,
        stderr: r.stderr,
        elapsed: start.elapsed(),
    };
    assert_ne!(b.code, Some(124), "boot timed out\n{}", b.dump());
    b
}

/// A raw disk image of `mib` MiB (sparse).
pub fn blank_disk(dir: &Path, name: &str, mib: u64) -> PathBuf {
    let p = dir.join(name);
    let f = std::fs::File::create(&p).unwrap_or_else(|e| panic!("create {}: {e}", p.display()));
    f.set_len(mib << 20)
        .unwrap_or_else(|e| panic!("size {}: {e}", p.display()));
    p
}

/// A copy of the qemu-virt board file with `(from, to)` text replacements,
/// written into `dir` (for tests that need other board settings).
pub fn board_variant(dir: &Path, replacements: &[(&str, &str)]) -> PathBuf {
    let src = workspace().join("boards/qemu-virt.toml");
    let mut text =
        std::fs::read_to_string(&src).unwrap_or_else(|e| panic!("read {}: {e}", src.display()));
    for (from, to) in replacements {
        assert!(text.contains(from), "board file lacks {from:?}");
        text = text.replace(from, to);
    }
    let dst = dir.join("board.toml");
    std::fs::write(&dst, text).unwrap_or_else(|e| panic!("write {}: {e}", dst.display()));
    // Keep the fragment reference valid next to the copy.
    let frag = workspace().join("boards/qemu-virt.config");
    if frag.exists() {
        let _ = std::fs::copy(&frag, dir.join("qemu-virt.config"));
    }
    dst
}

pub fn tempdir() -> TempDir {
    tempfile::Builder::new()
        .prefix("azl-e2e-")
        .tempdir()
        .unwrap_or_else(|e| panic!("tempdir: {e}"))
}

/// `imagegen keygen -o DIR/NAME`: returns the private key path
/// (`NAME.pub` holds the raw public key).
pub fn keygen(dir: &Path, name: &str) -> PathBuf {
    let key = dir.join(name);
    let mut cmd = Command::new(imagegen());
    cmd.arg("keygen").arg("-o").arg(&key);
    let r = run(cmd);
    assert!(r.ok, "imagegen keygen failed:\n{}", r.stderr);
    key
}

/// A GPT partition as the reference tool `sfdisk --json` reports it.
#[derive(Debug, Clone)]
pub struct RefPartition {
    pub name: String,
    pub offset: u64,
    pub size: u64,
}

/// The partitions of a disk image, read with `sfdisk --json` (not our code).
pub fn sfdisk_partitions(disk: &Path) -> Vec<RefPartition> {
    let mut cmd = Command::new("sfdisk");
    cmd.arg("--json").arg(disk);
    let r = run(cmd);
    assert!(r.ok, "sfdisk --json {}: {}", disk.display(), r.stderr);
    let v: serde_json::Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("sfdisk json: {e}"));
    let parts = v["partitiontable"]["partitions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    parts
        .iter()
        .map(|p| RefPartition {
            name: p["name"].as_str().unwrap_or_default().to_string(),
            offset: p["start"].as_u64().unwrap_or(0) * 512,
            size: p["size"].as_u64().unwrap_or(0) * 512,
        })
        .collect()
}

pub fn partition(disk: &Path, name: &str) -> RefPartition {
    sfdisk_partitions(disk)
        .into_iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no partition {name} in {}", disk.display()))
}

/// Read `len` bytes at `offset` of a file.
pub fn read_at(path: &Path, offset: u64, len: usize) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut buf = vec![0u8; len];
    f.read_exact_at(&mut buf, offset)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    buf
}

/// Overwrite bytes at `offset` of a file.
pub fn write_at(path: &Path, offset: u64, data: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    f.write_all_at(data, offset)
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Copy a partition's bytes out of a disk image into its own file.
pub fn extract_partition(disk: &Path, name: &str, dst: &Path) -> RefPartition {
    let p = partition(disk, name);
    let bytes = read_at(disk, p.offset, p.size as usize);
    std::fs::write(dst, bytes).unwrap_or_else(|e| panic!("write {}: {e}", dst.display()));
    p
}

/// `imagegen inspect --json IMAGE`, parsed.
pub fn inspect_json(image: &Path) -> serde_json::Value {
    let mut cmd = Command::new(imagegen());
    cmd.arg("inspect").arg("--json").arg(image);
    let r = run(cmd);
    serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("inspect --json: {e}\n{}\n{}", r.stdout, r.stderr))
}

/// Read a file from the image's data partition (ext4) after a run, with the
/// reference tool `debugfs` — the way a user would pull a report off an
/// SD card or disk image.
pub fn data_file(out: &Path, path: &str) -> Option<Vec<u8>> {
    let disk = out.join("disk.img");
    let tmp = tempdir();
    let data = tmp.path().join("data.img");
    extract_partition(&disk, "data", &data);
    let dst = tmp.path().join("file");
    let r = run_mut(
        Command::new("debugfs")
            .arg("-R")
            .arg(format!("dump {path} {}", dst.display()))
            .arg(&data),
    );
    assert!(r.ok, "debugfs: {}", r.stderr);
    std::fs::read(&dst).ok()
}

/// Run `imagegen attest ARGS…`.
pub fn attest(args: &[&str]) -> CmdResult {
    run_mut(Command::new(imagegen()).arg("attest").args(args))
}

/// A boot started in the background (for the power-cut campaign): `imagegen
/// run` in its own process group, so QEMU (its child) can be killed with it
/// at a chosen instant. The serial log goes to `log`.
pub struct Running {
    child: std::process::Child,
    log: PathBuf,
    pub started: Instant,
}

impl Running {
    pub fn start(out: &Path, opts: &Boot, log: &Path) -> Running {
        use std::os::unix::process::CommandExt;
        let file =
            std::fs::File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let mut cmd = run_command(out, opts, Duration::from_secs(120));
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run imagegen run: {e}"));
        Running {
            child,
            log: log.to_path_buf(),
            started: Instant::now(),
        }
    }

    /// Wait until the serial log shows `marker`, then cut `delay` later
    /// (or at `limit` after the start if the marker never comes). Returns
    /// what [`Running::cut_at`] returns and, if seen, when the marker came
    /// (since the start).
    pub fn cut_after(
        mut self,
        marker: &str,
        delay: Duration,
        limit: Duration,
    ) -> (Option<Option<i32>>, Option<Duration>) {
        let mut seen: Option<Duration> = None;
        loop {
            let now = self.started.elapsed();
            if let Some(at) = seen {
                let until = (at + delay).min(limit);
                return (self.cut_at(until), seen);
            }
            if now >= limit || self.ended() {
                return (self.cut_at(limit), seen);
            }
            let text = std::fs::read(&self.log).unwrap_or_default();
            if text.windows(marker.len()).any(|w| w == marker.as_bytes()) {
                seen = Some(now);
            } else {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    fn ended(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Wait until the boot ends by itself or `until` has passed since it
    /// started; then SIGKILL the whole group (imagegen and QEMU) — a power
    /// cut. Returns `Some(exit code)` if it ended by itself, `None` if cut.
    pub fn cut_at(mut self, until: Duration) -> Option<Option<i32>> {
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status.code()),
                Ok(None) => {}
                Err(e) => panic!("wait for imagegen run: {e}"),
            }
            if self.started.elapsed() >= until {
                let pgid = format!("-{}", self.child.id());
                let r = run_mut(Command::new("kill").args(["-KILL", "--", &pgid]));
                assert!(r.ok, "kill -KILL {pgid}: {}", r.stderr);
                let _ = self.child.wait();
                // QEMU is imagegen's child: wait until the group is gone (it
                // holds the disk image's lock until it has exited).
                let gone = Instant::now();
                while run_mut(Command::new("kill").args(["-0", "--", &pgid])).ok {
                    assert!(
                        gone.elapsed() < Duration::from_secs(10),
                        "QEMU survived SIGKILL"
                    );
                    std::thread::sleep(Duration::from_millis(10));
                }
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// A shared fixture's directory: `root` emptied and recreated, and a fresh
/// `run-*` directory in it. Statics are never dropped, so fixtures live
/// under the target directory (`CARGO_TARGET_TMPDIR`), replaced on each
/// run, rather than leak a /tmp directory.
pub fn fixture_dir(root: &Path) -> TempDir {
    let _ = std::fs::remove_dir_all(root);
    std::fs::create_dir_all(root).unwrap_or_else(|e| panic!("mkdir {}: {e}", root.display()));
    tempfile::Builder::new()
        .prefix("run-")
        .tempdir_in(root)
        .unwrap_or_else(|e| panic!("tempdir: {e}"))
}
