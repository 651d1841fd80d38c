//! The image config's `[[service]]` entries compiled into the
//! [`ServiceTable`] init supervises: every reference checked (executable in
//! the image, users, groups, `after` names), defaults applied, and the table
//! sorted so each service follows everything it is `after`.
use crate::config::values::parse_size;
use crate::config::{Config, CrashAction, NameOrNumber, Ready, Restart, ServiceEntry};
use crate::diag::Diagnostics;
use crate::rootfs::{FileSet, Kind, ResolveError};
use crate::toposort::stable_toposort;
use crate::users::UserDb;
use azl_formats::limits::{self, LimitError, MAX_ID};
use azl_formats::{CrashLoop, CrashLoopAction, Readiness, RestartPolicy, Service, ServiceTable};
use azl_imagepath::{ImagePath, PathError};
use std::collections::{HashMap, HashSet};
use toml::Spanned;

pub const DEFAULT_RESTART_DELAY_MS: u32 = 500;
pub const DEFAULT_RESTART_DELAY_MAX_MS: u32 = 30_000;
pub const DEFAULT_MAX_RESTARTS: u16 = 5;
pub const DEFAULT_WINDOW_S: u32 = 60;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("service name {0:?} is invalid: use 1-32 letters, digits, `_`, `.`, `-`, not starting with `.` or `-`")]
    InvalidName(String),
    #[error("service {name:?} is defined twice (first at line {first_line})")]
    Duplicate { name: String, first_line: usize },
    #[error("service {name:?}: exec is empty; give at least the program path")]
    EmptyExec { name: String },
    #[error("service {name:?}: exec arguments must not contain NUL bytes")]
    ExecNul { name: String },
    #[error(
        "service {name:?}: exec[0] {path:?} must be an absolute path (there is no $PATH search)"
    )]
    RelativeExec { name: String, path: String },
    #[error("service {name:?}: exec[0]: {source}")]
    BadExecPath { name: String, source: PathError },
    #[error("service {name:?}: exec[0] {path:?} is not provided by the image ({reason}); add a [[file]] with that dst, or a symlink to one")]
    ExecMissing {
        name: String,
        path: String,
        reason: ResolveError,
    },
    #[error(
        "service {name:?}: exec[0] {path:?} resolves to {resolved}, which is not a regular file"
    )]
    ExecNotFile {
        name: String,
        path: String,
        resolved: ImagePath,
    },
    #[error("service {name:?}: exec[0] {path:?} resolves to {resolved}, which is not executable (mode {mode:04o})")]
    ExecNotExecutable {
        name: String,
        path: String,
        resolved: ImagePath,
        mode: u32,
    },
    #[error("service {name:?}: after names unknown service {after:?}")]
    UnknownAfter { name: String, after: String },
    #[error("services wait for each other in a cycle: {}", .0.join(" → "))]
    Cycle(Vec<String>),
    #[error(
        "service {name:?}: unknown user {user:?} (define it in [[user]], or use a numeric uid)"
    )]
    UnknownUser { name: String, user: String },
    #[error("service {name:?}: unknown group {group:?} (each [[user]] defines a group of its name; or use a numeric gid)")]
    UnknownGroup { name: String, group: String },
    #[error("service {name:?}: {key} {value} is out of range (0..={MAX_ID}; {} means \"unchanged\" to the kernel)", u32::MAX)]
    IdRange {
        name: String,
        key: &'static str,
        value: u64,
    },
    #[error("service {name:?}: env key {key:?} is invalid (letters, digits and `_`, not starting with a digit)")]
    BadEnvKey { name: String, key: String },
    #[error("service {name:?}: env {key} contains a NUL byte")]
    BadEnvValue { name: String, key: String },
    #[error("service {name:?}: workdir {workdir:?} {reason}")]
    BadWorkdir {
        name: String,
        workdir: String,
        reason: String,
    },
    #[error(
        "service {name:?}: restart_delay_ms ({delay}) is larger than restart_delay_max_ms ({max})"
    )]
    DelayOrder { name: String, delay: u32, max: u32 },
    #[error("service {name:?}: restart_delay_ms must be at least 1")]
    ZeroDelay { name: String },
    #[error("service {name:?}: crash_loop window_s must be at least 1")]
    ZeroWindow { name: String },
    #[error("service {name:?}: memory_max {value} is not a size like \"64M\" or a number of bytes (K, M, G are powers of 1024)")]
    BadMemory { name: String, value: String },
    /// A limit init enforces (`azl_formats::limits`): the message names
    /// the service and the limit.
    #[error("{0}")]
    Limit(LimitError),
}

