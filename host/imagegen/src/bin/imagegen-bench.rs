//! imagegen-bench: times imagegen's dm-verity tree and squashfs writers
//! against the reference tools (`veritysetup format`, `mksquashfs`) on the
//! same input in the same run, checks the outputs agree, and prints
//! Markdown table rows for `docs/BENCHMARKS.md`.
//!
//! ```text
//! cargo run --release -p imagegen --bin imagegen-bench -- verity [--mib 256] [--runs 5]
//! cargo run --release -p imagegen --bin imagegen-bench -- squashfs [--tree DIR] [--runs 3]
//! cargo build --release -p imagegen --bins &&
//!   target/release/imagegen-bench bundle [--config images/demo.toml] [--runs 5]
//! ```
//! The bundle benchmark runs the `imagegen` next to it as users do: the
//! whole `imagegen build` (baseline) against `imagegen bundle` of the same
//! config, checks the bundles are byte-identical across runs and that
//! `imagegen inspect` accepts them, and reports the bundle's size against
//! the raw slot partition.
//! Without `--tree`, the squashfs benchmark generates a deterministic
//! ~50 MiB tree of mixed content (text-like and incompressible files).
#![forbid(unsafe_code)]
// A developer benchmark on generated input, not a reader of hostile input: it may stop on the first surprise.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
use azl_imagepath::ImagePath;
use azl_squashfs as squashfs;
use azl_verity as verity;
use std::error::Error;
use std::fs::{self, File};
use std::num::NonZeroUsize;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

const SALT: &str = "5a1f004299103cdeadbeef0102030405060708090a0b0c0d0e0f101112131415";
const UUID: &str = "3f2a9b10-445e-4c1d-8e02-6a7b90c1d2e3";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("verity") => bench_verity(&args[1..]),
        Some("squashfs") => bench_squashfs(&args[1..]),
        Some("bundle") => bench_bundle(&args[1..]),
        _ => Err("usage: imagegen-bench verity [--mib N] [--runs N] | \
                  squashfs [--tree DIR] [--runs N] | \
                  bundle [--config FILE] [--runs N] [--imagegen PATH]"
            .into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("imagegen-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The value after `--name`, if given.
fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn number(args: &[String], name: &str, default: usize) -> Result<usize> {
    match flag(args, name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|e| format!("{name} {v}: {e}").into()),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .output()
        .map_err(|e| format!("{:?}: {e} (run scripts/setup.sh)", cmd.get_program()))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(())
}

/// Deterministic bytes: 64 KiB runs alternating between splitmix64 output
/// (incompressible) and text-like lines (compressible).
fn mixed_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 32);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        if (out.len() / 65536) % 2 == 0 {
            out.extend_from_slice(&z.to_le_bytes());
        } else {
            out.extend_from_slice(format!("key_{} = value {}\n", z % 97, z % 1013).as_bytes());
        }
    }
    out.truncate(len);
    out
}

