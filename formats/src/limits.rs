//! Limits of a service that the build checks and init enforces: init
//! builds argv and envp in fixed arrays before `execve` (no allocation in
//! the forked child), and the kernel gives `(uid_t)-1` a meaning of its
//! own. imagegen calls [`check_service`] (or [`check_id`] for a user or
//! group it reads) so a service that init would refuse never gets into an
//! image; init calls [`check_table`] after decoding, so a hand-made table
//! is refused by name instead of being cut short.
use crate::services::{Service, ServiceTable};
use crate::Name;
use core::fmt;

/// Most argv entries (including `exec[0]`): init's argv array has 64
/// slots, the last is the terminating NULL.
pub const MAX_EXEC_ARGS: usize = 63;
/// Most envp entries init passes (same array size as argv).
pub const MAX_ENV_ENTRIES: usize = 63;
/// Variables init sets for every service before the service's own (a
/// service entry of the same name replaces it).
pub const BUILTIN_ENV: [&str; 5] = ["PATH", "HOME", "SERVICE_NAME", "TERM", "NOTIFY_FD"];
/// Most `env` entries a service may have, so that with every built-in
/// variable they still fit [`MAX_ENV_ENTRIES`].
pub const MAX_SERVICE_ENV: usize = MAX_ENV_ENTRIES - BUILTIN_ENV.len();
/// The largest uid or gid: 4294967295 is `(uid_t)-1`, which `setuid` and
/// `chown` take as "leave unchanged".
pub const MAX_ID: u32 = u32::MAX - 1;

/// What is wrong, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitError {
    /// More than [`MAX_EXEC_ARGS`] arguments.
    TooManyArgs { service: Name, count: usize },
    /// More than [`MAX_SERVICE_ENV`] environment entries.
    TooManyEnv { service: Name, count: usize },
    /// A uid or gid of `(uid_t)-1` (`which` is "uid" or "gid").
    IdRange {
        service: Name,
        which: &'static str,
        value: u64,
    },
    /// `exec` is empty.
    EmptyExec { service: Name },
    /// `exec[0]` (or `workdir`) is not an absolute path.
    NotAbsolute { service: Name, field: &'static str },
    /// A NUL byte in `field` (argument `index`, env entry `index`, …):
    /// C strings cannot carry it.
    Nul {
        service: Name,
        field: &'static str,
        index: usize,
    },
    /// An environment key that is not `[A-Za-z_][A-Za-z0-9_]*`.
    EnvKey { service: Name, index: usize },
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooManyArgs { service, count } => write!(
                f,
                "service {service:?}: exec has {count} arguments, at most {MAX_EXEC_ARGS} are supported"
            ),
            Self::TooManyEnv { service, count } => write!(
                f,
                "service {service:?}: env has {count} entries, at most {MAX_SERVICE_ENV} are supported"
            ),
            Self::IdRange {
                service,
                which,
                value,
            } => write!(
                f,
                "service {service:?}: {which} {value} is out of range (0..={MAX_ID}; {} means \"unchanged\" to the kernel)",
                u32::MAX
            ),
            Self::EmptyExec { service } => write!(f, "service {service:?}: exec is empty"),
            Self::NotAbsolute { service, field } => {
                write!(f, "service {service:?}: {field} is not an absolute path")
            }
            Self::Nul {
                service,
                field,
                index,
            } => write!(f, "service {service:?}: {field} entry {index} contains a NUL byte"),
            Self::EnvKey { service, index } => write!(
                f,
                "service {service:?}: env entry {index} has a key that is not [A-Za-z_][A-Za-z0-9_]*"
            ),
        }
    }
}

impl core::error::Error for LimitError {}

/// A uid or gid as read from a config (any width): `Ok` if init can use it.
pub fn check_id(service: &Name, which: &'static str, value: u64) -> Result<u32, LimitError> {
    u32::try_from(value)
        .ok()
        .filter(|&v| v <= MAX_ID)
        .ok_or(LimitError::IdRange {
            service: service.clone(),
            which,
            value,
        })
}