struct Ctx<'a> {
    cfg: &'a Config,
    users: &'a UserDb,
    files: &'a FileSet,
}

impl Ctx<'_> {
    fn loc<T>(&self, s: &Spanned<T>) -> crate::source::Loc {
        self.cfg.source.loc(s.span())
    }

    /// Check one service; `None` if it has errors (already reported).
    fn service<K: From<ServiceError>>(
        &self,
        s: &ServiceEntry,
        d: &mut Diagnostics<K>,
    ) -> Option<Service> {
        let errors_before = d.len();
        let name = s.name.get_ref().clone();
        let n = || name.clone();
        let exec = s.exec.get_ref();
        match exec.first() {
            None => d.push(self.loc(&s.exec), ServiceError::EmptyExec { name: n() }),
            Some(_) if exec.iter().any(|a| a.contains('\0')) => {
                d.push(self.loc(&s.exec), ServiceError::ExecNul { name: n() })
            }
            Some(prog) => self.check_exec(&name, prog, &s.exec, d),
        }
        let mut env = Vec::new();
        if let Some(e) = &s.env {
            for (k, v) in e.get_ref() {
                if !limits::valid_env_key(k) {
                    d.push(
                        self.loc(e),
                        ServiceError::BadEnvKey {
                            name: n(),
                            key: k.clone(),
                        },
                    );
                } else if v.contains('\0') {
                    d.push(
                        self.loc(e),
                        ServiceError::BadEnvValue {
                            name: n(),
                            key: k.clone(),
                        },
                    );
                }
                env.push((k.clone(), v.clone()));
            }
        }
        let (uid, default_gid) = self.user(&name, s.user.as_ref(), d);
        let gid = match &s.group {
            None => default_gid,
            Some(g) => self.group(&name, g, d),
        };
        let workdir = s.workdir.as_ref().map(|w| {
            if let Some(reason) = self.workdir_problem(w.get_ref()) {
                d.push(
                    self.loc(w),
                    ServiceError::BadWorkdir {
                        name: n(),
                        workdir: w.get_ref().clone(),
                        reason,
                    },
                );
            }
            w.get_ref().clone()
        });
        let delay = s.restart_delay_ms.as_ref().map(|v| *v.get_ref());
        let max = s.restart_delay_max_ms.as_ref().map(|v| *v.get_ref());
        let restart_delay_ms = delay.unwrap_or(DEFAULT_RESTART_DELAY_MS);
        let restart_delay_max_ms =
            max.unwrap_or(DEFAULT_RESTART_DELAY_MAX_MS.max(restart_delay_ms));
        if restart_delay_ms == 0 {
            if let Some(v) = &s.restart_delay_ms {
                d.push(self.loc(v), ServiceError::ZeroDelay { name: n() });
            }
        } else if restart_delay_ms > restart_delay_max_ms {
            let at = s
                .restart_delay_max_ms
                .as_ref()
                .map_or(s.name.span(), Spanned::span);
            d.push(
                self.cfg.source.loc(at),
                ServiceError::DelayOrder {
                    name: n(),
                    delay: restart_delay_ms,
                    max: restart_delay_max_ms,
                },
            );
        }
        let crash_loop = match &s.crash_loop {
            None => CrashLoop {
                max_restarts: DEFAULT_MAX_RESTARTS,
                window_s: DEFAULT_WINDOW_S,
                action: CrashLoopAction::GiveUp,
            },
            Some(c) => {
                let window_s = c.get_ref().window_s.unwrap_or(DEFAULT_WINDOW_S);
                if window_s == 0 {
                    d.push(self.loc(c), ServiceError::ZeroWindow { name: n() });
                }
                CrashLoop {
                    max_restarts: c.get_ref().max_restarts.unwrap_or(DEFAULT_MAX_RESTARTS),
                    window_s,
                    action: match c.get_ref().action.unwrap_or(CrashAction::GiveUp) {
                        CrashAction::GiveUp => CrashLoopAction::GiveUp,
                        CrashAction::Reboot => CrashLoopAction::Reboot,
                    },
                }
            }
        };
        let memory_max = s.memory_max.as_ref().and_then(|m| {
            let v = parse_size(m.get_ref());
            if v.is_none() {
                let value = match m.get_ref() {
                    NameOrNumber::Name(s) => format!("{s:?}"),
                    NameOrNumber::Number(n) => n.to_string(),
                };
                d.push(self.loc(m), ServiceError::BadMemory { name: n(), value });
            }
            v
        });
        if d.len() != errors_before {
            return None;
        }
        let mut after = Vec::new();
        let mut seen = HashSet::new();
        for a in &s.after {
            // Names are checked by the caller; invalid ones were reported there.
            if let Some(a) = azl_formats::name(a.get_ref()) {
                if seen.insert(a.clone()) {
                    after.push(a);
                }
            }
        }
        let service = Service {
            name: azl_formats::name(&name)?,
            exec: exec.clone(),
            env,
            uid,
            gid,
            workdir,
            restart: match s.restart.unwrap_or(Restart::OnFailure) {
                Restart::Always => RestartPolicy::Always,
                Restart::OnFailure => RestartPolicy::OnFailure,
                Restart::Never => RestartPolicy::Never,
            },
            restart_delay_ms,
            restart_delay_max_ms,
            crash_loop,
            after,
            memory_max,
            ready: match s.ready.unwrap_or(Ready::Started) {
                Ready::Started => Readiness::Started,
                Ready::Notify => Readiness::Notify,
            },
            stop_timeout_ms: s.stop_timeout_ms.as_ref().map(|v| *v.get_ref()),
        };
        // What init would refuse never gets into the image.
        if let Err(e) = limits::check_service(&service) {
            let at = match &e {
                LimitError::TooManyArgs { .. } | LimitError::EmptyExec { .. } => s.exec.span(),
                LimitError::TooManyEnv { .. } | LimitError::EnvKey { .. } => {
                    s.env.as_ref().map_or(s.name.span(), Spanned::span)
                }
                LimitError::IdRange { which: "gid", .. } => s
                    .group
                    .as_ref()
                    .or(s.user.as_ref())
                    .map_or(s.name.span(), Spanned::span),
                LimitError::IdRange { .. } => s.user.as_ref().map_or(s.name.span(), Spanned::span),
                LimitError::Nul { .. } | LimitError::NotAbsolute { .. } => s.name.span(),
            };
            d.push(self.cfg.source.loc(at), ServiceError::Limit(e));
            return None;
        }
        Some(service)
    }

    fn check_exec<K: From<ServiceError>>(
        &self,
        name: &str,
        prog: &str,
        at: &Spanned<Vec<String>>,
        d: &mut Diagnostics<K>,
    ) {
        let path = match ImagePath::parse(prog) {
            Ok(p) => p,
            Err(_) if !prog.starts_with('/') => {
                d.push(
                    self.loc(at),
                    ServiceError::RelativeExec {
                        name: name.into(),
                        path: prog.into(),
                    },
                );
                return;
            }
            Err(source) => {
                d.push(
                    self.loc(at),
                    ServiceError::BadExecPath {
                        name: name.into(),
                        source,
                    },
                );
                return;
            }
        };
        let resolved = match self.files.resolve(&path) {
            Ok(r) => r,
            Err(reason) => {
                d.push(
                    self.loc(at),
                    ServiceError::ExecMissing {
                        name: name.into(),
                        path: prog.into(),
                        reason,
                    },
                );
                return;
            }
        };
        let Some(node) = self.files.get(&resolved) else {
            return;
        };
        if !matches!(node.kind, Kind::File(_)) {
            d.push(
                self.loc(at),
                ServiceError::ExecNotFile {
                    name: name.into(),
                    path: prog.into(),
                    resolved,
                },
            );
        } else if node.mode & 0o111 == 0 {
            d.push(
                self.loc(at),
                ServiceError::ExecNotExecutable {
                    name: name.into(),
                    path: prog.into(),
                    resolved,
                    mode: node.mode,
                },
            );
        }
    }

    /// (uid, default gid) for `user`.
    fn user<K: From<ServiceError>>(
        &self,
        name: &str,
        user: Option<&Spanned<NameOrNumber>>,
        d: &mut Diagnostics<K>,
    ) -> (u32, u32) {
        let Some(u) = user else {
            return (0, 0);
        };
        match u.get_ref() {
            NameOrNumber::Name(user) => match self.users.user(user) {
                Some(x) => (x.uid, x.gid),
                None => {
                    d.push(
                        self.loc(u),
                        ServiceError::UnknownUser {
                            name: name.into(),
                            user: user.clone(),
                        },
                    );
                    (0, 0)
                }
            },
            NameOrNumber::Number(n) if *n > u64::from(MAX_ID) => {
                d.push(
                    self.loc(u),
                    ServiceError::IdRange {
                        name: name.into(),
                        key: "user",
                        value: *n,
                    },
                );
                (0, 0)
            }
            NameOrNumber::Number(n) => {
                let uid = u32::try_from(*n).unwrap_or(MAX_ID);
                // A known uid brings its primary group; an unknown one the same number.
                (uid, self.users.user_by_uid(uid).map_or(uid, |x| x.gid))
            }
        }
    }

    fn group<K: From<ServiceError>>(
        &self,
        name: &str,
        g: &Spanned<NameOrNumber>,
        d: &mut Diagnostics<K>,
    ) -> u32 {
        match g.get_ref() {
            NameOrNumber::Name(group) => match self.users.group(group) {
                Some(x) => x.gid,
                None => {
                    d.push(
                        self.loc(g),
                        ServiceError::UnknownGroup {
                            name: name.into(),
                            group: group.clone(),
                        },
                    );
                    0
                }
            },
            NameOrNumber::Number(n) if *n > u64::from(MAX_ID) => {
                d.push(
                    self.loc(g),
                    ServiceError::IdRange {
                        name: name.into(),
                        key: "group",
                        value: *n,
                    },
                );
                0
            }
            NameOrNumber::Number(n) => u32::try_from(*n).unwrap_or(MAX_ID),
        }
    }

    fn workdir_problem(&self, w: &str) -> Option<String> {
        let p = match ImagePath::parse(w) {
            Ok(p) => p,
            Err(e) => return Some(format!("is not a valid absolute path: {e}")),
        };
        // Directories init mounts at boot exist at run time even if empty now.
        if crate::skeleton::BOOT_MOUNTS.contains(&w) {
            return None;
        }
        match self.files.resolve(&p) {
            Ok(r) if self.files.get(&r).is_some_and(|n| n.is_dir()) => None,
            Ok(r) => Some(format!("resolves to {r}, which is not a directory")),
            Err(e) => Some(format!("is not a directory in the image ({e})")),
        }
    }
}

