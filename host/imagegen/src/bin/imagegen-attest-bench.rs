//! imagegen-attest-bench: attestation verify throughput of `imagegen attest
//! verify` against `tpm2_checkquote` on the same real quote, in one run.
//!
//! ```text
//! cargo build --release -p imagegen --bins
//! taskset -c 0 target/release/imagegen-attest-bench [--runs 300] [--inproc 20000] [--keep DIR]
//! ```
//!
//! Makes a quote with swtpm + tpm2-tools (AK, the predicted events of a
//! synthetic signed manifest extended into PCRs 8, 9, 11, tpm2_quote),
//! assembles the report, then times:
//! - our verifier in-process (`Inputs::check`: report decode, manifest
//!   Ed25519 signature, every quote/AK/log/reference check), `--inproc` times;
//! - `imagegen attest verify` as a process (the binary next to this one), `--runs` times;
//! - `tpm2_checkquote -u ak.pub -m msg -s sig -f pcrs -g sha256 -q NONCE`, `--runs` times
//!   (quote signature, nonce and PCR digest only: no event log, no reference).
//!
//! Prints Markdown table rows for `docs/BENCHMARKS.md`. `--keep DIR` copies
//! the report, manifest, keys, quote files and nonce there.
#![forbid(unsafe_code)]
use azl_attest::reference::{expected_log, predict};
use azl_attest::swtpm::Swtpm;
use azl_formats::attest::{Report, Tier};
use azl_formats::envelope::Enveloped;
use azl_formats::manifest::Manifest;
use azl_image::attest::cli::{Inputs, VerifyArgs};
use azl_sign::{self as sign, SigningKey};
use std::error::Error;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match bench(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("imagegen-attest-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn number(args: &[String], name: &str, default: u32) -> Result<u32> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => {
            let v = args.get(i + 1).ok_or(format!("{name} needs a value"))?;
            Ok(v.parse().map_err(|e| format!("{name} {v}: {e}"))?)
        }
    }
}

