//! `imagegen build`: runs the steps in order — config → board → kernel and
//! modules → rootfs (file set) → service table and boot config →
//! initramfs → output directory — and reports what it built.
//!
//! Config problems are all collected and reported together before anything
//! touches the board, kernel or init binary.
use crate::board::{self, Board, BoardError};
use crate::config::{
    BoardRef, Config, ConfigError, ConfigErrors, Diagnostics, ImageError, ImageSettings, LoadError,
};
use crate::expand::Env;
use crate::imagepath::ImagePath;
use crate::initbin::{self, InitBinError, InitBinary};
use crate::initramfs::{self, InitramfsError};
use crate::kernel::{Kernel, KernelError};
use crate::modules::{self, ModuleError, ModuleSet};
use crate::output::{self, OutputError};
use crate::rootfs::{Conflict, Content, FileSet};
use crate::{bootcfg, files, services, skeleton, users::UserDb};
use azl_formats::envelope::Enveloped;
use azl_formats::services::TableError;
use azl_formats::{paths, BootConfig, FormatError, ServiceTable};
use std::fmt;
use std::path::{Path, PathBuf};

/// arm64 `COMMAND_LINE_SIZE` (including the NUL).
pub const MAX_CMDLINE: usize = 2048;

/// What `imagegen build` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub config: PathBuf,
    /// `--board`: a name, or a path (contains `/` or ends in `.toml`).
    pub board: Option<String>,
    pub boards_dir: Option<PathBuf>,
    pub kernel: Option<PathBuf>,
    pub init: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Config(#[from] ConfigErrors),
    #[error("board: {0}")]
    Board(#[from] BoardError),
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error(transparent)]
    Modules(#[from] ModuleError),
    #[error(transparent)]
    Init(#[from] InitBinError),
    #[error("SOURCE_DATE_EPOCH={0:?} is not a number of seconds between 0 and 4294967295")]
    SourceDateEpoch(String),
    #[error("kernel command line is {len} bytes; the arm64 kernel takes at most {max}", max = MAX_CMDLINE - 1)]
    CmdlineTooLong { len: usize },
    #[error("internal error: {path}: {source}")]
    Internal { path: String, source: Conflict },
    #[error("internal error: compiled service table is inconsistent: {0}")]
    Table(TableError),
    #[error("encoding {what}: {reason}")]
    Encode {
        what: &'static str,
        reason: FormatError,
    },
    #[error(transparent)]
    Initramfs(#[from] InitramfsError),
    #[error(transparent)]
    Output(#[from] OutputError),
}

/// Everything a build produced, in memory.
#[derive(Debug, Clone)]
pub struct Image {
    pub name: String,
    pub version: String,
    pub board: Board,
    pub kernel: Kernel,
    pub modules: ModuleSet,
    pub init: InitBinary,
    pub cmdline: String,
    pub boot_config: BootConfig,
    pub services: ServiceTable,
    pub boot_cfg_bytes: Vec<u8>,
    pub services_bytes: Vec<u8>,
    pub initramfs: initramfs::Initramfs,
}

/// `SOURCE_DATE_EPOCH`, or 0 when unset or empty.
pub fn source_date_epoch(env: &dyn Env) -> Result<u32, BuildError> {
    match env.var("SOURCE_DATE_EPOCH") {
        None => Ok(0),
        Some(v) if v.trim().is_empty() => Ok(0),
        Some(v) => v
            .trim()
            .parse::<u32>()
            .map_err(|_| BuildError::SourceDateEpoch(v.clone())),
    }
}

fn encode<T: Enveloped>(what: &'static str, v: &T) -> Result<Vec<u8>, BuildError> {
    v.to_bytes()
        .map_err(|reason| BuildError::Encode { what, reason })
}

fn internal(path: &str) -> impl FnOnce(Conflict) -> BuildError + '_ {
    move |source| BuildError::Internal {
        path: path.to_string(),
        source,
    }
}

fn image_path(s: &str) -> Result<ImagePath, BuildError> {
    ImagePath::parse(s).map_err(|e| BuildError::Internal {
        path: s.to_string(),
        source: Conflict::Generated {
            path: ImagePath::root(),
            what: e.to_string(),
        },
    })
}

/// The config checked on its own (before board, kernel and init).
#[derive(Debug)]
pub struct Checked {
    pub settings: ImageSettings,
    pub users: UserDb,
    /// The file set without modules; `/init`, the boot config and the
    /// service table are still empty.
    pub set: FileSet,
    pub services: ServiceTable,
}

/// Check everything in the image config that needs neither the board nor
/// the kernel, reporting every problem at once. `board_given` and
/// `kernel_given` say whether the command line supplies what the config
/// may leave out.
pub fn check(
    cfg: &Config,
    env: &dyn Env,
    board_given: bool,
    kernel_given: bool,
) -> Result<Checked, BuildError> {
    let mut d = Diagnostics::new();
    let settings = cfg.image_settings(env, &mut d);
    if settings.board.is_none() && !board_given && cfg.doc.image.board.is_none() {
        d.push(cfg.source.file_loc(), ImageError::NoBoard);
    }
    if settings.kernel.is_none() && !kernel_given && cfg.doc.kernel.path.is_none() {
        d.push(cfg.source.file_loc(), ImageError::NoKernel);
    }
    let users = UserDb::compile(cfg, &mut d);
    let mut set = FileSet::new();
    skeleton::add_base(&mut set, Vec::new(), &settings.hostname, &users).map_err(internal("/"))?;
    files::add_config_files(cfg, env, &mut set, &mut d);
    let services = services::compile(cfg, &users, &set, &mut d);
    d.finish()?;
    Ok(Checked {
        settings,
        users,
        set,
        services,
    })
}

/// Build the image in memory. `exe` is imagegen's own path (for the default
/// init location).
pub fn compile(
    opts: &BuildOptions,
    env: &dyn Env,
    exe: Option<&Path>,
) -> Result<Image, BuildError> {
    let mtime = source_date_epoch(env)?;
    let cfg = Config::load(&opts.config)?;

    // 1. The config on its own: every problem at once.
    let Checked {
        settings,
        mut set,
        services,
        ..
    } = check(&cfg, env, opts.board.is_some(), opts.kernel.is_some())?;
    let board_ref = match &opts.board {
        Some(b) => Some(BoardRef::classify(b, Path::new("."))),
        None => settings.board.clone(),
    };
    let kernel_dir = opts.kernel.clone().or_else(|| settings.kernel.clone());
    let missing = |kind: ImageError| -> BuildError {
        ConfigErrors(vec![ConfigError {
            loc: cfg.source.file_loc(),
            kind: kind.into(),
        }])
        .into()
    };
    let board_ref = board_ref.ok_or_else(|| missing(ImageError::NoBoard))?;
    let kernel_dir = kernel_dir.ok_or_else(|| missing(ImageError::NoKernel))?;

    // 2. Board, kernel, modules, init.
    let boards_dir = board::boards_dir(opts.boards_dir.as_deref(), env);
    let board = board::resolve(&board_ref, &boards_dir)?;
    let kernel = Kernel::open(&kernel_dir)?;
    let modules = modules::resolve(&kernel, &board.modules, &board.name, &board.arch)?;
    let init = initbin::locate(opts.init.as_deref(), settings.init.as_deref(), env, exe)?;
    let init_bytes = initbin::check(&init.path)?;

    // 3. Complete the file set.
    set.set_content(&image_path(skeleton::INIT)?, Content::Bytes(init_bytes));
    skeleton::add_modules(&mut set, &modules).map_err(internal(paths::MODULES_DIR))?;
    services.validate().map_err(BuildError::Table)?;
    let boot_config = bootcfg::compile(&settings, &board, &modules);
    let boot_cfg_bytes = encode("boot config", &boot_config)?;
    let services_bytes = encode("service table", &services)?;
    set.set_content(
        &image_path(paths::BOOT_CONFIG)?,
        Content::Bytes(boot_cfg_bytes.clone()),
    );
    set.set_content(
        &image_path(paths::SERVICE_TABLE)?,
        Content::Bytes(services_bytes.clone()),
    );

    let cmdline = [Some(board.cmdline.as_str()), settings.cmdline.as_deref()]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if cmdline.len() >= MAX_CMDLINE {
        return Err(BuildError::CmdlineTooLong { len: cmdline.len() });
    }

    // 4. Serialize.
    let initramfs = initramfs::build(&set, mtime)?;
    Ok(Image {
        name: settings.name,
        version: settings.version,
        board,
        kernel,
        modules,
        init,
        cmdline,
        boot_config,
        services,
        boot_cfg_bytes,
        services_bytes,
        initramfs,
    })
}

/// Write `image` to `out`.
pub fn write(image: &Image, out: &Path) -> Result<(), BuildError> {
    output::write(
        out,
        &output::Output {
            kernel: &image.kernel.image,
            initramfs: &image.initramfs.gz,
            cmdline: &image.cmdline,
            board_toml: image.board.source.text(),
            boot_cfg: &image.boot_cfg_bytes,
            services_tbl: &image.services_bytes,
        },
    )?;
    Ok(())
}

/// The summary `imagegen build` prints.
pub struct Summary<'a> {
    pub image: &'a Image,
    pub out: &'a Path,
    pub kernel_size: u64,
}

fn human(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
    } else if bytes >= 1 << 10 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = self.image;
        writeln!(
            f,
            "built {} {} for board {} in {}",
            i.name,
            i.version,
            i.board.name,
            self.out.display()
        )?;
        writeln!(
            f,
            "  kernel     {} ({}, release {})",
            i.kernel.image.display(),
            human(self.kernel_size),
            i.modules.release.as_deref().unwrap_or("unknown")
        )?;
        writeln!(
            f,
            "  initramfs  {} gzip ({} cpio, {} entries)",
            human(i.initramfs.gz.len() as u64),
            human(i.initramfs.cpio_size),
            i.initramfs.entries
        )?;
        writeln!(
            f,
            "  init       {} (from {})",
            i.init.path.display(),
            i.init.origin
        )?;
        let mods: Vec<&str> = i.modules.modules.iter().map(|m| m.name.as_str()).collect();
        write!(f, "  modules    {}", mods.len())?;
        if !mods.is_empty() {
            write!(f, ": {}", mods.join(", "))?;
        }
        if !i.modules.builtin.is_empty() {
            write!(f, " ({} built into the kernel)", i.modules.builtin.len())?;
        }
        writeln!(f)?;
        let svcs: Vec<&str> = i
            .services
            .services
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        writeln!(
            f,
            "  services   {}",
            if svcs.is_empty() {
                "none".to_string()
            } else {
                svcs.join(" → ")
            }
        )?;
        write!(f, "  cmdline    {}", i.cmdline)
    }
}
