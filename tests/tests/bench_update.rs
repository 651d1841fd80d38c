//! Benchmarks of the A/B update path (issue 8), each against a baseline
//! measured in the same run, reported as a ratio (docs/BENCHMARKS.md):
//!
//! - **install throughput**: in one boot of v1, `update install STICK` of a
//!   v2 bundle (tens of MiB: v2 carries a file of incompressible bytes) from
//!   a second virtio disk into root-b, against plain-tool baselines that
//!   read the same stick, hash its bytes once and write them to the same
//!   partition with the same flush — in one pass
//!   (`dd if=STICK | tee FIFO | dd of=SLOT conv=fsync`, `sha256sum FIFO`)
//!   or in two steps (`dd if=STICK | sha256sum`, then `dd … conv=fsync`);
//!   the faster of the two is the baseline. Its halves (hash only, copy
//!   only) are timed too, to show where the time goes.
//! - **update downtime**: kernel start → services ready in the trial boot of
//!   v2 (right after the install), against a normal boot of the same v2
//!   once it is committed.
//!
//! `#[ignore]`d like `bench.rs`; `scripts/bench.sh` runs them. Each prints
//! its table between `BENCH-BEGIN` and `BENCH-END`. Goals are reported as
//! pass/miss, never asserted. `AZL_BENCH_INSTALL_MIB` (default 48) sizes
//! the incompressible file, `AZL_BENCH_INSTALL_RUNS` (default 3) the runs
//! of each operation, `AZL_BENCH_BOOTS` (default 5) the boots of each kind;
//! `AZL_BENCH_SERIAL=1` copies every serial log to stderr.
use azl_e2e::bench::*;
use azl_e2e::update::*;
use azl_e2e::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Guest shell prelude (as in `tests/tests/update.rs`): `U` is the update
/// face; `st KEY` prints `KEY={status json}`; `gate_wait` waits until a
/// trial's health gate has an outcome and prints `gate=OUTCOME` (empty on a
/// boot without a trial).
const PRELUDE: &str = r#"U='/sbin/init update'
st() { echo "$1=$($U status --json | tr -d '\n')"; }
gate_wait() { i=0; while [ $i -lt 150 ]; do g=$($U status --json | sed -n 's/.*"gate":"\([^"]*\)".*/\1/p'); case "$g" in ""|committed|awaiting-commit|failed*|commit-failed*) echo "gate=$g"; return 0;; esac; sleep 1; i=$((i+1)); done; echo gate=timeout; }
"#;

/// Applets the benchmark scripts need beyond the harness's and the agent's.
const BENCH_APPLETS: &[&str] = &["dmesg", "mkfifo", "tee"];

const MACHINE: &str = "QEMU 7.2 TCG virt, cortex-a57, 1 vCPU, 512 MiB guest; host 2 cores";

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    p
}

fn subdir(dir: &Path, name: &str) -> PathBuf {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
    d
}

/// The update-test image (as in `tests/tests/update.rs`): `/etc/release`
/// says `tag`, the trial commits itself after a 2 s hold; v2 runs one more
/// service. `extra` adds TOML.
fn image(key: &Path, files: &Path, tag: &str, version: &str, sv: u32, extra: &str) -> Image {
    let rel = write(
        files,
        &format!("release-{tag}"),
        format!("{tag}\n").as_bytes(),
    );
    let mut img = Image::new("edge", Kernel::Small)
        .disk(key)
        .release(version, sv)
        .with(&format!(
            "[[file]]\nsrc = {}\ndst = \"/etc/release\"\nmode = \"0644\"\n\n[update]\ncommit = \"local\"\nhold_s = 2\nready_deadline_s = 60\n",
            toml_str(&rel.display().to_string())
        ))
        .with(extra)
        .with_applets(BENCH_APPLETS);
    if tag == "v2" {
        img = img.sh_service("v2svc", "echo v2svc-up; exec sleep 100000", "");
    }
    with_agent(img)
}