/// Is `k` a valid environment variable name?
pub fn valid_env_key(k: &str) -> bool {
    let mut b = k.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Check one service against every limit above.
pub fn check_service(s: &Service) -> Result<(), LimitError> {
    let service = || s.name.clone();
    let exec0 = s
        .exec
        .first()
        .ok_or_else(|| LimitError::EmptyExec { service: service() })?;
    if s.exec.len() > MAX_EXEC_ARGS {
        return Err(LimitError::TooManyArgs {
            service: service(),
            count: s.exec.len(),
        });
    }
    if s.env.len() > MAX_SERVICE_ENV {
        return Err(LimitError::TooManyEnv {
            service: service(),
            count: s.env.len(),
        });
    }
    check_id(&s.name, "uid", s.uid.into())?;
    check_id(&s.name, "gid", s.gid.into())?;
    if let Some(index) = s.exec.iter().position(|a| a.contains('\0')) {
        return Err(LimitError::Nul {
            service: service(),
            field: "exec",
            index,
        });
    }
    if !exec0.starts_with('/') {
        return Err(LimitError::NotAbsolute {
            service: service(),
            field: "exec[0]",
        });
    }
    for (index, (k, v)) in s.env.iter().enumerate() {
        if k.contains('\0') || v.contains('\0') {
            return Err(LimitError::Nul {
                service: service(),
                field: "env",
                index,
            });
        }
        if !valid_env_key(k) {
            return Err(LimitError::EnvKey {
                service: service(),
                index,
            });
        }
    }
    if let Some(w) = &s.workdir {
        if w.contains('\0') {
            return Err(LimitError::Nul {
                service: service(),
                field: "workdir",
                index: 0,
            });
        }
        if !w.starts_with('/') {
            return Err(LimitError::NotAbsolute {
                service: service(),
                field: "workdir",
            });
        }
    }
    Ok(())
}

/// [`check_service`] for every service of a table, in table order.
pub fn check_table(t: &ServiceTable) -> Result<(), LimitError> {
    t.services.iter().try_for_each(check_service)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::{CrashLoop, CrashLoopAction, Readiness, RestartPolicy};
    use alloc::string::{String, ToString};
    use alloc::vec;
    use alloc::vec::Vec;

    fn svc() -> Service {
        Service {
            name: crate::name("app").unwrap(),
            exec: vec!["/bin/app".into()],
            env: vec![("A".into(), "1".into())],
            uid: 1000,
            gid: 1000,
            workdir: Some("/data".into()),
            restart: RestartPolicy::Always,
            restart_delay_ms: 100,
            restart_delay_max_ms: 1000,
            crash_loop: CrashLoop {
                max_restarts: 5,
                window_s: 60,
                action: CrashLoopAction::GiveUp,
            },
            after: vec![],
            memory_max: None,
            ready: Readiness::Started,
            stop_timeout_ms: None,
        }
    }

    #[test]
    fn exec_and_env_counts_at_the_limit() {
        let mut s = svc();
        s.exec = (0..MAX_EXEC_ARGS)
            .map(|i| alloc::format!("/a{i}"))
            .collect();
        s.env = (0..MAX_SERVICE_ENV)
            .map(|i| (alloc::format!("K{i}"), String::new()))
            .collect();
        assert_eq!(check_service(&s), Ok(()));
        // Together with every built-in variable, envp still fits.
        assert!(s.env.len() + BUILTIN_ENV.len() <= MAX_ENV_ENTRIES);
        let mut more = s.clone();
        more.exec.push("x".into());
        assert_eq!(
            check_service(&more),
            Err(LimitError::TooManyArgs {
                service: s.name.clone(),
                count: 64
            })
        );
        let mut more = s.clone();
        more.env.push(("Z".into(), String::new()));
        assert_eq!(
            check_service(&more),
            Err(LimitError::TooManyEnv {
                service: s.name.clone(),
                count: MAX_SERVICE_ENV + 1
            })
        );
    }

    #[test]
    fn ids() {
        let n = crate::name("app").unwrap();
        assert_eq!(check_id(&n, "uid", 0), Ok(0));
        assert_eq!(check_id(&n, "uid", 4_294_967_294), Ok(4_294_967_294));
        for bad in [4_294_967_295u64, 4_294_967_296, u64::MAX] {
            assert_eq!(
                check_id(&n, "gid", bad),
                Err(LimitError::IdRange {
                    service: n.clone(),
                    which: "gid",
                    value: bad
                })
            );
        }
        let mut s = svc();
        s.uid = u32::MAX;
        assert!(matches!(
            check_service(&s),
            Err(LimitError::IdRange { which: "uid", .. })
        ));
        let mut s = svc();
        s.gid = u32::MAX;
        let e = check_service(&s).unwrap_err();
        assert!(matches!(e, LimitError::IdRange { which: "gid", .. }));
        assert!(e.to_string().contains("4294967295"), "{e}");
    }

    #[test]
    fn strings() {
        type Case = (fn(&mut Service), LimitError);
        let cases: Vec<Case> = vec![
            (
                |s| s.exec.clear(),
                LimitError::EmptyExec {
                    service: svc().name,
                },
            ),
            (
                |s| s.exec[0] = "bin/app".into(),
                LimitError::NotAbsolute {
                    service: svc().name,
                    field: "exec[0]",
                },
            ),
            (
                |s| s.exec.push("a\0b".into()),
                LimitError::Nul {
                    service: svc().name,
                    field: "exec",
                    index: 1,
                },
            ),
            (
                |s| s.env[0].1 = "\0".into(),
                LimitError::Nul {
                    service: svc().name,
                    field: "env",
                    index: 0,
                },
            ),
            (
                |s| s.env.push(("A=B".into(), "x".into())),
                LimitError::EnvKey {
                    service: svc().name,
                    index: 1,
                },
            ),
            (
                |s| s.env[0].0 = "1A".into(),
                LimitError::EnvKey {
                    service: svc().name,
                    index: 0,
                },
            ),
            (
                |s| s.workdir = Some("data".into()),
                LimitError::NotAbsolute {
                    service: svc().name,
                    field: "workdir",
                },
            ),
        ];
        for (edit, want) in cases {
            let mut s = svc();
            edit(&mut s);
            assert_eq!(check_service(&s), Err(want.clone()));
            assert!(!want.to_string().is_empty());
        }
        assert!(valid_env_key("_x9") && !valid_env_key("") && !valid_env_key("a-b"));
    }

    #[test]
    fn table_names_the_first_bad_service() {
        let mut bad = svc();
        bad.name = crate::name("bad").unwrap();
        bad.uid = u32::MAX;
        let t = ServiceTable {
            services: vec![svc(), bad],
        };
        let e = check_table(&t).unwrap_err();
        assert!(matches!(&e, LimitError::IdRange { service, .. } if service.as_str() == "bad"));
        assert_eq!(
            check_table(&ServiceTable {
                services: vec![svc()]
            }),
            Ok(())
        );
    }
}
