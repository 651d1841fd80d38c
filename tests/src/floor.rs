//! Pieces of the anti-rollback floor tests (`tests/update_floor.rs`): the
//! v1/v2 images and bundles, boots with a control script, the boot-state
//! partition saved and written back (a restored old copy), and the TPM NV
//! floor index read on the host with tpm2-tools from the swtpm state the
//! device's boots left in the output directory.
use crate::update::{bundle, control_boot, with_agent};
use crate::{keygen, partition, read_at, run_mut, toml_str, write_at, Booted, Image};
use crate::{Kernel, TempDir};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Guest shell prelude: `U` is the update face; `st KEY` prints
/// `KEY={status json}` on one line; `gate_wait` waits for the trial's
/// health gate outcome and prints `gate=OUTCOME`.
pub const PRELUDE: &str = r#"U='/sbin/init update'
st() { echo "$1=$($U status --json | tr -d '\n')"; }
gate_wait() { i=0; while [ $i -lt 150 ]; do g=$($U status --json | sed -n 's/.*"gate":"\([^"]*\)".*/\1/p'); case "$g" in ""|committed|awaiting-commit|failed*|commit-failed*) echo "gate=$g"; return 0;; esac; sleep 1; i=$((i+1)); done; echo gate=timeout; }
"#;

/// The test image at `version` / `security_version`, `/etc/release` = `tag`,
/// its trial committed by the health gate after a 2 s hold.
pub fn image(key: &Path, files: &Path, tag: &str, version: &str, sv: u32) -> Image {
    let rel = files.join(format!("release-{tag}"));
    std::fs::write(&rel, format!("{tag}\n")).unwrap_or_else(|e| panic!("write release: {e}"));
    with_agent(
        Image::new("edge", Kernel::Small)
            .disk(key)
            .release(version, sv)
            .with(&format!(
                "[[file]]\nsrc = {}\ndst = \"/etc/release\"\nmode = \"0644\"\n\n[update]\ncommit = \"local\"\nhold_s = 2\nready_deadline_s = 60\n",
                toml_str(&rel.display().to_string())
            )),
    )
}

/// v1 (1.0.0, security version 1) as a disk image; v2 (2.0.0, security
/// version 2) as a root-b bundle; v1 again as bundles for root-a and
/// root-b: the same key and board throughout.
pub struct Fixture {
    pub dir: TempDir,
    /// v1's output directory (disk image; swtpm state appears in `tpm/`).
    pub v1: PathBuf,
    pub v2: PathBuf,
    pub v1_root_a: PathBuf,
    pub v1_root_b: PathBuf,
}

pub fn fixture() -> Fixture {
    let dir = crate::tempdir();
    let d = dir.path();
    let key = keygen(d, "fleet.key");
    let v1dir = d.join("v1");
    std::fs::create_dir_all(&v1dir).unwrap_or_default();
    let v1 = image(&key, d, "v1", "1.0.0", 1).build(&v1dir);
    let b = |name: &str, tag: &str, version: &str, sv: u32, slot: &str| {
        let bd = d.join(format!("b-{name}"));
        std::fs::create_dir_all(&bd).unwrap_or_default();
        bundle(
            &image(&key, d, tag, version, sv),
            &bd,
            &format!("{name}.bundle"),
            slot,
            &[],
        )
    };
    let v2 = b("v2", "v2", "2.0.0", 2, "root-b");
    let v1_root_a = b("v1-root-a", "v1", "1.0.0", 1, "root-a");
    let v1_root_b = b("v1-root-b", "v1", "1.0.0", 1, "root-b");
    Fixture {
        dir,
        v1,
        v2,
        v1_root_a,
        v1_root_b,
    }
}

/// A private copy of v1's output directory.
pub fn device(f: &Fixture, dir: &Path) -> PathBuf {
    let dst = dir.join("dev");
    let r = run_mut(
        Command::new("cp")
            .args(["-a", "--sparse=always"])
            .arg(&f.v1)
            .arg(&dst),
    );
    assert!(r.ok, "cp: {}", r.stderr);
    dst
}

/// Boot `out` with the control script (after [`PRELUDE`]) and `disks`
/// (`$D1`, … in it).
pub fn step(
    out: &Path,
    dir: &Path,
    n: usize,
    script: &str,
    disks: &[PathBuf],
    tpm: bool,
) -> Booted {
    control_boot(out, dir, n, &format!("{PRELUDE}{script}"), disks, tpm, "")
}

/// The whole boot-state partition of `disk`.
pub fn save_bootstate(disk: &Path) -> Vec<u8> {
    let p = partition(disk, "bootstate");
    read_at(disk, p.offset, p.size as usize)
}

/// Write a saved boot-state partition back (an old copy restored by
/// someone with the disk).
pub fn restore_bootstate(disk: &Path, bytes: &[u8]) {
    let p = partition(disk, "bootstate");
    assert_eq!(
        bytes.len() as u64,
        p.size,
        "not a whole boot-state partition"
    );
    write_at(disk, p.offset, bytes);
}

/// The floor index as tpm2-tools read it from the swtpm state in
/// `out/tpm` (a copy, so the device's TPM is untouched): the
/// `tpm2_nvreadpublic` YAML and the 8 data bytes (`tpm2_nvread`).
pub fn nv_floor_on_host(out: &Path, dir: &Path) -> (String, Vec<u8>) {
    let state = dir.join("tpm-copy");
    let _ = std::fs::remove_dir_all(&state);
    let r = run_mut(
        Command::new("cp")
            .arg("-a")
            .arg(out.join("tpm"))
            .arg(&state),
    );
    assert!(r.ok, "cp tpm state: {}", r.stderr);
    let sock = state.join("srv");
    let mut child = Command::new("swtpm")
        .args(["socket", "--tpm2", "--tpmstate"])
        .arg(format!("dir={}", state.display()))
        .arg("--server")
        .arg(format!("type=unixio,path={}", sock.display()))
        .arg("--ctrl")
        .arg(format!("type=unixio,path={}.ctrl", sock.display()))
        .args(["--flags", "not-need-init,startup-clear"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("swtpm: {e}"));
    let t = Instant::now();
    while !sock.exists() {
        assert!(t.elapsed() < Duration::from_secs(10), "swtpm did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let index = format!("0x{:08X}", azl_formats::nvfloor::INDEX);
    let tool = |args: &[&str]| {
        let o = Command::new(args[0])
            .args(&args[1..])
            .env("TPM2TOOLS_TCTI", format!("swtpm:path={}", sock.display()))
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", args[0]));
        assert!(
            o.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        o.stdout
    };
    let public = String::from_utf8_lossy(&tool(&["tpm2_nvreadpublic", &index])).into_owned();
    let data = tool(&["tpm2_nvread", &index, "-C", &index, "-s", "8"]);
    let _ = child.kill();
    let _ = child.wait();
    (public, data)
}