/// `len` pseudo-random bytes (xorshift64*, fixed seed): incompressible for
/// zstd, the same in every run.
fn incompressible(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A private copy of an output directory (disk image; sparse).
fn copy_out(src: &Path, dst: &Path) {
    let _ = std::fs::remove_dir_all(dst);
    let r = run_mut(
        std::process::Command::new("cp")
            .args(["-a", "--sparse=always"])
            .arg(src)
            .arg(dst),
    );
    assert!(r.ok, "cp: {}", r.stderr);
}

/// Boot `out` with a control disk running `script` (`$D1`… = `disks`).
fn step(out: &Path, dir: &Path, name: &str, script: &str, disks: &[PathBuf], t: u64) -> Booted {
    let ctl = control_disk(dir, name, &format!("{PRELUDE}{script}"), disks);
    let mut all = vec![ctl];
    all.extend(disks.iter().cloned());
    let b = boot(
        out,
        &Boot {
            disks: all,
            timeout: Some(Duration::from_secs(t)),
            ..Boot::default()
        },
    );
    if std::env::var_os("AZL_BENCH_SERIAL").is_some() {
        eprintln!("{}", b.dump());
    }
    b
}

/// Lines the guest printed as `TAG <dmesg line>`: (kmsg timestamp, text
/// after the timestamp).
fn tagged(b: &Booted, tag: &str) -> Vec<(f64, String)> {
    b.serial
        .lines()
        .filter_map(|l| l.split_once(tag).map(|(_, rest)| rest))
        .filter_map(|rest| {
            let ts = kmsg_ts(rest)?;
            let text = rest.split_once(']').map(|(_, t)| t.trim().to_string())?;
            Some((ts, text))
        })
        .collect()
}

fn range(v: &[f64], scale: f64, digits: usize) -> String {
    let lo = v.iter().cloned().fold(f64::INFINITY, f64::min) * scale;
    let hi = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max) * scale;
    format!("{lo:.digits$}–{hi:.digits$}")
}

/// v1's disk image and a v2 bundle for root-b (`extra` TOML in v2).
struct Setup {
    dir: TempDir,
    v1: PathBuf,
    bundle: PathBuf,
}

fn setup(v2_extra: &dyn Fn(&Path) -> String) -> Setup {
    let dir = tempdir();
    let d = dir.path();
    let key = keygen(d, "fleet.key");
    let v1 = image(&key, d, "v1", "1.0.0", 1, "").build(&subdir(d, "v1"));
    let v2 = image(&key, d, "v2", "2.0.0", 2, &v2_extra(d));
    let bundle = bundle(&v2, &subdir(d, "b2"), "v2.bundle", "root-b", &[]);
    Setup { dir, v1, bundle }
}

/// The measured operations of the throughput benchmark, in their
/// alternating order (reversed every other round). `tee` and `seq` are the
/// two plain-tool baselines (each reads the stick, hashes its bytes once and
/// writes them to root-b with `conv=fsync`); the faster one is the
/// baseline of the ratio. `hash` and `copy` are the two halves.
const OPS: &[(&str, &str)] = &[
    (
        "install",
        "**`update install STICK`** (verify, write, fdatasync, read back + verify, manifest)",
    ),
    (
        "tee",
        "baseline, one pass: `dd if=STICK \\| tee FIFO \\| dd of=SLOT conv=fsync`, `sha256sum FIFO`",
    ),
    (
        "seq",
        "baseline, two steps: `dd if=STICK \\| sha256sum`, then `dd if=STICK of=SLOT conv=fsync`",
    ),
    (
        "hash",
        "read + hash only: `dd if=STICK bs=1M \\| sha256sum`",
    ),
    (
        "copy",
        "copy only: `dd if=STICK of=SLOT bs=1M conv=fsync` (no hash)",
    ),
];

