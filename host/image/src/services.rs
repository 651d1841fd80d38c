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
use azl_formats::{CrashLoop, CrashLoopAction, Readiness, RestartPolicy, Service, ServiceTable};
use azl_imagepath::{ImagePath, PathError};
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
    #[error("service {name:?}: {key} {value} is out of range (0..=4294967294)")]
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
}

/// The largest uid/gid (`(uid_t)-1` means "no change" to the kernel).
const MAX_ID: u64 = u32::MAX as u64 - 1;

fn valid_env_key(k: &str) -> bool {
    let mut b = k.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
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
                if !valid_env_key(k) {
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
        for a in &s.after {
            // Names are checked by the caller; invalid ones were reported there.
            if let Some(a) = azl_formats::name(a.get_ref()) {
                if !after.contains(&a) {
                    after.push(a);
                }
            }
        }
        Some(Service {
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
        })
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
            NameOrNumber::Number(n) if *n > MAX_ID => {
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
                let uid = *n as u32;
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
            NameOrNumber::Number(n) if *n > MAX_ID => {
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
            NameOrNumber::Number(n) => *n as u32,
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
    let mut names: Vec<(String, usize)> = Vec::new();
    let mut names_ok = true;
    for s in &entries {
        let name = s.name.get_ref();
        let loc = ctx.loc(&s.name);
        if !azl_formats::valid_name(name) {
            d.push(loc, ServiceError::InvalidName(name.clone()));
            names_ok = false;
        } else if let Some((_, line)) = names.iter().find(|(n, _)| n == name) {
            d.push(
                loc,
                ServiceError::Duplicate {
                    name: name.clone(),
                    first_line: *line,
                },
            );
            names_ok = false;
        } else {
            names.push((name.clone(), loc.line.unwrap_or(0)));
        }
    }

    let mut after_idx: Vec<Vec<usize>> = Vec::new();
    for s in &entries {
        let mut deps = Vec::new();
        for a in &s.after {
            match entries.iter().position(|o| o.name.get_ref() == a.get_ref()) {
                Some(i) => deps.push(i),
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
                return ServiceTable {
                    services: order
                        .into_iter()
                        .filter_map(|i| compiled[i].clone())
                        .collect(),
                };
            }
            Ok(_) => {}
            Err(cycle) => {
                let first = entries[cycle[0]];
                let at = first
                    .after
                    .iter()
                    .find(|a| a.get_ref() == entries[cycle[1]].name.get_ref())
                    .map_or(first.name.span(), Spanned::span);
                d.push(
                    cfg.source.loc(at),
                    ServiceError::Cycle(
                        cycle
                            .iter()
                            .map(|&i| entries[i].name.get_ref().clone())
                            .collect(),
                    ),
                );
            }
        }
    }
    ServiceTable::default()
}