fn manifest() -> Manifest {
    // The shared example, sized like a realistic image.
    let mut m = azl_formats::manifest::example();
    m.image_name = "bench".into();
    m.build_epoch = 1_700_000_000;
    m.kernel.size = 8 << 20;
    m.initramfs.size = 1 << 20;
    m.cmdline = "console=ttyAMA0 panic=-1 quiet".into();
    m.rootfs.data_size = 32 << 20;
    m.rootfs.verity.salt = vec![0x5a; 32];
    m.rootfs.verity.data_blocks = 8192;
    m.rootfs.verity.hash_offset = 32 << 20;
    m.rootfs.verity.hash_size = 266_240;
    m
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn time_process(runs: u32, mut make: impl FnMut() -> Command) -> Result<f64> {
    let start = Instant::now();
    for _ in 0..runs {
        let st = make()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        if !st.success() {
            return Err(format!("{:?} failed ({st})", make().get_program()).into());
        }
    }
    Ok(start.elapsed().as_secs_f64())
}

fn bench(args: &[String]) -> Result<()> {
    let runs = number(args, "--runs", 300)?.max(1);
    let inproc = number(args, "--inproc", 20_000)?.max(1);
    if !Swtpm::available() {
        return Err("swtpm / tpm2-tools not installed (run scripts/setup.sh)".into());
    }
    let exe = std::env::current_exe()?;
    let imagegen = exe.with_file_name("imagegen");
    if !imagegen.is_file() {
        return Err(format!(
            "{} not built (cargo build --release -p imagegen --bins)",
            imagegen.display()
        )
        .into());
    }

    // The fixture: a signed manifest with reference values, a booted swtpm.
    let doc = ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
        .map_err(|_| "generating a key")?;
    let key = SigningKey::from_pkcs8(doc.as_ref())?;
    let table = vec![0x42u8; 600];
    let mut m = manifest();
    let id = m.identity_bytes()?;
    m.reference = Some(predict(&id, &m.cmdline, &m.rootfs.verity.root_hash, &table));
    let signed = sign::sign(&m, Some(&key))?;
    let log = expected_log(&id, &m.cmdline, &m.rootfs.verity.root_hash, &table);

    let tpm = Swtpm::start()?;
    let ak = tpm.create_ak("ak")?;
    for e in azl_formats::eventlog::parse(log.as_bytes()).map_err(|e| e.to_string())? {
        tpm.extend(e.pcr as u8, &e.sha256)?;
    }
    let nonce: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(91) ^ 0x3c).collect();
    let (attest, sig) = tpm.quote("ak", "sha256:8,9,11", &nonce, "q")?;
    let pcrs = tpm.read_pcrs(&azl_formats::measure::QUOTED_PCRS)?;
    let mut quote = (attest.len() as u16).to_be_bytes().to_vec();
    quote.extend_from_slice(&attest);
    let report = Report {
        tier: Tier::Tpm,
        nonce: nonce.clone(),
        ak_public: ak,
        quote,
        signature: sig,
        pcrs,
        event_log: log.to_bytes(),
        manifest: signed.to_bytes()?,
    };
    let dir: &Path = tpm.dir();
    std::fs::write(dir.join("report.bin"), report.to_bytes()?)?;
    std::fs::write(dir.join("manifest.bin"), signed.to_bytes()?)?;
    std::fs::write(dir.join("manifest.pub"), key.public_key())?;
    let vargs = VerifyArgs {
        report: dir.join("report.bin"),
        manifest: dir.join("manifest.bin"),
        nonce: Some(hex(&nonce)),
        ak: Some(dir.join("ak.pub")),
        ..Default::default()
    };
    if let Some(i) = args.iter().position(|a| a == "--keep") {
        // Keep the fixture for trying the CLI by hand.
        let keep = Path::new(args.get(i + 1).ok_or("--keep needs a directory")?);
        std::fs::create_dir_all(keep)?;
        for f in [
            "report.bin",
            "manifest.bin",
            "manifest.pub",
            "ak.pub",
            "q.msg",
            "q.sig",
            "q.pcrs",
        ] {
            std::fs::copy(dir.join(f), keep.join(f))?;
        }
        std::fs::write(keep.join("nonce.hex"), hex(&nonce))?;
    }
    let inputs = Inputs::load(&vargs)?;
    let first = inputs.check();
    if !first.attested() {
        return Err(format!("the fixture does not verify:\n{first}").into());
    }

    // Ours, in-process.
    let start = Instant::now();
    for _ in 0..inproc {
        if !inputs.check().attested() {
            return Err("verification flipped".into());
        }
    }
    let ours_in = start.elapsed().as_secs_f64();

    // Ours and tpm2_checkquote as processes, interleaved in halves.
    let nonce_hex = hex(&nonce);
    let ours_cmd = || {
        let mut c = Command::new(&imagegen);
        c.args(["attest", "verify"])
            .arg(&vargs.report)
            .arg("--manifest")
            .arg(&vargs.manifest)
            .args(["--nonce", &nonce_hex, "--ak"])
            .arg(dir.join("ak.pub"));
        c
    };
    let theirs_cmd = || {
        let mut c = Command::new("tpm2_checkquote");
        c.current_dir(dir).args([
            "-u", "ak.pub", "-m", "q.msg", "-s", "q.sig", "-f", "q.pcrs", "-g", "sha256", "-q",
            &nonce_hex,
        ]);
        c
    };
    let half = runs.div_ceil(2);
    let mut ours_p = time_process(half, ours_cmd)?;
    let mut theirs_p = time_process(half, theirs_cmd)?;
    theirs_p += time_process(half, theirs_cmd)?;
    ours_p += time_process(half, ours_cmd)?;
    let n = f64::from(half * 2);

    let rate = |count: f64, secs: f64| count / secs;
    let theirs_rate = rate(n, theirs_p);
    let row = |what: &str, count: f64, secs: f64| {
        let r = rate(count, secs);
        println!(
            "| {what} | {count:.0} | {:.3} s | {:.1} µs | {r:.0} | {:.1}× |",
            secs,
            secs * 1e6 / count,
            r / theirs_rate
        );
    };
    println!("| verifier | runs | total | per report | reports/s | vs tpm2_checkquote |");
    println!("|---|---:|---:|---:|---:|---:|");
    row(
        "azl `imagegen attest verify`, in-process (`--bench`)",
        f64::from(inproc),
        ours_in,
    );
    row(
        "azl `imagegen attest verify`, one process per report",
        n,
        ours_p,
    );
    row(
        "baseline: `tpm2_checkquote` (one process per report)",
        n,
        theirs_p,
    );
    Ok(())
}
