//! `imagegen build` (and `imagegen bundle`, the same build filling another
//! root slot, laid out by [`bundle`]): runs the steps in order — config → board → kernel and
//! modules → rootfs (file set) → service table and boot config →
//! initramfs → output directory — and reports what it built.
//!
//! Config problems are all collected and reported together before anything
//! touches the board, kernel or init binary.
use crate::board::{self, Board, BoardError, BootMethod};
use crate::config::RootMode;
use crate::config::{BoardRef, Config, ConfigErrorKind, ImageError, ImageSettings, LoadError};
use crate::diag::{Diagnostics, Located, Problems};
use crate::expand::Env;
use crate::files::FileError;
use crate::initbin::{self, InitBinError, InitBinary};
use crate::initramfs::{self, InitramfsError};
use crate::kernel::{Kernel, KernelError};
use crate::modules::{self, ModuleError, ModuleSet};
use crate::output::{self, OutputError};
use crate::rootfs::{Conflict, Content, FileSet, Node, Origin};
use crate::services::ServiceError;
use crate::users::UserError;
use crate::{bootcfg, files, services, skeleton, users::UserDb};
use crate::{budget, bundle, diskimage, packages, provenance, sbom};
use azl_formats::bootstate::Slot;
use azl_formats::envelope::Enveloped;
use azl_formats::services::TableError;
use azl_formats::{paths, BootConfig, FormatError, ServiceTable};
use azl_imagepath::ImagePath;
use azl_sign::SigningKey;
use std::path::{Path, PathBuf};

/// arm64 `COMMAND_LINE_SIZE` (including the NUL).
pub const MAX_CMDLINE: usize = 2048;

