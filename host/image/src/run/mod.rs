//! `imagegen run OUT`: boot a built image in QEMU with the board's machine
//! settings, optional disks and TPM, the serial console on stdout, and
//! QEMU's exit code as ours.
pub mod process;
pub mod qemu;
pub mod swtpm;

use crate::board::{self, BoardError};
use crate::output;
use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use process::TIMEOUT_EXIT;

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub out: PathBuf,
    pub tpm: bool,
    pub disks: Vec<PathBuf>,
    /// Appended to the built cmdline.
    pub append: Option<String>,
    pub timeout: Option<Duration>,
    /// Passed to QEMU after everything else.
    pub extra: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{path} is missing; is {dir} the output of `imagegen build`?")]
    NotBuilt { dir: PathBuf, path: PathBuf },
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("board of {dir}: {source}")]
    Board { dir: PathBuf, source: BoardError },
    #[error("board {0} has no [qemu] section; it cannot be run in QEMU")]
    NotVirtual(String),
    #[error("{0} not found in PATH; run scripts/setup.sh")]
    ToolMissing(String),
    #[error("disk image {0} does not exist")]
    Disk(PathBuf),
    #[error("starting {program}: {source}")]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Swtpm(String),
    #[error("UEFI firmware {0} not found; install qemu-efi-aarch64 (scripts/setup.sh)")]
    Firmware(PathBuf),
    #[error("board {0} boots by UEFI: the kernel command line is in each slot's boot entry on the ESP, --append cannot change it")]
    AppendUefi(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

/// `name` found in `$PATH` (an executable file; the `which` crate).
pub fn which(name: &str) -> Option<PathBuf> {
    which::which(name).ok()
}

fn need(dir: &Path, name: &str) -> Result<PathBuf, RunError> {
    let p = dir.join(name);
    if p.is_file() {
        Ok(p)
    } else {
        Err(RunError::NotBuilt {
            dir: dir.into(),
            path: p,
        })
    }
}

/// Boot `opts.out`; returns the exit code imagegen should end with.
pub fn run(opts: &RunOptions) -> Result<i32, RunError> {
    let dir = &opts.out;
    let board_file = need(dir, output::BOARD)?;
    let board = board::load(&board_file, None).map_err(|source| RunError::Board {
        dir: dir.clone(),
        source,
    })?;
    let q = board
        .qemu
        .clone()
        .ok_or_else(|| RunError::NotVirtual(board.name.clone()))?;
    let uefi = board.boot_method == board::BootMethod::Uefi;
    if uefi && opts.append.as_deref().is_some_and(|a| !a.trim().is_empty()) {
        return Err(RunError::AppendUefi(board.name.clone()));
    }
    let (kernel, initrd, cmdline_file) = if uefi {
        Default::default()
    } else {
        (
            need(dir, output::KERNEL)?,
            need(dir, output::INITRAMFS)?,
            need(dir, output::CMDLINE)?,
        )
    };
    let vars = dir.join(output::EFI_VARS);
    if uefi {
        prepare_vars(
            Path::new(qemu::AAVMF_CODE),
            Path::new(qemu::AAVMF_VARS),
            &vars,
        )?;
    }
    let mut cmdline = if uefi {
        Ok(String::new())
    } else {
        std::fs::read_to_string(&cmdline_file)
    }
    .map_err(|source| RunError::Read {
        path: cmdline_file.clone(),
        source,
    })?
    .trim()
    .to_string();
    if let Some(a) = opts
        .append
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())
    {
        if !cmdline.is_empty() {
            cmdline.push(' ');
        }
        cmdline.push_str(a);
    }
    // The image's own disk comes first; it is used in place, so what the
    // device writes to /data persists from one run to the next.
    let own_disk = dir.join(output::DISK);
    let disks: Vec<PathBuf> = own_disk
        .is_file()
        .then_some(own_disk)
        .into_iter()
        .chain(opts.disks.iter().cloned())
        .collect();
    for d in &disks {
        if !d.is_file() {
            return Err(RunError::Disk(d.clone()));
        }
    }
    let qemu_name = qemu::binary_for(&board.arch);
    let qemu_bin = which(&qemu_name).ok_or_else(|| RunError::ToolMissing(qemu_name.clone()))?;
    let tpm = if opts.tpm {
        let swtpm_bin = which("swtpm").ok_or_else(|| RunError::ToolMissing("swtpm".into()))?;
        Some(swtpm::Swtpm::start(
            &swtpm_bin,
            &dir.join(output::TPM_STATE),
        )?)
    } else {
        None
    };
    let firmware = if uefi {
        qemu::Firmware::Uefi {
            code: Path::new(qemu::AAVMF_CODE),
            vars: &vars,
        }
    } else {
        qemu::Firmware::Direct {
            kernel: &kernel,
            initrd: &initrd,
            cmdline: &cmdline,
        }
    };
    let args: Vec<OsString> = qemu::args(&qemu::QemuInputs {
        qemu: &q,
        firmware,
        disks: &disks,
        tpm_socket: tpm.as_ref().map(|t| t.socket()),
        stdin_is_tty: std::io::stdin().is_terminal(),
        extra: &opts.extra,
    });
    eprintln!("imagegen: {}", qemu::shell_quote(&qemu_name, &args));
    let mut child = std::process::Command::new(&qemu_bin)
        .args(&args)
        .spawn()
        .map_err(|source| RunError::Spawn {
            program: qemu_bin.clone(),
            source,
        })?;
    let ending = process::supervise(&mut child, opts.timeout).map_err(|source| RunError::Io {
        what: "waiting for QEMU".into(),
        source,
    })?;
    drop(tpm);
    match ending {
        process::Ending::TimedOut => eprintln!(
            "imagegen: QEMU still running after the {} s timeout; stopped it",
            opts.timeout.map_or(0, |t| t.as_secs())
        ),
        process::Ending::Signalled(sig) => {
            eprintln!("imagegen: stopped QEMU on signal {sig}")
        }
        process::Ending::Exited(_) => {}
    }
    Ok(ending.exit_code())
}

/// A UEFI board's variable store: the image's own copy, made from the
/// firmware's template on the first run and then kept (boot entries,
/// BootOrder persist across runs like a device's flash). The copy goes
/// through a temporary file so a cut run never leaves half a store.
fn prepare_vars(code: &Path, template: &Path, vars: &Path) -> Result<(), RunError> {
    for f in [code, template] {
        if !f.is_file() {
            return Err(RunError::Firmware(f.to_path_buf()));
        }
    }
    if vars.is_file() {
        return Ok(());
    }
    let io = |what: String| move |source| RunError::Io { what, source };
    let tmp = vars.with_extension("fd.tmp");
    std::fs::copy(template, &tmp).map_err(io(format!("copying {}", template.display())))?;
    std::fs::rename(&tmp, vars).map_err(io(format!("creating {}", vars.display())))?;
    eprintln!(
        "imagegen: new UEFI variable store {} (first boot: no boot entry yet, the firmware shell \
         runs the ESP's startup.nsh, which creates slot a's entry and starts its kernel)",
        vars.display()
    );
    Ok(())
}
