//! Benchmarks for `init`, each against a named baseline measured in the same
//! run: binary size (vs busybox-static), PID 1 idle memory in the guest and
//! boot to all-services-ready (vs busybox init booting the same services on
//! the same kernel).
//!
//! They are `#[ignore]`d so the normal suite never depends on timing; run
//! them with `scripts/bench.sh`, which prints the markdown tables
//! (`docs/BENCHMARKS.md` records the results). Each test prints its table
//! between `BENCH-BEGIN` and `BENCH-END` lines. Goals are reported as
//! pass/miss, never asserted.
//!
//! `AZL_BENCH_BOOTS` overrides the number of boots per image for the boot
//! benchmarks (default 9 on the small kernel, 7 on Debian's), `AZL_BENCH_RSS_BOOTS` for the memory one (default 3);
//! `AZL_BENCH_SERIAL=1` copies every boot's serial log to stderr.
use azl_e2e::bench::*;
use azl_e2e::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The measured services: each records when it started, then idles.
const SERVICES: &[&str] = &["s1", "s2", "s3", "s4", "s5"];
/// s5 waits for s4 (`after`); busybox init has no dependencies, its
/// equivalent is inittab order (respawn entries are started in file order).
const DEPENDENT: (&str, &str) = ("s5", "s4");

/// Busybox applets both images carry.
const APPLETS: &[&str] = &[
    "sh", "sleep", "cat", "echo", "grep", "sed", "dmesg", "mount", "hostname", "poweroff",
    "insmod", "wc",
];

/// A service: read the clock, log the start record through /dev/kmsg (the
/// kernel stamps it with µs resolution; /proc/uptime has only 10 ms), idle.
const SVC_SCRIPT: &str = r#"#!/bin/sh
read up idle < /proc/uptime
echo "bench-up $1 $up" > /dev/kmsg
exec sleep 100000
"#;

/// The last service: let the system idle, report PID 1's memory and when the
/// kernel handed over to /init, then power off with "$@".
const FINISH_SCRIPT: &str = r#"#!/bin/sh
# Straight to the console: with `quiet`, neither init's log nor kmsg echo
# would show these lines.
exec >/dev/console 2>&1
sleep 2
dmesg | grep -m1 'Run .* as init process' | sed 's/^/bench-k /'
dmesg | grep 'bench-up ' | sed 's/^/bench-d /'
dmesg | grep -m1 'init: ready: ' | sed 's/^/bench-r /'
grep -E '^(VmRSS|VmHWM):' /proc/1/status | sed 's/^/bench-p1 /'
[ -r /proc/1/smaps_rollup ] && grep -E '^(Rss|Pss):' /proc/1/smaps_rollup | sed 's/^/bench-p1 /'
echo bench-pid1=$(cat /proc/1/comm)
echo bench-pid1-size=$(wc -c < /proc/1/exe)
echo bench-modules=$( (cat /proc/modules 2>/dev/null) | wc -l)
echo bench-done
exec "$@"
"#;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Flavor {
    /// Our init; services from `[[service]]`.
    Azl,
    /// busybox-static's `init` applet as /init (argv[0] "/init" selects it)
    /// with an /etc/inittab doing the same mounts and starting the same
    /// services.
    Busybox,
}

impl Flavor {
    fn name(self) -> &'static str {
        match self {
            Flavor::Azl => "azl init",
            Flavor::Busybox => "busybox init",
        }
    }
}

fn kernel_name(k: Kernel) -> &'static str {
    match k {
        Kernel::Small => "small-6.1",
        Kernel::Debian => "debian-6.1",
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    p
}

fn file_entry(src: &Path, dst: &str, mode: &str) -> String {
    format!(
        "\n[[file]]\nsrc = {}\ndst = \"{dst}\"\nmode = \"{mode}\"\n",
        toml_str(&src.display().to_string())
    )
}

fn symlink_entry(target: &str, dst: &str) -> String {
    format!("\n[[file]]\nsymlink = \"{target}\"\ndst = \"{dst}\"\n")
}