fn bench_verity(args: &[String]) -> Result<()> {
    let mib = number(args, "--mib", 256)?;
    let runs = number(args, "--runs", 5)?.max(1);
    let dir = tempfile::tempdir()?;
    let data_path = dir.path().join("data");
    let data = mixed_bytes(mib << 20, 1);
    fs::write(&data_path, &data)?;
    let ref_hash = dir.path().join("hash.ref");
    let our_hash = dir.path().join("hash.ours");
    let salt: Vec<u8> = (0..SALT.len() / 2)
        .map(|i| u8::from_str_radix(&SALT[2 * i..2 * i + 2], 16))
        .collect::<std::result::Result<_, _>>()?;
    let uuid_hex = UUID.replace('-', "");
    let mut uuid = [0u8; 16];
    for (i, b) in uuid.iter_mut().enumerate() {
        *b = u8::from_str_radix(&uuid_hex[2 * i..2 * i + 2], 16)?;
    }
    let params = verity::VerityParams::new(salt, uuid);

    let (mut theirs, mut ours, mut ours_mem, mut ours_1t) = (vec![], vec![], vec![], vec![]);
    for _ in 0..runs {
        fs::write(&ref_hash, b"")?;
        let t = Instant::now();
        run(Command::new("veritysetup")
            .arg("format")
            .arg(&data_path)
            .arg(&ref_hash)
            .args([
                "--hash=sha256",
                "--data-block-size=4096",
                "--hash-block-size=4096",
            ])
            .arg(format!("--salt={SALT}"))
            .arg(format!("--uuid={UUID}")))?;
        theirs.push(t.elapsed());

        let t = Instant::now();
        let out =
            verity::build_from_reader(File::open(&data_path)?, mib as u64 * 1024 * 1024, &params)?;
        fs::write(&our_hash, &out.superblock_and_tree)?;
        ours.push(t.elapsed());

        let t = Instant::now();
        verity::build(&data, &params)?;
        ours_mem.push(t.elapsed());

        let t = Instant::now();
        verity::build_with_threads(&data, &params, NonZeroUsize::MIN)?;
        ours_1t.push(t.elapsed());
    }
    if fs::read(&ref_hash)? != fs::read(&our_hash)? {
        return Err("our hash area differs from veritysetup's".into());
    }
    let (theirs, ours) = (median(theirs), median(ours));
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    println!("data: {mib} MiB, {runs} runs each, median; {cores} cores; outputs identical");
    println!("| tool | time | veritysetup / tool |");
    println!("| --- | --- | --- |");
    println!(
        "| `veritysetup format` (file → file) | {} | 1.00× |",
        secs(theirs)
    );
    let row = |name: &str, d: Duration| {
        let ratio = theirs.as_secs_f64() / d.as_secs_f64();
        println!("| {name} | {} | {ratio:.2}× |", secs(d));
    };
    row("imagegen `verity::build_from_reader` (file → file)", ours);
    row("imagegen `verity::build` (in memory)", median(ours_mem));
    row(
        "imagegen `verity::build_with_threads(1)` (in memory)",
        median(ours_1t),
    );
    Ok(())
}

/// Generate the default benchmark tree: 40 directories of files from
/// 100 bytes to 1.5 MiB, ~50 MiB in all, plus a few symlinks.
fn generate_tree(root: &Path) -> Result<()> {
    let mut total = 0usize;
    let mut i = 0u64;
    while total < 50 << 20 {
        let dir = root.join(format!("usr/lib/pkg{:02}", i % 40));
        fs::create_dir_all(&dir)?;
        // Sizes cycle through small, medium and large files.
        let len = [100, 3_000, 20_000, 150_000, 700_000, 1_500_000][(i % 6) as usize];
        let len = len + (i as usize * 37) % 1000;
        fs::write(dir.join(format!("file{i:04}.bin")), mixed_bytes(len, i))?;
        total += len;
        i += 1;
    }
    fs::create_dir_all(root.join("usr/bin"))?;
    for n in 0..5 {
        std::os::unix::fs::symlink(
            format!("../lib/pkg{n:02}/file{n:04}.bin"),
            root.join(format!("usr/bin/tool{n}")),
        )?;
    }
    Ok(())
}

/// Walk `dir` into squashfs entries: host modes, everything owned by 0:0
/// (like `mksquashfs -all-root`).
fn entries_from_dir(root: &Path) -> Result<Vec<squashfs::Entry>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for de in fs::read_dir(root.join(&rel))? {
            let de = de?;
            let rel = rel.join(de.file_name());
            let md = fs::symlink_metadata(root.join(&rel))?;
            let ft = md.file_type();
            let node = if ft.is_dir() {
                stack.push(rel.clone());
                squashfs::Node::Dir
            } else if ft.is_symlink() {
                let target = fs::read_link(root.join(&rel))?;
                squashfs::Node::Symlink(target.to_string_lossy().into_owned())
            } else if ft.is_file() {
                squashfs::Node::File(squashfs::FileData::Host(root.join(&rel)))
            } else {
                continue;
            };
            let path = ImagePath::parse(&format!("/{}", rel.display()))?;
            out.push(squashfs::Entry {
                path,
                node,
                mode: md.permissions().mode() & 0o7777,
                uid: 0,
                gid: 0,
            });
        }
    }
    Ok(out)
}