/// The guest side of the throughput benchmark. Before each operation the
/// page cache is written back and dropped, so every run reads the stick
/// from the (virtual) device; each is bracketed by kmsg records (µs
/// timestamps) and checked afterwards (exit code, the hashes).
fn throughput_script(slot_partno: usize, rounds: usize) -> String {
    let mut s = format!(
        "STICK=$D1\nSLOT=$(echo $BS | sed 's/[0-9]*$//'){slot_partno}\necho slotdev=$SLOT\n\
         drop() {{ sync; echo 3 > /proc/sys/vm/drop_caches; }}\n\
         mark() {{ echo \"bench-t $*\" > /dev/kmsg; }}\n\
         op_install() {{ $U install $STICK >/tmp/out 2>/tmp/err; }}\n\
         op_tee() {{ rm -f /tmp/h; mkfifo /tmp/h; sha256sum /tmp/h >/tmp/sum & dd if=$STICK bs=1M 2>/dev/null | tee /tmp/h | dd of=$SLOT bs=1M conv=fsync 2>/dev/null; r=$?; wait; return $r; }}\n\
         op_seq() {{ op_hash && op_copy; }}\n\
         op_hash() {{ dd if=$STICK bs=1M 2>/dev/null | sha256sum >/tmp/sum; }}\n\
         op_copy() {{ dd if=$STICK of=$SLOT bs=1M conv=fsync 2>/dev/null; }}\n\
         run() {{ rm -f /tmp/sum; sleep 1; drop; mark $1 $2 start; op_$1; rc=$?; mark $1 $2 end; echo \"op-$1-$2-rc=$rc\"; \
         if [ $1 = install ]; then cat /tmp/out /tmp/err | sed \"s/^/inst $2: /\"; fi; \
         if [ -f /tmp/sum ]; then echo \"sum-$1-$2=$(cut -c1-64 /tmp/sum)\"; fi; }}\n"
    );
    for r in 0..rounds {
        let mut order: Vec<&str> = OPS.iter().map(|(k, _)| *k).collect();
        if r % 2 == 1 {
            order.reverse();
        }
        for k in order {
            s.push_str(&format!("run {k} {}\n", r + 1));
        }
    }
    s.push_str("dmesg | grep 'bench-t ' | sed 's/^/bench-m /'\necho bench-done\n");
    s
}

#[test]
#[ignore = "benchmark: scripts/bench.sh"]
fn bench_update_install_throughput() {
    let mib = env_count("AZL_BENCH_INSTALL_MIB", 48);
    let rounds = env_count("AZL_BENCH_INSTALL_RUNS", 3);
    let s = setup(&|d| {
        let blob = write(d, "blob.bin", &incompressible(mib << 20));
        format!(
            "[[file]]\nsrc = {}\ndst = \"/opt/blob.bin\"\nmode = \"0644\"\n",
            toml_str(&blob.display().to_string())
        )
    });
    let d = s.dir.path();
    let bytes = std::fs::read(&s.bundle).unwrap_or_else(|e| panic!("read bundle: {e}"));
    let sec = sections(&bytes);
    let stick = raw_disk(d, "stick.img", &bytes);
    let stick_len = std::fs::metadata(&stick).map(|m| m.len()).unwrap_or(0);
    let stick_sha = hex(&azl_formats::sha256(
        &std::fs::read(&stick).unwrap_or_default(),
    ));
    let disk = s.v1.join("disk.img");
    let partno = sfdisk_partitions(&disk)
        .iter()
        .position(|p| p.name == "root-b")
        .unwrap_or_else(|| panic!("no root-b in {}", disk.display()))
        + 1;
    let script = throughput_script(partno, rounds);
    let b = step(&s.v1, d, "ctl.img", &script, &[stick], 1800);
    assert!(
        b.has("bench-done"),
        "the benchmark did not finish\n{}",
        b.dump()
    );
    b.assert_clean_poweroff();
    // The baseline wrote the partition the installer wrote.
    let slot = b.value("slotdev");
    b.line(&format!("update: installing into root-b ({slot})"));
    let marks = tagged(&b, "bench-m ");
    let mut times: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for (k, _) in OPS {
        for r in 1..=rounds {
            let at = |what: &str| {
                let want = format!("bench-t {k} {r} {what}");
                marks
                    .iter()
                    .find(|(_, t)| *t == want)
                    .map(|(ts, _)| *ts)
                    .unwrap_or_else(|| panic!("no mark {want:?}\n{}", b.dump()))
            };
            let rc = b.value(&format!("op-{k}-{r}-rc"));
            assert_eq!(rc, "0", "{k} run {r} failed\n{}", b.dump());
            if matches!(*k, "tee" | "seq" | "hash") {
                let sum = b.value(&format!("sum-{k}-{r}"));
                assert_eq!(sum, stick_sha, "{k} run {r} hashed other bytes");
            }
            times.entry(k).or_default().push(at("end") - at("start"));
        }
    }
    for r in 1..=rounds {
        b.line(&format!(
            "inst {r}: installed edge 2.0.0 (security version 2) into root-b"
        ));
    }
    eprintln!("bench: install throughput times (s): {times:?}");
    let payload = bytes.len() as f64;
    let mibs = |t: f64| payload / t / f64::from(1u32 << 20);
    let med = |k: &str| median(times.get(k).cloned().unwrap_or_default());
    let inst = med("install");
    let (base_key, base) = if med("tee") <= med("seq") {
        ("tee", med("tee"))
    } else {
        ("seq", med("seq"))
    };
    let ratio = base / inst;
    begin("update install throughput");
    println!(
        "One boot of v1 (small-6.1, root on the verified disk); the v2 bundle ({:.1} MiB: {} B root-data, {} B hash tree, {} B head) \
         on a second virtio disk, zero-padded to {} MiB, installed into root-b. \
         {rounds} runs of each operation, alternating (order reversed every other round); page cache written back and dropped before each run; \
         time between kmsg records around the operation, median. Throughput = bundle bytes / time. {MACHINE}.\n",
        payload / f64::from(1u32 << 20),
        sec.data.len(),
        sec.tree.len(),
        sec.tree.start,
        stick_len >> 20,
    );
    println!(
        "| operation | time (s) | range (s) | MiB/s | throughput vs baseline | goal | result |"
    );
    println!("|---|---:|---:|---:|---:|---|---|");
    for (k, label) in OPS {
        let v = times.get(k).cloned().unwrap_or_default();
        let t = median(v.clone());
        let (goal, res) = match *k {
            "install" => ("≥ 0.90×", verdict(ratio >= 0.9)),
            k if k == base_key => ("— (baseline: the faster one)", "—"),
            _ => ("", ""),
        };
        println!(
            "| {label} | {t:.3} | {} | {:.1} | {:.2}× | {goal} | {res} |",
            range(&v, 1.0, 3),
            mibs(t),
            base / t
        );
    }
    println!(
        "\nInstall throughput / baseline (`{base_key}`) throughput: **{ratio:.2}×** (goal ≥ 0.9×)."
    );
    end("bench_update_install_throughput");
}