/// The parts both images share: image, kernel, busybox applets, the scripts.
fn common_config(dir: &Path, name: &str, kernel: Kernel, busybox_entry: &str) -> String {
    let svc = write(dir, "svc.sh", SVC_SCRIPT);
    let finish = write(dir, "finish.sh", FINISH_SCRIPT);
    let mut s = format!(
        "[image]\nname = \"{name}\"\nversion = \"1.0.0\"\nhostname = \"benchhost\"\nroot = \"initramfs\"\nboard = \"qemu-virt\"\n\n\
         [kernel]\npath = {}\ncmdline = \"quiet\"\n",
        toml_str(&kernel.dir().display().to_string())
    );
    s.push_str(busybox_entry);
    for a in APPLETS {
        s.push_str(&symlink_entry("busybox", &format!("/bin/{a}")));
    }
    s.push_str(&file_entry(&svc, "/etc/bench/svc", "0755"));
    s.push_str(&file_entry(&finish, "/etc/bench/finish", "0755"));
    s
}

struct Built {
    out: PathBuf,
    /// imagegen's build summary.
    stdout: String,
}

fn imagegen_build(dir: &Path, config: &str, init: &Path) -> Built {
    let init = init.display().to_string();
    let r = build_config(dir, config, &["--init", &init]);
    assert!(
        r.ok,
        "imagegen build failed:\n{}\n--- config ---\n{config}",
        r.stderr
    );
    Built {
        out: dir.join("out"),
        stdout: r.stdout,
    }
}

fn build_azl(dir: &Path, kernel: Kernel) -> Built {
    let bb = busybox();
    let mut s = common_config(
        dir,
        "bench-azl",
        kernel,
        &file_entry(&bb, "/bin/busybox", "0755"),
    );
    for name in SERVICES {
        let after = if *name == DEPENDENT.0 {
            format!("after = [\"{}\"]\n", DEPENDENT.1)
        } else {
            String::new()
        };
        s.push_str(&format!(
            "\n[[service]]\nname = \"{name}\"\nexec = [\"/bin/sh\", \"/etc/bench/svc\", \"{name}\"]\n{after}"
        ));
    }
    let all: Vec<String> = SERVICES.iter().map(|n| format!("\"{n}\"")).collect();
    s.push_str(&format!(
        "\n[[service]]\nname = \"finish\"\nexec = [\"/bin/sh\", \"/etc/bench/finish\", \"/sbin/initctl\", \"poweroff\"]\n\
         restart = \"never\"\nafter = [{}]\n",
        all.join(", ")
    ));
    imagegen_build(dir, &s, &init_binary())
}

/// Modules imagegen put into an image, in load order, from its build summary
/// (`modules    19: virtio_mmio, …` or `modules    0 (9 built into the kernel)`).
fn modules_from_summary(summary: &str) -> Vec<String> {
    let line = summary
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("modules"))
        .unwrap_or_else(|| panic!("imagegen summary lacks a modules line:\n{summary}"));
    match line.split_once(':') {
        Some((_, list)) => list
            .split(',')
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty())
            .collect(),
        None => Vec::new(),
    }
}