fn bench_squashfs(args: &[String]) -> Result<()> {
    let runs = number(args, "--runs", 3)?.max(1);
    let dir = tempfile::tempdir()?;
    let tree = match flag(args, "--tree") {
        Some(t) => PathBuf::from(t),
        None => {
            let t = dir.path().join("tree");
            generate_tree(&t)?;
            t
        }
    };
    let ref_img = dir.path().join("ref.img");
    let our_img = dir.path().join("ours.img");
    let opts = squashfs::Options::default();

    let (mut theirs, mut ours) = (vec![], vec![]);
    let mut our_size = 0;
    for _ in 0..runs {
        let t = Instant::now();
        run(Command::new("mksquashfs")
            .arg(&tree)
            .arg(&ref_img)
            .args(["-comp", "zstd", "-Xcompression-level", "15", "-b", "131072"])
            .args(["-noappend", "-no-xattrs", "-all-root", "-mkfs-time", "0"])
            .args(["-all-time", "0", "-quiet", "-no-progress"]))?;
        theirs.push(t.elapsed());

        let t = Instant::now();
        let entries = entries_from_dir(&tree)?;
        let image = squashfs::build(&entries, &opts)?;
        fs::write(&our_img, &image.bytes)?;
        ours.push(t.elapsed());
        our_size = image.bytes.len() as u64;
    }
    // Same content: both images list the same tree.
    let list = |img: &Path| -> Result<Vec<u8>> {
        let out = Command::new("unsquashfs").arg("-lln").arg(img).output()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| l.contains("squashfs-root"))
            .map(|l| {
                // Drop the size column of directories (layout-dependent).
                let t: Vec<&str> = l.split_whitespace().collect();
                if t[0].starts_with('d') {
                    format!("{} {} {}", t[0], t[1], t[t.len() - 1])
                } else {
                    t.join(" ")
                }
            })
            .collect();
        lines.sort();
        Ok(lines.join("\n").into_bytes())
    };
    if list(&ref_img)? != list(&our_img)? {
        return Err("our image lists differently from mksquashfs's".into());
    }
    let their_size = fs::metadata(&ref_img)?.len();
    let (theirs, ours) = (median(theirs), median(ours));
    let input: u64 = entries_from_dir(&tree)?
        .iter()
        .filter_map(|e| match &e.node {
            squashfs::Node::File(squashfs::FileData::Host(p)) => fs::metadata(p).ok(),
            _ => None,
        })
        .map(|m| m.len())
        .sum();
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    println!(
        "tree: {} ({:.1} MiB of files), {runs} runs each, median; {cores} cores; same listing",
        tree.display(),
        input as f64 / 1048576.0
    );
    println!("| tool | time | mksquashfs / tool (time) | image bytes | tool / mksquashfs (size) |");
    println!("| --- | --- | --- | --- | --- |");
    println!(
        "| `mksquashfs` zstd 15, 128 KiB | {} | 1.00× | {their_size} | 1.000 |",
        secs(theirs)
    );
    println!(
        "| imagegen `squashfs::build` zstd 15, 128 KiB | {} | {:.2}× | {our_size} | {:.3} |",
        secs(ours),
        theirs.as_secs_f64() / ours.as_secs_f64(),
        our_size as f64 / their_size as f64
    );
    Ok(())
}

/// Run `cmd`, return its stdout (an error with stderr if it fails).
fn output(cmd: &mut Command) -> Result<Vec<u8>> {
    let out = cmd
        .output()
        .map_err(|e| format!("{:?}: {e}", cmd.get_program()))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(out.stdout)
}

