//! The `imagegen` command line: `build` an image, `bundle` it as a signed
//! update for one root slot, `run` it in QEMU, `keygen` a manifest signing
//! key, `inspect` a built image or bundle, `attest verify` a device's
//! attestation report (and `attest enroll` its AK).
#![forbid(unsafe_code)]
use azl_formats::manifest::Hex;
use azl_image::expand::ProcessEnv;
use azl_image::pipeline::{self, BuildOptions};
use azl_image::reproduce;
use azl_image::run::{self, RunOptions};
use azl_image::summary::Summary;
use clap::{Parser, Subcommand};
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Build and boot azl-edge images.
#[derive(Debug, Parser)]
#[command(name = "imagegen", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// What an image is built from (shared by `build` and `bundle`).
#[derive(Debug, clap::Args)]
struct Inputs {
    /// Image config (TOML).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: PathBuf,
    /// Board name, or path to a board file (overrides [image] board).
    #[arg(long, value_name = "NAME|PATH")]
    board: Option<String>,
    /// Where board names are looked up (default: $AZL_BOARDS, else the repo's boards/).
    #[arg(long, value_name = "DIR")]
    boards_dir: Option<PathBuf>,
    /// Unpacked kernel package directory (overrides [kernel] path).
    #[arg(long, value_name = "DIR")]
    kernel: Option<PathBuf>,
    /// aarch64 init binary (overrides [image] init and $AZL_INIT).
    #[arg(long, value_name = "PATH")]
    init: Option<PathBuf>,
    /// Install exactly the packages of imagegen.lock (next to the config),
    /// failing if a repository no longer has one of them byte for byte.
    #[arg(long)]
    locked: bool,
}