/// Guest paths of the kernel's module files for `names` (same order).
fn module_paths(kernel: Kernel, names: &[String]) -> Vec<String> {
    let kdir = kernel.dir();
    let release = std::fs::read_to_string(kdir.join("release"))
        .unwrap_or_default()
        .trim()
        .to_string();
    let root = kdir.join("lib/modules").join(&release);
    let mut files = Vec::new();
    walk(&root, &mut files);
    names
        .iter()
        .map(|n| {
            let want = format!("{}.ko", n.replace('-', "_"));
            let f = files
                .iter()
                .find(|f| {
                    f.file_name().map(|x| x.to_string_lossy().replace('-', "_"))
                        == Some(want.clone())
                })
                .unwrap_or_else(|| panic!("module {n} not found under {}", root.display()));
            format!(
                "/lib/modules/{release}/{}",
                f.strip_prefix(&root).unwrap_or(f).display()
            )
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// The baseline: busybox is the init binary (imagegen installs it as /init;
/// busybox picks the applet from argv[0]'s basename, "init") and /bin/busybox
/// is a symlink to it, so the image holds one busybox copy. No `=` in the
/// inittab commands: busybox init would run such a line through `sh -c`.
fn build_busybox(dir: &Path, kernel: Kernel, modules: &[String]) -> Built {
    let mut tab = String::from(
        "# busybox init baseline: the pseudo filesystems azl init mounts, the\n\
         # hostname, the board's modules, then the same services.\n\
         ::sysinit:/bin/mount -t proc -o nosuid,nodev,noexec proc /proc\n\
         ::sysinit:/bin/mount -t sysfs -o nosuid,nodev,noexec sysfs /sys\n\
         ::sysinit:/bin/mount -t devtmpfs -o nosuid devtmpfs /dev\n\
         ::sysinit:/bin/mount -t tmpfs -o nosuid,nodev tmpfs /run\n\
         ::sysinit:/bin/mount -t tmpfs -o nosuid,nodev tmpfs /tmp\n\
         ::sysinit:/bin/mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 /sys/fs/cgroup\n\
         ::sysinit:/bin/hostname -F /etc/hostname\n",
    );
    for m in module_paths(kernel, modules) {
        tab.push_str(&format!("::sysinit:/bin/insmod {m}\n"));
    }
    for name in SERVICES {
        tab.push_str(&format!("::respawn:/bin/sh /etc/bench/svc {name}\n"));
    }
    tab.push_str("::respawn:/bin/sh /etc/bench/finish /bin/poweroff -f\n");
    let inittab = write(dir, "inittab", &tab);
    let mut s = common_config(
        dir,
        "bench-busybox",
        kernel,
        &symlink_entry("/init", "/bin/busybox"),
    );
    s.push_str(&file_entry(&inittab, "/etc/inittab", "0644"));
    imagegen_build(dir, &s, &busybox())
}

/// Both images for one kernel (built once, booted many times).
struct Pair {
    _azl_dir: TempDir,
    _bb_dir: TempDir,
    azl: PathBuf,
    busybox: PathBuf,
    modules: usize,
}

fn build_pair(kernel: Kernel) -> Pair {
    let azl_dir = tempdir();
    let bb_dir = tempdir();
    let azl = build_azl(azl_dir.path(), kernel);
    let modules = modules_from_summary(&azl.stdout);
    let bb = build_busybox(bb_dir.path(), kernel, &modules);
    Pair {
        azl: azl.out,
        busybox: bb.out,
        modules: modules.len(),
        _azl_dir: azl_dir,
        _bb_dir: bb_dir,
    }
}

/// What one boot measured; times in seconds since kernel start.
#[derive(Debug, Default, Clone)]
struct Sample {
    /// kmsg timestamp of "Run /init as init process".
    init_exec: f64,
    /// Latest service start record, kernel (kmsg) timestamp, µs resolution.
    last_kmsg: f64,
    /// Latest service start, as read from /proc/uptime (10 ms resolution).
    last_uptime: f64,
    /// azl init's own "ready: … ms since kernel start" line.
    azl_ready: Option<f64>,
    /// PID 1 memory in KiB: VmRSS, VmHWM (/proc/1/status), Rss, Pss (smaps_rollup).
    vmrss: f64,
    vmhwm: f64,
    rss: Option<f64>,
    pss: Option<f64>,
    /// Lines in /proc/modules at the end.
    modules: usize,
}

fn boot_once(out: &Path, flavor: Flavor) -> Sample {
    let b = boot(
        out,
        &Boot {
            timeout: Some(Duration::from_secs(180)),
            ..Boot::default()
        },
    );
    assert!(
        b.code == Some(0) && b.has("bench-done"),
        "{} boot did not finish cleanly\n{}",
        flavor.name(),
        b.dump()
    );
    if std::env::var_os("AZL_BENCH_SERIAL").is_some() {
        eprintln!("{}", b.dump());
    }
    // The right PID 1 ran: both are /init (comm "init"); the sizes differ.
    let bin = match flavor {
        Flavor::Azl => init_binary(),
        Flavor::Busybox => busybox(),
    };
    let size = std::fs::metadata(&bin)
        .map(|m| m.len().to_string())
        .unwrap_or_default();
    assert!(
        b.value("bench-pid1") == "init" && b.value("bench-pid1-size") == size,
        "{} ({size} bytes) did not run as PID 1\n{}",
        flavor.name(),
        b.dump()
    );
    let mut s = Sample::default();
    for name in SERVICES {
        let needle = format!("bench-up {name} ");
        let line = b
            .serial
            .lines()
            .find(|l| l.contains(&needle))
            .unwrap_or_else(|| {
                panic!(
                    "{}: service {name} never recorded its start\n{}",
                    flavor.name(),
                    b.dump()
                )
            });
        let k = kmsg_ts(line).unwrap_or_else(|| panic!("no kernel timestamp in {line:?}"));
        let u: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("bad {line:?}"));
        s.last_kmsg = s.last_kmsg.max(k);
        s.last_uptime = s.last_uptime.max(u);
    }
    let k = b
        .serial
        .lines()
        .find(|l| l.contains("bench-k "))
        .unwrap_or_else(|| panic!("no bench-k\n{}", b.dump()));
    s.init_exec = kmsg_ts(k.split("bench-k ").nth(1).unwrap_or_default())
        .unwrap_or_else(|| panic!("bad {k:?}"));
    if flavor == Flavor::Azl {
        let l = b
            .serial
            .lines()
            .find(|l| l.contains("ready: ") && l.contains("ms since kernel start"));
        let l = l.unwrap_or_else(|| panic!("no ready line\n{}", b.dump()));
        let ms = l
            .split(", ")
            .nth(1)
            .and_then(|x| x.split(' ').next())
            .and_then(|x| x.parse::<f64>().ok());
        s.azl_ready = Some(ms.unwrap_or_else(|| panic!("bad ready line {l:?}")) / 1000.0);
    }
    let p1 = |key: &str| -> Option<f64> {
        b.serial
            .lines()
            .filter_map(|l| l.split("bench-p1 ").nth(1))
            .find_map(|rest| {
                let mut w = rest.split_whitespace();
                (w.next() == Some(key))
                    .then(|| w.next().and_then(|v| v.parse().ok()))
                    .flatten()
            })
    };
    s.modules = b.value("bench-modules").parse().unwrap_or(usize::MAX);
    s.vmrss = p1("VmRSS:").unwrap_or_else(|| panic!("no VmRSS\n{}", b.dump()));
    s.vmhwm = p1("VmHWM:").unwrap_or_else(|| panic!("no VmHWM\n{}", b.dump()));
    s.rss = p1("Rss:");
    s.pss = p1("Pss:");
    s
}

fn med(samples: &[Sample], f: impl Fn(&Sample) -> f64) -> f64 {
    median(samples.iter().map(f).collect())
}

fn med_opt(samples: &[Sample], f: impl Fn(&Sample) -> Option<f64>) -> Option<f64> {
    let v: Vec<f64> = samples.iter().filter_map(f).collect();
    (v.len() == samples.len()).then(|| median(v))
}

const MACHINE: &str = "QEMU 7.2 TCG virt, cortex-a57, 1 vCPU, 512 MiB guest; host 2 cores";

/// Boot `flavors` alternately (ABBA order so drift hits both alike).
fn interleaved(pair: &Pair, flavors: &[Flavor], n: usize) -> Vec<(Flavor, Vec<Sample>)> {
    let mut res: Vec<(Flavor, Vec<Sample>)> = flavors.iter().map(|f| (*f, Vec::new())).collect();
    for i in 0..n {
        let mut order: Vec<usize> = (0..flavors.len()).collect();
        if i % 2 == 1 {
            order.reverse();
        }
        for j in order {
            let out = if flavors[j] == Flavor::Azl {
                &pair.azl
            } else {
                &pair.busybox
            };
            let s = boot_once(out, flavors[j]);
            eprintln!("bench: boot {} #{}: {:?}", flavors[j].name(), i + 1, s);
            res[j].1.push(s);
        }
    }
    res
}

#[test]
#[ignore = "benchmark: scripts/bench.sh"]
fn bench_init_binary_size() {
    let init = init_binary();
    let bb = busybox();
    let size = |p: &Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .len()
    };
    let (i, b) = (size(&init), size(&bb));
    let goal = 512 * 1024;
    begin("init binary size");
    println!("Static aarch64 binaries as they go into the image (init as `scripts/build-init.sh` builds it).\n");
    println!("| binary | bytes | KiB | ratio vs busybox | goal | result |");
    println!("|---|---:|---:|---:|---|---|");
    println!(
        "| azl init | {i} | {:.1} | {:.3}× | ≤ 512 KiB | {} ({:+.1} KiB) |",
        i as f64 / 1024.0,
        i as f64 / b as f64,
        verdict(i <= goal),
        (i as f64 - goal as f64) / 1024.0
    );
    println!(
        "| baseline: busybox-static arm64 (Debian) | {b} | {:.1} | 1.000× | — | — |",
        b as f64 / 1024.0
    );
    end("bench_init_binary_size");
}

#[test]
#[ignore = "benchmark: scripts/bench.sh"]
fn bench_init_idle_rss() {
    let n = env_count("AZL_BENCH_RSS_BOOTS", 3);
    let pair = build_pair(Kernel::Small);
    let res = interleaved(&pair, &[Flavor::Azl, Flavor::Busybox], n);
    begin("init idle RSS");
    println!(
        "PID 1 memory 2 s after all services are up (5 idle shell services + the measuring one), small-6.1 kernel; \
         median of {n} boots each; {MACHINE}. KiB.\n"
    );
    println!("| PID 1 | Rss (smaps_rollup) | Pss (smaps_rollup) | VmRSS (status) | VmHWM (status) | goal (Rss) | result |");
    println!("|---|---:|---:|---:|---:|---|---|");
    let goal = 1024.0;
    for (f, s) in &res {
        let rss = med_opt(s, |x| x.rss);
        let pss = med_opt(s, |x| x.pss);
        let show = |v: Option<f64>| v.map(|v| format!("{v:.0}")).unwrap_or_else(|| "n/a".into());
        let (g, r) = match (f, rss) {
            (Flavor::Azl, Some(r)) => (
                "≤ 1024".to_string(),
                format!("{} ({:+.0} KiB)", verdict(r <= goal), r - goal),
            ),
            (Flavor::Azl, None) => ("≤ 1024".to_string(), "n/a".into()),
            _ => ("— (baseline)".to_string(), "—".into()),
        };
        println!(
            "| {} | {} | {} | {:.0} | {:.0} | {g} | {r} |",
            f.name(),
            show(rss),
            show(pss),
            med(s, |x| x.vmrss),
            med(s, |x| x.vmhwm)
        );
    }
    let azl = med_opt(&res[0].1, |x| x.rss);
    let bb = med_opt(&res[1].1, |x| x.rss);
    if let (Some(a), Some(b)) = (azl, bb) {
        println!("\nRss ratio azl/busybox: {:.2}×", a / b);
    }
    end("bench_init_idle_rss");
}

fn boot_to_ready(kernel: Kernel, default_n: usize) {
    let n = env_count("AZL_BENCH_BOOTS", default_n);
    let pair = build_pair(kernel);
    let res = interleaved(&pair, &[Flavor::Azl, Flavor::Busybox], n);
    let (a, b) = (&res[0].1, &res[1].1);
    for (f, v) in &res {
        for s in v {
            assert_eq!(
                s.modules,
                pair.modules,
                "{} loaded a different number of modules",
                f.name()
            );
        }
    }
    let ms = |v: f64| format!("{:.1}", v * 1000.0);
    begin(&format!("boot to ready ({})", kernel_name(kernel)));
    println!(
        "Kernel start → last of 5 shell services started (s5 `after` s4), median of {n} interleaved boots each; \
         {MACHINE}. {} module(s) loaded by each init. ms since kernel start.\n",
        pair.modules
    );
    println!("| metric | azl init | busybox init | ratio azl/busybox | goal | result |");
    println!("|---|---:|---:|---:|---|---|");
    let row = |name: &str, f: &dyn Fn(&Sample) -> f64, goal: bool| {
        let (x, y) = (med(a, f), med(b, f));
        let (g, r) = if goal {
            ("≤ 1.00×", verdict(x <= y))
        } else {
            ("", "")
        };
        println!(
            "| {name} | {} | {} | {:.2}× | {g} | {r} |",
            ms(x),
            ms(y),
            x / y
        );
    };
    row(
        "**last service started** (kmsg timestamp, µs resolution)",
        &|s| s.last_kmsg,
        true,
    );
    row(
        "last service started (/proc/uptime, 10 ms resolution)",
        &|s| s.last_uptime,
        false,
    );
    row(
        "kernel runs /init (`Run /init as init process`)",
        &|s| s.init_exec,
        false,
    );
    row(
        "/init → last service started (user space part)",
        &|s| s.last_kmsg - s.init_exec,
        false,
    );
    let ready = med_opt(a, |s| s.azl_ready).unwrap_or(f64::NAN);
    println!(
        "| azl init `ready: … ms since kernel start` line | {} | — | — | | |",
        ms(ready)
    );
    let spread = |v: &[Sample]| {
        let xs: Vec<f64> = v.iter().map(|s| s.last_kmsg * 1000.0).collect();
        let lo = xs.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = xs.iter().cloned().fold(0.0, f64::max);
        format!("{lo:.0}–{hi:.0}")
    };
    println!(
        "| range of last service started over all boots | {} | {} | | | |",
        spread(a),
        spread(b)
    );
    end(&format!(
        "bench_boot_to_ready_{}_kernel",
        if kernel == Kernel::Small {
            "small"
        } else {
            "debian"
        }
    ));
}

#[test]
#[ignore = "benchmark: scripts/bench.sh"]
fn bench_boot_to_ready_small_kernel() {
    boot_to_ready(Kernel::Small, 9);
}

#[test]
#[ignore = "benchmark: scripts/bench.sh"]
fn bench_boot_to_ready_debian_kernel() {
    boot_to_ready(Kernel::Debian, 7);
}
