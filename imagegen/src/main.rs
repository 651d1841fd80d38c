//! The `imagegen` command line: `build` an image, `run` it in QEMU.
use clap::{Parser, Subcommand};
use imagegen::expand::ProcessEnv;
use imagegen::pipeline::{self, BuildOptions, Summary};
use imagegen::run::{self, RunOptions};
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

#[derive(Debug, Subcommand)]
enum Command {
    /// Build kernel + initramfs (+ cmdline, board, compiled configs) into OUT.
    Build {
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
        /// Output directory.
        #[arg(long, short = 'o', value_name = "OUT")]
        out: PathBuf,
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Build {
            config,
            board,
            boards_dir,
            kernel,
            init,
            out,
        } => {
            let opts = BuildOptions {
                config,
                board,
                boards_dir,
                kernel,
                init,
            };
            let exe = std::env::current_exe().ok();
            let built = pipeline::compile(&opts, &ProcessEnv, exe.as_deref())
                .and_then(|image| pipeline::write(&image, &out).map(|()| image));
            match built {
                Ok(image) => {
                    let kernel_size = std::fs::metadata(&image.kernel.image).map_or(0, |m| m.len());
                    println!(
                        "{}",
                        Summary {
                            image: &image,
                            out: &out,
                            kernel_size,
                        }
                    );
                    0
                }
                Err(e) => {
                    eprintln!("imagegen: error: {e}");
                    1
                }
            }
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
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