/// One boot of v2 (trial or committed): times in seconds since kernel start.
#[derive(Debug, Clone, Copy)]
struct Boot2 {
    /// kmsg timestamp of the kernel's `Run /init as init process`.
    init_exec: f64,
    /// kmsg timestamp of init's `ready: … services up` record.
    ready: f64,
    /// The `… ms since kernel start` in that record (CLOCK_BOOTTIME).
    ready_ms: f64,
}

/// The same script for both kinds of boot: wait for the gate's outcome
/// (at once on a committed boot), print the status and the timestamps.
const DOWNTIME_SCRIPT: &str = "gate_wait\nst bstat\necho release=$(cat /etc/release)\n\
dmesg | grep -m1 'Run .* as init process' | sed 's/^/bench-k /'\n\
dmesg | grep -m1 'init: ready: ' | sed 's/^/bench-r /'\necho bench-done\n";

fn downtime_boot(out: &Path, dir: &Path, name: &str, trial: bool) -> Boot2 {
    let b = step(out, dir, name, DOWNTIME_SCRIPT, &[], 300);
    assert!(
        b.has("bench-done"),
        "boot {name} did not finish\n{}",
        b.dump()
    );
    b.assert_clean_poweroff();
    assert_eq!(b.value("release"), "v2", "{}", b.dump());
    let s = json_value(&b, "bstat");
    assert_eq!(s["running"]["slot"], "root-b", "{s}");
    assert_eq!(s["running"]["trial"], trial, "{s}");
    assert_eq!(
        b.value("gate"),
        if trial { "committed" } else { "" },
        "{}",
        b.dump()
    );
    if trial {
        b.line("update: trial of root-b passed every gate: committed");
    }
    let first = |tag: &str| {
        tagged(&b, tag)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no {tag:?} line\n{}", b.dump()))
    };
    let (init_exec, _) = first("bench-k ");
    let (ready, text) = first("bench-r ");
    let ready_ms = text
        .split(", ")
        .nth(1)
        .and_then(|x| x.split(' ').next())
        .and_then(|x| x.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("bad ready record {text:?}"));
    Boot2 {
        init_exec,
        ready,
        ready_ms: ready_ms / 1000.0,
    }
}