/// Check and compile every `[[service]]`, in start order.
pub fn compile<K: From<ServiceError>>(
    cfg: &Config,
    users: &UserDb,
    files: &FileSet,
    d: &mut Diagnostics<K>,
) -> ServiceTable {
    let ctx = Ctx { cfg, users, files };
    let entries: Vec<&ServiceEntry> = cfg.doc.service.iter().map(|s| s.get_ref()).collect();

    // Names first: `after` refers to them.
    // Name → the line of its first definition.
    let mut names: HashMap<&str, usize> = HashMap::with_capacity(entries.len());
    let mut names_ok = true;
    for s in &entries {
        let name = s.name.get_ref();
        let loc = ctx.loc(&s.name);
        if !azl_formats::valid_name(name) {
            d.push(loc, ServiceError::InvalidName(name.clone()));
            names_ok = false;
        } else if let Some(&line) = names.get(name.as_str()) {
            d.push(
                loc,
                ServiceError::Duplicate {
                    name: name.clone(),
                    first_line: line,
                },
            );
            names_ok = false;
        } else {
            names.insert(name, loc.line.unwrap_or(0));
        }
    }

    // Every name (valid or not) → its first entry, for `after`.
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(entries.len());
    for (i, s) in entries.iter().enumerate() {
        index.entry(s.name.get_ref().as_str()).or_insert(i);
    }
    let mut after_idx: Vec<Vec<usize>> = Vec::with_capacity(entries.len());
    for s in &entries {
        let mut deps = Vec::new();
        for a in &s.after {
            match index.get(a.get_ref().as_str()) {
                Some(&i) => deps.push(i),
                None => d.push(
                    ctx.loc(a),
                    ServiceError::UnknownAfter {
                        name: s.name.get_ref().clone(),
                        after: a.get_ref().clone(),
                    },
                ),
            }
        }
        after_idx.push(deps);
    }

    let compiled: Vec<Option<Service>> = entries.iter().map(|s| ctx.service(s, d)).collect();

    if names_ok {
        match stable_toposort(&after_idx) {
            Ok(order) if d.is_empty() => {
                let mut compiled: Vec<Option<Service>> = compiled;
                return ServiceTable {
                    services: order
                        .into_iter()
                        .filter_map(|i| compiled.get_mut(i).and_then(Option::take))
                        .collect(),
                };
            }
            Ok(_) => {}
            Err(cycle) => {
                let entry = |k: usize| cycle.get(k).and_then(|&i| entries.get(i).copied());
                let at = match (entry(0), entry(1)) {
                    (Some(first), Some(next)) => first
                        .after
                        .iter()
                        .find(|a| a.get_ref() == next.name.get_ref())
                        .map_or(first.name.span(), Spanned::span),
                    (Some(first), None) => first.name.span(),
                    _ => 0..0,
                };
                d.push(
                    cfg.source.loc(at),
                    ServiceError::Cycle(
                        cycle
                            .iter()
                            .filter_map(|&i| entries.get(i))
                            .map(|e| e.name.get_ref().clone())
                            .collect(),
                    ),
                );
            }
        }
    }
    ServiceTable::default()
}