fn bench_bundle(args: &[String]) -> Result<()> {
    let runs = number(args, "--runs", 5)?.max(1);
    let config = PathBuf::from(flag(args, "--config").unwrap_or("images/demo.toml".into()));
    let imagegen = match flag(args, "--imagegen") {
        Some(p) => PathBuf::from(p),
        None => std::env::current_exe()?
            .parent()
            .ok_or("no directory for imagegen")?
            .join("imagegen"),
    };
    let dir = tempfile::tempdir()?;
    let key = dir.path().join("k");
    output(Command::new(&imagegen).arg("keygen").arg("-o").arg(&key))?;
    let ig = |sub: &str| {
        let mut c = Command::new(&imagegen);
        c.arg(sub)
            .arg("--config")
            .arg(&config)
            .arg("--key")
            .arg(&key)
            .env("SOURCE_DATE_EPOCH", "1700000000");
        c
    };
    let (mut build, mut bundle, mut inspect) = (vec![], vec![], vec![]);
    let mut first: Option<Vec<u8>> = None;
    let mut summary = serde_json::Value::Null;
    for i in 0..runs {
        let t = Instant::now();
        output(ig("build").arg("-o").arg(dir.path().join("out")))?;
        build.push(t.elapsed());

        let file = dir.path().join(format!("b{i}.azb"));
        let t = Instant::now();
        let json = output(ig("bundle").arg("-o").arg(&file).arg("--json"))?;
        bundle.push(t.elapsed());
        summary = serde_json::from_slice(&json)?;

        let t = Instant::now();
        output(
            Command::new(&imagegen)
                .arg("inspect")
                .arg(&file)
                .arg("--key")
                .arg(dir.path().join("k.pub")),
        )?;
        inspect.push(t.elapsed());

        let bytes = fs::read(&file)?;
        match &first {
            None => first = Some(bytes),
            Some(f) if *f != bytes => {
                return Err(format!("bundle run {i} differs from run 0").into())
            }
            Some(_) => {}
        }
        fs::remove_file(&file)?;
    }
    let (build, bundle, inspect) = (median(build), median(bundle), median(inspect));
    let n = |k: &str| summary[k].as_u64().unwrap_or(0);
    let payload = |i: usize| summary["payloads"][i]["size"].as_u64().unwrap_or(0);
    let (size, slot) = (n("size"), n("slot_size"));
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    println!(
        "config: {}, slot {}, {runs} runs each, median; {cores} cores; bundles byte-identical, inspect OK",
        config.display(),
        summary["slot"].as_str().unwrap_or("?")
    );
    println!("| command | time | vs `imagegen build` |");
    println!("| --- | ---: | ---: |");
    println!(
        "| `imagegen build` (whole disk image, baseline) | {} | 1.00× |",
        secs(build)
    );
    for (name, d) in [
        ("`imagegen bundle`", bundle),
        ("`imagegen inspect BUNDLE` (every block checked)", inspect),
    ] {
        println!(
            "| {name} | {} | {:.2}× |",
            secs(d),
            d.as_secs_f64() / build.as_secs_f64()
        );
    }
    println!();
    println!("| bytes | size | vs raw slot |");
    println!("| --- | ---: | ---: |");
    let human = |b: u64| {
        if b >= 1 << 20 {
            format!("{:.1} MiB", b as f64 / 1048576.0)
        } else {
            format!("{:.1} KiB", b as f64 / 1024.0)
        }
    };
    let row = |name: &str, b: u64| {
        println!(
            "| {name} | {b} ({}) | {:.4} |",
            human(b),
            b as f64 / slot as f64
        );
    };
    row("raw slot partition", slot);
    row("bundle file", size);
    row("  root-data (squashfs)", payload(1));
    row("  hash-tree (verity)", payload(0));
    row("  head (preamble, manifest, signed header)", n("head_size"));
    Ok(())
}