/// A problem [`check`] found in the image config: the config's own
/// sections' or one of the stages' that check the rest.
#[derive(Debug, thiserror::Error)]
pub enum CheckProblem {
    #[error(transparent)]
    Config(#[from] ConfigErrorKind),
    #[error(transparent)]
    User(#[from] UserError),
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<ImageError> for CheckProblem {
    fn from(e: ImageError) -> Self {
        Self::Config(e.into())
    }
}

/// What `imagegen build` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub config: PathBuf,
    /// `--board`: a name, or a path (contains `/` or ends in `.toml`).
    pub board: Option<String>,
    pub boards_dir: Option<PathBuf>,
    pub kernel: Option<PathBuf>,
    pub init: Option<PathBuf>,
    /// `--key`: PKCS#8 Ed25519 key that signs the disk image's manifest.
    pub key: Option<PathBuf>,
    /// `--insecure-unsigned`: a development disk image without a signature.
    pub insecure_unsigned: bool,
    /// The root slot to fill (`imagegen bundle --slot`); `None`: root-a, as
    /// `imagegen build` does.
    pub slot: Option<String>,
    /// `--locked`: install exactly the packages of the lock file next to
    /// the config ([`packages::lock::FILE`]), never a new resolution.
    pub locked: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Config(#[from] Problems<CheckProblem>),
    #[error("board: {0}")]
    Board(#[from] BoardError),
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error(transparent)]
    Modules(#[from] ModuleError),
    #[error(transparent)]
    Init(#[from] InitBinError),
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
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
    #[error(
        "a disk image needs a signing key: pass --key KEY (create one with `imagegen keygen -o KEY`), \
         or --insecure-unsigned for a development build"
    )]
    NoKey,
    #[error("--key and --insecure-unsigned contradict each other: pick one")]
    KeyAndInsecure,
    #[error("[image] root = \"disk\" but board {board} has no [disk] layout")]
    NoDiskLayout { board: String },
    #[error("board {board} boots by UEFI (per-slot kernels on the ESP): the image needs root = \"disk\", not an initramfs-only root")]
    UefiNeedsDisk { board: String },
    #[error("board {board} boots by UEFI: the filled root slot must be root-a or root-b (the slots with ESP entries), not {slot:?}")]
    UefiSlot { board: String, slot: String },
    #[error(
        "{loc}: {path} is below /data, which on a disk image is the persistent data partition mounted \
         over the root at boot: the file would be hidden. Create it at run time (e.g. from a service) instead"
    )]
    UnderData {
        loc: crate::source::Loc,
        path: String,
    },
    #[error(transparent)]
    OverBudget(#[from] budget::OverBudget),
    #[error("signing key: {0}")]
    Key(#[from] azl_sign::KeyError),
    #[error("disk image: {0}")]
    Disk(#[from] crate::diskimage::DiskImageError),
    #[error(
        "a bundle needs a signing key: pass --key KEY, the key whose KEY.pub the devices trust \
         (bundles are always signed)"
    )]
    BundleNoKey,
    #[error(
        "bundles are always signed: --insecure-unsigned is refused for `imagegen bundle` \
         (a device never installs an unsigned bundle); pass --key KEY"
    )]
    BundleUnsigned,
    #[error(
        "a bundle carries a root slot, but this image has no disk image \
         ([image] root = \"initramfs\" or board {board} has no [disk] layout)"
    )]
    BundleNoDisk { board: String },
    #[error("bundle: {0}")]
    Bundle(#[from] crate::bundle::BundleBuildError),
    #[error("packages: {0}")]
    Packages(#[from] Box<packages::PackagesError>),
    #[error("packages: {0}")]
    Place(#[from] packages::place::PlaceError),
    #[error(transparent)]
    KernelRpm(#[from] packages::kernel::KernelRpmError),
    #[error(transparent)]
    Lock(#[from] packages::lock::LockError),
    #[error("the cache directory ${{AZL_CACHE}}: {0}")]
    CacheDir(crate::expand::ExpandError),
    #[error(transparent)]
    Sbom(#[from] sbom::SbomError),
    #[error(transparent)]
    Provenance(#[from] provenance::ProvenanceError),
    #[error("{0}: the image config installs no packages ([packages] or [kernel] rpm), so there is nothing to lock")]
    NothingToLock(PathBuf),
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
    /// The verified disk (`[image] root = "disk"`).
    pub disk: Option<diskimage::Built>,
    /// Public half of the signing key (baked into the initramfs).
    pub public_key: Option<[u8; 32]>,
    /// Size of the kernel image file.
    pub kernel_size: u64,
    /// Problems with the key file worth telling (e.g. loose permissions).
    pub key_warnings: Vec<String>,
    /// The RPMs installed (kernel package included), and the lock that
    /// names exactly them (`None`: no packages).
    pub packages: Vec<packages::Installed>,
    pub lock: Option<packages::lock::Lock>,
    /// The packages' scripts that were not run.
    pub scriptlets: Vec<azl_rpm::package::scriptlets::Skipped>,
    /// The SBOM of the root filesystem (`sbom.spdx.json`).
    pub sbom: sbom::Sbom,
    /// The signed build provenance (`provenance.json`).
    pub provenance: Vec<u8>,
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
    /// What `[packages]` / `[kernel] rpm` installed (files already in `set`
    /// but the kernel package's).
    pub packages: Option<packages::Packages>,
}

/// Check everything in the image config that needs neither the board nor
/// the kernel, reporting every problem at once. `board_given` and
/// `kernel_given` say whether the command line supplies what the config
/// may leave out. The packages are installed here (resolved, or exactly
/// `lock`), once the config's own sections are sound, so services can
/// name their files.
pub fn check(
    cfg: &Config,
    env: &dyn Env,
    board_given: bool,
    kernel_given: bool,
    lock: Option<&packages::lock::Lock>,
) -> Result<Checked, BuildError> {
    let mut d = Diagnostics::<CheckProblem>::new();
    let settings = cfg.image_settings(env, &mut d);
    if settings.board.is_none() && !board_given && cfg.doc.image.board.is_none() {
        d.push(cfg.source.file_loc(), ImageError::NoBoard);
    }
    if settings.kernel.is_none()
        && !kernel_given
        && cfg.doc.kernel.path.is_none()
        && cfg.doc.kernel.rpm.is_none()
    {
        d.push(cfg.source.file_loc(), ImageError::NoKernel);
    }
    let users = UserDb::compile(cfg, &mut d);
    let mut set = FileSet::new();
    skeleton::add_base(&mut set, Vec::new(), &settings.hostname, &users).map_err(internal("/"))?;
    let packages = match &settings.packages {
        Some(p) if d.is_empty() => {
            let installed = packages::install(p, lock, &cache_root(env)?).map_err(Box::new)?;
            packages::place::place(&mut set, &installed.tree, &users)?;
            Some(installed)
        }
        _ => None,
    };
    files::add_config_files(cfg, env, &mut set, &mut d);
    let services = services::compile(cfg, &users, &set, &mut d);
    d.finish()?;
    Ok(Checked {
        settings,
        users,
        set,
        services,
        packages,
    })
}

/// Build the image in memory. `exe` is imagegen's own path (for the default
/// init location).
pub fn compile(
    opts: &BuildOptions,
    env: &dyn Env,
    exe: Option<&Path>,
) -> Result<Image, BuildError> {
    compile_keyed(opts, env, exe).map(|(image, _)| image)
}

/// `imagegen bundle`: build the image with `opts.slot` (default
/// [`bundle::DEFAULT_SLOT`]) as the filled root slot and lay that slot out
/// as a bundle signed with `opts.key`. Nothing is written.
pub fn compile_bundle(
    opts: &BuildOptions,
    min_from_security_version: Option<u32>,
    env: &dyn Env,
    exe: Option<&Path>,
) -> Result<(Image, bundle::Bundle), BuildError> {
    if opts.insecure_unsigned {
        return Err(BuildError::BundleUnsigned);
    }
    if opts.key.is_none() {
        return Err(BuildError::BundleNoKey);
    }
    let opts = BuildOptions {
        slot: Some(
            opts.slot
                .clone()
                .unwrap_or_else(|| bundle::DEFAULT_SLOT.to_string()),
        ),
        ..opts.clone()
    };
    let (image, key) = compile_keyed(&opts, env, exe)?;
    let no_disk = || BuildError::BundleNoDisk {
        board: image.board.name.clone(),
    };
    let disk = image.disk.as_ref().ok_or_else(no_disk)?;
    let key = key.ok_or(BuildError::BundleNoKey)?;
    let slot = disk.root_slot().ok_or_else(no_disk)?;
    // A UEFI board boots each slot's own kernel files: they travel too.
    let kernel_bytes = match image.board.boot_method {
        BootMethod::Uefi => {
            Some(
                std::fs::read(&image.kernel.image).map_err(|source| BuildError::Read {
                    path: image.kernel.image.clone(),
                    source,
                })?,
            )
        }
        BootMethod::Direct => None,
    };
    let boot = kernel_bytes.as_deref().map(|k| bundle::BootPayloads {
        kernel: k,
        initramfs: &image.initramfs.gz,
        cmdline: &disk.manifest.cmdline,
    });
    let b = bundle::lay_out_with(
        disk.manifest.rootfs.partition.as_str(),
        slot,
        &key,
        min_from_security_version,
        boot.as_ref(),
    )?;
    Ok((image, b))
}

/// [`compile`], also handing back the signing key it loaded (a bundle's
/// header is signed with the very key that signed its manifest).
fn compile_keyed(
    opts: &BuildOptions,
    env: &dyn Env,
    exe: Option<&Path>,
) -> Result<(Image, Option<SigningKey>), BuildError> {
    let mtime = source_date_epoch(env)?;
    let cfg = Config::load(&opts.config)?;
    let lock = match opts.locked {
        true => Some(packages::lock::Lock::read(&lock_path(&cfg))?),
        false => None,
    };

    // 1. The config on its own (and its packages): every problem at once.
    let Checked {
        settings,
        users,
        mut set,
        services,
        packages,
    } = check(
        &cfg,
        env,
        opts.board.is_some(),
        opts.kernel.is_some(),
        lock.as_ref(),
    )?;
    let board_ref = match &opts.board {
        Some(b) => Some(BoardRef::classify(b, Path::new("."))),
        None => settings.board.clone(),
    };
    let kernel_rpm = match packages.as_ref().and_then(|p| p.kernel.as_ref()) {
        Some((k, items)) if opts.kernel.is_none() => {
            Some(packages::kernel::materialize(&cache_root(env)?, k, items)?)
        }
        _ => None,
    };
    let kernel_dir = opts
        .kernel
        .clone()
        .or(kernel_rpm)
        .or_else(|| settings.kernel.clone());
    let missing = |kind: ImageError| -> BuildError {
        Problems(vec![Located {
            loc: cfg.source.file_loc(),
            kind: CheckProblem::from(kind),
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
    let init_sha256 = azl_formats::sha256(&init_bytes);

    // Where the root filesystem lives, and who signs it.
    let root_mode = match (settings.root, &board.disk) {
        (Some(RootMode::Disk), None) => {
            return Err(BuildError::NoDiskLayout {
                board: board.name.clone(),
            })
        }
        (Some(m), _) => m,
        (None, Some(_)) => RootMode::Disk,
        (None, None) => RootMode::Initramfs,
    };
    let key = match (root_mode, &opts.key, opts.insecure_unsigned) {
        (RootMode::Initramfs, _, _) => None,
        (RootMode::Disk, Some(_), true) => return Err(BuildError::KeyAndInsecure),
        (RootMode::Disk, None, false) => return Err(BuildError::NoKey),
        (RootMode::Disk, None, true) => None,
        (RootMode::Disk, Some(path), false) => Some(SigningKey::load(path)?),
    };
    let root_spec = match (root_mode, &board.disk) {
        (RootMode::Disk, Some(layout)) => {
            // A bad --slot is named before anything is built; the boot
            // config names the slot it is built for.
            let slot = diskimage::root_slot(layout, opts.slot.as_deref(), &board.name)?;
            Some(bootcfg::root_spec_for(
                layout,
                &slot.name,
                key.is_none(),
                board.boot_method,
            ))
        }
        _ => None,
    };

    if root_mode == RootMode::Disk {
        let data = image_path(paths::DATA)?;
        if let Some((path, loc)) = set.iter().find_map(|(p, n)| match &n.origin {
            Origin::Config(loc) if p.starts_with(&data) && *p != data => {
                Some((p.to_string(), loc.clone()))
            }
            _ => None,
        }) {
            return Err(BuildError::UnderData { loc, path });
        }
    }

    // 3. Complete the file set (the whole system: initramfs or root).
    services.validate().map_err(BuildError::Table)?;
    let efi_slot_name = root_spec.as_ref().map(|r| r.partition.clone());
    let boot_config = bootcfg::compile(&settings, &board, &modules, root_spec);
    let boot_cfg_bytes = encode("boot config", &boot_config)?;
    let services_bytes = encode("service table", &services)?;
    set.set_content(
        &image_path(paths::INIT)?,
        Content::Bytes(init_bytes.clone()),
    );
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
    // UEFI: each slot's entry has its own command line (formats::efi), the
    // one its kernel runs with and the manifest's reference values predict.
    let cmdline = match (board.boot_method, &efi_slot_name) {
        (BootMethod::Direct, _) => cmdline,
        (BootMethod::Uefi, None) => {
            return Err(BuildError::UefiNeedsDisk {
                board: board.name.clone(),
            })
        }
        (BootMethod::Uefi, Some(r)) => {
            let slot = Slot::from_partition(r).ok_or_else(|| BuildError::UefiSlot {
                board: board.name.clone(),
                slot: r.clone(),
            })?;
            azl_formats::efi::slot_cmdline(slot, &cmdline)
        }
    };
    if cmdline.len() >= MAX_CMDLINE {
        return Err(BuildError::CmdlineTooLong { len: cmdline.len() });
    }

    // 4. Serialize: the initramfs, and for a disk image the root slot.
    let public_key = key.as_ref().map(SigningKey::public_key);
    let key_warnings: Vec<String> = key
        .iter()
        .flat_map(|k| k.warnings().iter().map(|w| w.to_string()))
        .collect();
    let installed: &[packages::Installed] = packages
        .as_ref()
        .map(|p| p.installed.as_slice())
        .unwrap_or_default();
    let sbom_of = |set: &FileSet| {
        sbom::build(&sbom::Inputs {
            image_name: &settings.name,
            image_version: &settings.version,
            epoch: mtime,
            rootfs: set,
            packages: installed,
        })
    };
    let (initramfs, disk, sbom) = match (root_mode, &board.disk) {
        (RootMode::Disk, Some(layout)) => {
            // The root gets init as /sbin/init (stage 2 runs from there);
            // the initramfs only what stage 1 needs.
            set.insert(
                image_path(paths::ROOT_INIT)?,
                Node::file(
                    Content::Bytes(init_bytes.clone()),
                    0o755,
                    Origin::Generated("the init binary".into()),
                ),
            )
            .map_err(internal(paths::ROOT_INIT))?;
            let sbom = sbom_of(&set)?;
            let mut stage1 = FileSet::new();
            skeleton::add_base(&mut stage1, init_bytes, &settings.hostname, &users)
                .map_err(internal("/"))?;
            skeleton::add_modules(&mut stage1, &modules).map_err(internal(paths::MODULES_DIR))?;
            skeleton::add_stage1(&mut stage1, public_key.as_ref())
                .map_err(internal(paths::SYSROOT))?;
            stage1.set_content(
                &image_path(paths::BOOT_CONFIG)?,
                Content::Bytes(boot_cfg_bytes.clone()),
            );
            stage1.set_content(
                &image_path(paths::SERVICE_TABLE)?,
                Content::Bytes(services_bytes.clone()),
            );
            let initramfs = initramfs::build(&stage1, mtime)?;
            let kernel_bytes = std::fs::read(&kernel.image).map_err(|source| BuildError::Read {
                path: kernel.image.clone(),
                source,
            })?;
            let built = diskimage::build(&diskimage::Inputs {
                layout,
                seed: settings.seed.as_bytes(),
                epoch: mtime,
                rootfs: &set,
                kernel: &kernel_bytes,
                initramfs: &initramfs.gz,
                cmdline: &cmdline,
                board: &board.name,
                image_name: &settings.name,
                image_version: &settings.version,
                security_version: settings.security_version,
                service_table: &services_bytes,
                lock_sha256: packages
                    .as_ref()
                    .map(|p| packages::lock::Lock::of(&p.installed).digest()),
                sbom_sha256: sbom.sha256,
                key: key.as_ref(),
                slot: opts.slot.as_deref(),
                uefi: board.boot_method == BootMethod::Uefi,
            })?;
            (initramfs, Some(built), sbom)
        }
        _ => {
            skeleton::add_modules(&mut set, &modules).map_err(internal(paths::MODULES_DIR))?;
            let sbom = sbom_of(&set)?;
            (initramfs::build(&set, mtime)?, None, sbom)
        }
    };
    let kernel_size = std::fs::metadata(&kernel.image).map_or(0, |m| m.len());
    budget::check(
        &board,
        kernel_size,
        initramfs.gz.len() as u64,
        disk.as_ref().map(|d| d.squashfs_size),
    )?;
    let lock_sha256 = packages
        .as_ref()
        .map(|p| packages::lock::Lock::of(&p.installed).digest());
    let kernel_sha256 = {
        let bytes = std::fs::read(&kernel.image).map_err(|source| BuildError::Read {
            path: kernel.image.clone(),
            source,
        })?;
        azl_formats::sha256(&bytes)
    };
    let manifest_bin = disk.as_ref().map(|d| d.manifest_bytes()).transpose()?;
    let mut subjects = vec![
        (output::KERNEL, kernel_sha256),
        (output::INITRAMFS, azl_formats::sha256(&initramfs.gz)),
        (sbom::FILE, sbom.sha256),
    ];
    if let Some(m) = &manifest_bin {
        subjects.push((output::MANIFEST, azl_formats::sha256(m)));
    }
    let config_path = opts.config.display().to_string();
    let provenance = provenance::build(
        &provenance::Inputs {
            config_path: &config_path,
            config_sha256: azl_formats::sha256(cfg.source.text().as_bytes()),
            board: &board.name,
            board_sha256: azl_formats::sha256(board.source.text().as_bytes()),
            slot: disk.as_ref().map(|d| d.manifest.rootfs.partition.as_str()),
            locked: opts.locked,
            signed: key.is_some(),
            epoch: mtime,
            kernel_sha256,
            init_sha256,
            lock_sha256,
            packages: installed,
            subjects,
        },
        key.as_ref(),
    )?;
    let image = Image {
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
        disk,
        public_key,
        key_warnings,
        kernel_size,
        lock: packages
            .as_ref()
            .map(|p| packages::lock::Lock::of(&p.installed)),
        scriptlets: packages
            .as_ref()
            .map(|p| p.scriptlets.clone())
            .unwrap_or_default(),
        packages: packages.map(|p| p.installed).unwrap_or_default(),
        sbom,
        provenance,
    };
    Ok((image, key))
}

/// The build's cache directory, `${AZL_CACHE}` (default
/// `~/.cache/azl-edge`): RPMs and kernels from RPMs are kept there.
fn cache_root(env: &dyn Env) -> Result<PathBuf, BuildError> {
    crate::expand::expand("${AZL_CACHE}", env)
        .map(PathBuf::from)
        .map_err(BuildError::CacheDir)
}

/// Where the lock file of `cfg` lives: next to it.
pub fn lock_path(cfg: &Config) -> PathBuf {
    cfg.source.dir().join(packages::lock::FILE)
}

/// `imagegen lock`: resolve, fetch and check the config's packages (as a
/// build would) and return the lock naming exactly them, with its path.
pub fn lock(config: &Path, env: &dyn Env) -> Result<(packages::lock::Lock, PathBuf), BuildError> {
    let cfg = Config::load(config)?;
    let mut d = Diagnostics::<CheckProblem>::new();
    let settings = cfg.image_settings(env, &mut d);
    d.finish()?;
    let p = settings
        .packages
        .ok_or_else(|| BuildError::NothingToLock(config.to_path_buf()))?;
    let installed = packages::install(&p, None, &cache_root(env)?).map_err(Box::new)?;
    Ok((
        packages::lock::Lock::of(&installed.installed),
        lock_path(&cfg),
    ))
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
    output::put(out, sbom::FILE, &image.sbom.bytes)?;
    output::put(out, provenance::FILE, &image.provenance)?;
    if let Some(disk) = &image.disk {
        disk.write(&out.join(output::DISK))?;
        output::put(out, output::MANIFEST, &disk.manifest_bytes()?)?;
        match &image.public_key {
            Some(pk) => output::put(out, output::PUBLIC_KEY, pk)?,
            None => output::remove(out, output::PUBLIC_KEY)?,
        }
    } else {
        for stale in [output::DISK, output::MANIFEST, output::PUBLIC_KEY] {
            output::remove(out, stale)?;
        }
    }
    Ok(())
}