#[test]
#[ignore = "benchmark: scripts/bench.sh"]
fn bench_update_downtime() {
    let n = env_count("AZL_BENCH_BOOTS", 5);
    let s = setup(&|_| String::new());
    let d = s.dir.path();
    // Install v2 once; the disk as the install left it (trial pending) is
    // the starting point of every trial boot.
    let pending = d.join("pending");
    copy_out(&s.v1, &pending);
    let bytes = std::fs::read(&s.bundle).unwrap_or_else(|e| panic!("read bundle: {e}"));
    let stick = raw_disk(d, "stick.img", &bytes);
    let b = step(
        &pending,
        d,
        "ctl-install.img",
        "$U install $D1; echo install-rc=$?",
        &[stick],
        300,
    );
    assert_eq!(b.value("install-rc"), "0", "{}", b.dump());
    b.assert_clean_poweroff();
    // The committed device: one trial boot (not counted) commits v2.
    let committed = d.join("committed");
    copy_out(&pending, &committed);
    downtime_boot(&committed, d, "ctl-commit.img", true);
    let (mut trials, mut normals) = (Vec::new(), Vec::new());
    for i in 0..n {
        let order = if i % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for trial in order {
            let name = format!("ctl-{i}-{trial}.img");
            let sample = if trial {
                let dev = d.join("trial");
                copy_out(&pending, &dev);
                downtime_boot(&dev, d, &name, true)
            } else {
                downtime_boot(&committed, d, &name, false)
            };
            eprintln!("bench: downtime boot #{} trial={trial}: {sample:?}", i + 1);
            (if trial { &mut trials } else { &mut normals }).push(sample);
        }
    }
    let med = |v: &[Boot2], f: fn(&Boot2) -> f64| median(v.iter().map(f).collect());
    let ms = |x: f64| format!("{:.1}", x * 1000.0);
    begin("update downtime");
    println!(
        "Kernel start → services ready (init's `ready:` record, kmsg timestamp) in the trial boot of v2 right after its install \
         (stage 1 marks the trial `Trying` before booting it; the health gate runs), against a normal boot of the same v2 disk once committed. \
         small-6.1, root on the verified disk, 2 services (v2svc, the agent), no TPM; {n} boots of each, interleaved (ABBA), median; {MACHINE}. \
         ms since kernel start.\n"
    );
    println!("| metric | trial boot | committed boot | ratio trial/committed | goal | result |");
    println!("|---|---:|---:|---:|---|---|");
    let row = |name: &str, f: fn(&Boot2) -> f64, goal: bool| {
        let (t, c) = (med(&trials, f), med(&normals, f));
        let (g, r) = if goal {
            ("≤ 1.10×", verdict(t / c <= 1.1))
        } else {
            ("", "")
        };
        println!(
            "| {name} | {} | {} | {:.2}× | {g} | {r} |",
            ms(t),
            ms(c),
            t / c
        );
    };
    row(
        "**services ready** (kmsg, µs resolution)",
        |b| b.ready,
        true,
    );
    row(
        "init's `ready: … ms since kernel start`",
        |b| b.ready_ms,
        false,
    );
    row(
        "kernel runs /init (`Run /init as init process`)",
        |b| b.init_exec,
        false,
    );
    row(
        "/init → services ready (user space: stage 1, switch to the root, stage 2)",
        |b| b.ready - b.init_exec,
        false,
    );
    let all = |v: &[Boot2]| v.iter().map(|b| b.ready).collect::<Vec<_>>();
    println!(
        "| range of services ready over all boots | {} | {} | | | |",
        range(&all(&trials), 1000.0, 0),
        range(&all(&normals), 1000.0, 0)
    );
    end("bench_update_downtime");
}