impl Inputs {
    fn options(
        self,
        key: Option<PathBuf>,
        insecure_unsigned: bool,
        slot: Option<String>,
    ) -> BuildOptions {
        BuildOptions {
            config: self.config,
            board: self.board,
            boards_dir: self.boards_dir,
            kernel: self.kernel,
            init: self.init,
            key,
            insecure_unsigned,
            slot,
            locked: self.locked,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build kernel + initramfs (+ cmdline, board, compiled configs) into OUT.
    Build {
        #[command(flatten)]
        inputs: Inputs,
        /// Output directory.
        #[arg(long, short = 'o', value_name = "OUT")]
        out: PathBuf,
        /// Ed25519 PKCS#8 key that signs the disk image's manifest (from `imagegen keygen`).
        #[arg(long, value_name = "KEY")]
        key: Option<PathBuf>,
        /// Build a disk image without a signature (development only; init warns loudly).
        #[arg(long)]
        insecure_unsigned: bool,
        /// Build a second time into a scratch directory and fail unless every
        /// output file is byte-identical.
        #[arg(long)]
        verify_reproducible: bool,
    },
    /// Build a signed update bundle: the image built as for `build`, with
    /// SLOT as its root slot, laid out for `update install` on a device.
    /// A device installs into the slot it is not running: a factory image
    /// runs root-a and takes a root-b bundle; one running root-b needs a
    /// `--slot root-a` bundle (a fleet publishes both).
    Bundle {
        /// Ed25519 PKCS#8 key that signs the manifest and the bundle header
        /// (the key whose KEY.pub the devices trust).
        #[arg(long, value_name = "KEY")]
        key: Option<PathBuf>,
        /// Bundle file to write (atomically).
        #[arg(long, short = 'o', value_name = "FILE")]
        out: PathBuf,
        /// Root slot the bundle installs into.
        #[arg(long, value_name = "SLOT", default_value = azl_image::bundle::DEFAULT_SLOT)]
        slot: String,
        /// Refuse to install over a system below this security version.
        #[arg(long, value_name = "N")]
        min_from_security_version: Option<u32>,
        #[command(flatten)]
        inputs: Inputs,
        /// Print the summary as one JSON object.
        #[arg(long)]
        json: bool,
        /// Refused: bundles are always signed (accepted only to say so).
        #[arg(long, hide = true)]
        insecure_unsigned: bool,
    },
    /// Resolve the config's [packages] (and [kernel] rpm) against its
    /// [[repo]]s, fetch and check every RPM, and write imagegen.lock next to
    /// the config: the exact name, EVR, arch, repository and sha256 of each.
    Lock {
        /// Image config (TOML).
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
        /// Write the lock here instead of next to the config.
        #[arg(long, short = 'o', value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Boot a built image in QEMU; exits with QEMU's exit code (124 on --timeout).
    Run {
        /// Output directory of `imagegen build`.
        out: PathBuf,
        /// Attach a software TPM 2.0 (swtpm).
        #[arg(long)]
        tpm: bool,
        /// Raw disk image attached as virtio-blk (repeatable, in order).
        #[arg(long = "disk", value_name = "FILE")]
        disks: Vec<PathBuf>,
        /// Extra kernel command-line arguments.
        #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
        append: Option<String>,
        /// Stop QEMU after SECS seconds and exit 124.
        #[arg(long, value_name = "SECS")]
        timeout: Option<u64>,
        /// Extra QEMU arguments (after `--`).
        #[arg(last = true, value_name = "QEMU_ARGS")]
        qemu_args: Vec<String>,
    },
    /// Generate an Ed25519 manifest signing key: PKCS#8 private key in KEY
    /// (mode 0600), raw 32-byte public key in KEY.pub.
    Keygen {
        /// Private key file to create.
        #[arg(long, short = 'o', value_name = "KEY")]
        out: PathBuf,
        /// Replace KEY and KEY.pub if they exist.
        #[arg(long)]
        force: bool,
    },
    /// Describe and check a disk image, output directory or update bundle:
    /// partitions, manifests and their signatures, digests, sizes; for a
    /// bundle also its header signature, layout and every data block against
    /// the signed verity tree. Exits 0 when every check passes, 1 when one
    /// fails, 2 when the input cannot be read.
    Inspect {
        /// Disk image, output directory (uses OUT/disk.img if present), or bundle.
        image: PathBuf,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
        /// Raw 32-byte Ed25519 public key to verify the manifests with
        /// (default: manifest.pub or a matching *.pub next to the image).
        #[arg(long, value_name = "PUB")]
        key: Option<PathBuf>,
        /// Check the SBOM (default: sbom.spdx.json next to the image)
        /// against the manifest's sbom_sha256 and summarise its packages,
        /// files and licenses.
        #[arg(long, value_name = "SBOM", num_args = 0..=1)]
        sbom: Option<Option<PathBuf>>,
    },
    /// Measured boot: verify a device's attestation report against the
    /// image's signed reference values, or enroll a device's AK.
    Attest {
        #[command(subcommand)]
        command: AttestCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AttestCommand {
    /// Verify a report (`initctl attest`); fail-closed, stops at the first
    /// failing check. Exit 0 ATTESTED, 1 a check failed, 2 unreadable
    /// input, 3 --log-only found the log consistent (NOT attested).
    Verify {
        /// The report file (AZAR envelope).
        report: PathBuf,
        /// Reference: manifest.bin, a disk image, or an output directory.
        #[arg(long, value_name = "M")]
        manifest: PathBuf,
        /// The nonce sent to the device, hex.
        #[arg(long, value_name = "HEX", required_unless_present = "log_only")]
        nonce: Option<String>,
        /// The device's enrolled AK (TPM2B_PUBLIC, from `attest enroll`).
        /// Without it every TPM report is refused.
        #[arg(long, value_name = "PINNED")]
        ak: Option<PathBuf>,
        /// Raw Ed25519 key the manifest is signed with (default: manifest.pub next to M).
        #[arg(long, value_name = "PUB")]
        key: Option<PathBuf>,
        /// Check only the event log against the reference (software-only
        /// reports); the result is never ATTESTED.
        #[arg(long)]
        log_only: bool,
        /// Verify N times in-process and print the rate (benchmark).
        #[arg(long, value_name = "N", hide = true)]
        bench: Option<u32>,
        /// After an ATTESTED verdict, sign the approval of this trial boot
        /// (`[update] commit = "attested"`) with this private key (PKCS#8,
        /// as `imagegen keygen` writes it) and write it to -o FILE; on any
        /// failure nothing is written.
        #[arg(long, value_name = "KEY", requires = "out", conflicts_with_all = ["log_only", "bench"])]
        approve: Option<PathBuf>,
        /// Where --approve writes the approval (atomically).
        #[arg(long, short = 'o', value_name = "FILE", requires = "approve")]
        out: Option<PathBuf>,
    },
    /// Write the AK public of a report to AK, for pinning with `verify --ak`.
    /// Enroll only over a trusted channel (provisioning).
    Enroll {
        /// The report file (AZAR envelope).
        report: PathBuf,
        /// Where to write the AK public (TPM2B_PUBLIC).
        #[arg(long, short = 'o', value_name = "AK")]
        out: PathBuf,
        /// Replace AK if it exists.
        #[arg(long)]
        force: bool,
    },
}

/// Exit status when stdout was closed under us (`imagegen inspect OUT | head
/// -1`): what a C tool killed by SIGPIPE reports (128 + 13), never 0, so
/// `set -o pipefail` still sees that the output was cut short.
const EXIT_BROKEN_PIPE: u8 = 141;

/// Write to stdout, the one way this program prints: a reader that went
/// away (EPIPE) ends the program quietly with [`EXIT_BROKEN_PIPE`]; any
/// other write error is reported and exits 1.
fn out(args: std::fmt::Arguments<'_>) {
    let mut stdout = io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        drop(stdout);
        stdout_failed(&e);
    }
}

fn stdout_failed(e: &io::Error) -> ! {
    if e.kind() == io::ErrorKind::BrokenPipe {
        std::process::exit(EXIT_BROKEN_PIPE.into());
    }
    eprintln!("imagegen: error: writing to stdout: {e}");
    std::process::exit(1);
}

/// `println!` through [`out`].
macro_rules! outln {
    ($($arg:tt)*) => {
        out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Library code that prints with `println!` (the attest commands) panics
/// on EPIPE ("failed printing to stdout: Broken pipe"); end those quietly
/// too, like [`out`], and leave every other panic to the default hook.
fn quiet_broken_pipe_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(EXIT_BROKEN_PIPE.into());
        }
        default(info);
    }));
}

/// `imagegen build`: compile, write, summarise (and optionally rebuild to
/// prove reproducibility).
fn build(opts: &BuildOptions, out: &std::path::Path, verify_reproducible: bool) -> i32 {
    let exe = std::env::current_exe().ok();
    let built = pipeline::compile(opts, &ProcessEnv, exe.as_deref())
        .and_then(|image| pipeline::write(&image, out).map(|()| image));
    let image = match built {
        Ok(image) => image,
        Err(e) => {
            eprintln!("imagegen: error: {e}");
            return 1;
        }
    };
    for w in image.key_warnings.iter() {
        eprintln!("imagegen: warning: {w}");
    }
    if image.disk.is_some() && image.public_key.is_none() {
        eprintln!("imagegen: warning: INSECURE: the disk image is unsigned (--insecure-unsigned); do not ship it");
    }
    outln!("{}", Summary { image: &image, out });
    if verify_reproducible {
        match reproduce::verify(opts, &ProcessEnv, exe.as_deref(), out) {
            Ok(files) => outln!(
                "reproducible: a second build in a scratch directory gave {files} identical files"
            ),
            Err(e) => {
                eprintln!("imagegen: error: not reproducible: {e}");
                return 1;
            }
        }
    }
    0
}

/// `imagegen bundle`: build the slot, lay it out, write it, summarise.
fn bundle(opts: &BuildOptions, min_from: Option<u32>, out: &std::path::Path, json: bool) -> i32 {
    let exe = std::env::current_exe().ok();
    let built = pipeline::compile_bundle(opts, min_from, &ProcessEnv, exe.as_deref())
        .and_then(|(image, b)| b.write(out).map(|()| (image, b)).map_err(Into::into));
    let (image, b) = match built {
        Ok(x) => x,
        Err(e) => {
            eprintln!("imagegen: error: {e}");
            return 1;
        }
    };
    for w in image.key_warnings.iter() {
        eprintln!("imagegen: warning: {w}");
    }
    let summary = b.summary(out);
    if json {
        match serde_json::to_string(&summary) {
            Ok(s) => outln!("{s}"),
            Err(e) => {
                eprintln!("imagegen: error: encoding the summary as JSON: {e}");
                return 1;
            }
        }
    } else {
        outln!("{summary}");
    }
    0
}

fn main() -> ExitCode {
    quiet_broken_pipe_panics();
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Build {
            inputs,
            out,
            key,
            insecure_unsigned,
            verify_reproducible,
        } => {
            let opts = inputs.options(key, insecure_unsigned, None);
            build(&opts, &out, verify_reproducible)
        }
        Command::Bundle {
            inputs,
            key,
            out,
            slot,
            min_from_security_version,
            json,
            insecure_unsigned,
        } => {
            let opts = inputs.options(key, insecure_unsigned, Some(slot));
            bundle(&opts, min_from_security_version, &out, json)
        }
        Command::Run {
            out,
            tpm,
            disks,
            append,
            timeout,
            qemu_args,
        } => {
            let opts = RunOptions {
                out,
                tpm,
                disks,
                append,
                timeout: timeout.map(Duration::from_secs),
                extra: qemu_args,
            };
            match run::run(&opts) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("imagegen: error: {e}");
                    1
                }
            }
        }
        Command::Lock { config, out } => lock(&config, out),
        Command::Keygen { out, force } => keygen(&out, force),
        Command::Inspect {
            image,
            json,
            key,
            sbom: None,
        } => inspect(image, key, json),
        Command::Inspect {
            image,
            json,
            key,
            sbom: Some(sbom),
        } => inspect_sbom(image, key, sbom, json),
        Command::Attest { command } => attest(command),
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn lock(config: &std::path::Path, out: Option<PathBuf>) -> i32 {
    let written = pipeline::lock(config, &ProcessEnv).and_then(|(lock, path)| {
        let path = out.unwrap_or(path);
        lock.write(&path)?;
        Ok((lock, path))
    });
    match written {
        Ok((lock, path)) => {
            for p in &lock.packages {
                outln!("locked {} from {} (sha256 {})", p.nevra(), p.repo, p.sha256);
            }
            outln!(
                "wrote {} ({} packages)",
                path.display(),
                lock.packages.len()
            );
            0
        }
        Err(e) => {
            eprintln!("imagegen: error: {e}");
            1
        }
    }
}

fn keygen(out: &std::path::Path, force: bool) -> i32 {
    match azl_sign::generate_key_files(out, force) {
        Ok(g) => {
            outln!("private key: {}", g.private_path.display());
            outln!("public key:  {}", g.public_path.display());
            outln!("public key (hex): {}", Hex(&g.public_key));
            outln!("key id: {}", Hex(&g.key_id));
            0
        }
        Err(e) => {
            eprintln!("imagegen: error: {e}");
            1
        }
    }
}

fn inspect(path: PathBuf, key: Option<PathBuf>, json: bool) -> i32 {
    use azl_image::inspect::{self, InspectOptions};
    let report = inspect::inspect(&InspectOptions { path, key });
    print_report(
        report.map(|r| {
            let code = r.exit_code();
            (r, code)
        }),
        json,
    )
}

fn inspect_sbom(path: PathBuf, key: Option<PathBuf>, sbom: Option<PathBuf>, json: bool) -> i32 {
    use azl_image::inspect::{self, InspectOptions};
    let report = inspect::sbom_report(&InspectOptions { path, key }, sbom.as_deref());
    print_report(
        report.map(|r| {
            let code = r.exit_code();
            (r, code)
        }),
        json,
    )
}

/// An inspect report (with its exit code) as text or JSON; an error as a
/// message and [`azl_image::inspect::EXIT_ERROR`].
fn print_report<R, E>(report: Result<(R, u8), E>, json: bool) -> i32
where
    R: serde::Serialize + std::fmt::Display,
    E: std::fmt::Display,
{
    use azl_image::inspect::EXIT_ERROR;
    let (report, code) = match report {
        Ok(r) => r,
        Err(e) => {
            eprintln!("imagegen: error: {e}");
            return EXIT_ERROR.into();
        }
    };
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => outln!("{s}"),
            Err(e) => {
                eprintln!("imagegen: error: encoding the report as JSON: {e}");
                return EXIT_ERROR.into();
            }
        }
    } else {
        out(format_args!("{report}"));
    }
    code.into()
}

fn attest(command: AttestCommand) -> i32 {
    use azl_image::attest::cli;
    let code = match command {
        AttestCommand::Verify {
            report,
            manifest,
            nonce,
            ak,
            key,
            log_only,
            bench,
            approve,
            out,
        } => cli::verify_cmd(&cli::VerifyArgs {
            report,
            manifest,
            nonce,
            ak,
            key,
            log_only,
            bench,
            approve: approve.zip(out),
        }),
        AttestCommand::Enroll { report, out, force } => cli::enroll_cmd(&report, &out, force),
    };
    code.into()
}
