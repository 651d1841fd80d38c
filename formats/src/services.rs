//! The service table (`/etc/azl-edge/services.tbl`): what init supervises.
//!
//! imagegen compiles it from the image config's `[[service]]` entries, checks
//! every reference and sorts it so that each service comes after everything
//! named in its `after` list (a topological order). init starts services in
//! table order and stops them in reverse.
use crate::envelope::Enveloped;
use crate::Name;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceTable {
    /// In start order.
    pub services: Vec<Service>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub name: Name,
    /// argv; `exec[0]` is an absolute path.
    pub exec: Vec<String>,
    /// Extra environment (`KEY`, `value`), on top of `PATH`, `HOME=/`, `TERM`.
    pub env: Vec<(String, String)>,
    pub uid: u32,
    pub gid: u32,
    /// Working directory (default `/`).
    pub workdir: Option<String>,
    pub restart: RestartPolicy,
    /// First restart delay; doubles on each consecutive failure.
    pub restart_delay_ms: u32,
    /// Upper bound of the restart delay.
    pub restart_delay_max_ms: u32,
    pub crash_loop: CrashLoop,
    /// Names of services that must be ready before this one starts.
    pub after: Vec<Name>,
    /// cgroup v2 `memory.max` in bytes.
    pub memory_max: Option<u64>,
    pub ready: Readiness,
    /// SIGTERM → SIGKILL grace at stop; `None` = the board's default.
    pub stop_timeout_ms: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

/// How init learns that a service is ready (so that services `after` it may start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Readiness {
    /// Ready as soon as the process has been started.
    Started,
    /// Ready when the service writes a line to the fd named by `$NOTIFY_FD` (fd 3).
    Notify,
}

/// More than `max_restarts` restarts within `window_s` seconds is a crash loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashLoop {
    pub max_restarts: u16,
    pub window_s: u32,
    pub action: CrashLoopAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CrashLoopAction {
    /// Stop restarting; the service stays `failed`.
    GiveUp,
    /// Reboot the device (orderly shutdown first).
    Reboot,
}

impl Enveloped for ServiceTable {
    const MAGIC: [u8; 4] = *b"AZSV";
    const VERSION: u16 = 1;
}

/// Why a decoded table cannot be used as-is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableError {
    DuplicateName(Name),
    /// `service` names `after` something that is not earlier in the table.
    BadOrder {
        service: Name,
        after: Name,
    },
    EmptyExec(Name),
}

impl core::fmt::Display for TableError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::DuplicateName(n) => write!(f, "service {n:?} appears twice"),
            Self::BadOrder { service, after } => {
                write!(
                    f,
                    "service {service:?} is after {after:?}, which does not precede it"
                )
            }
            Self::EmptyExec(n) => write!(f, "service {n:?} has an empty exec"),
        }
    }
}

impl ServiceTable {
    /// Check the invariants imagegen guarantees (init re-checks them cheaply,
    /// so a hand-edited table cannot make it loop or index out of bounds).
    pub fn validate(&self) -> Result<(), TableError> {
        for (i, s) in self.services.iter().enumerate() {
            let earlier = self.services.get(..i).unwrap_or_default();
            if earlier.iter().any(|e| e.name == s.name) {
                return Err(TableError::DuplicateName(s.name.clone()));
            }
            if s.exec.is_empty() {
                return Err(TableError::EmptyExec(s.name.clone()));
            }
            for a in &s.after {
                if !earlier.iter().any(|e| &e.name == a) {
                    return Err(TableError::BadOrder {
                        service: s.name.clone(),
                        after: a.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.services.iter().position(|s| s.name.as_str() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    pub(crate) fn svc(name: &str, after: &[&str]) -> Service {
        Service {
            name: crate::name(name).unwrap(),
            exec: vec!["/bin/true".into()],
            env: vec![],
            uid: 0,
            gid: 0,
            workdir: None,
            restart: RestartPolicy::Always,
            restart_delay_ms: 100,
            restart_delay_max_ms: 10_000,
            crash_loop: CrashLoop {
                max_restarts: 5,
                window_s: 60,
                action: CrashLoopAction::GiveUp,
            },
            after: after.iter().map(|a| crate::name(a).unwrap()).collect(),
            memory_max: None,
            ready: Readiness::Started,
            stop_timeout_ms: None,
        }
    }

    #[test]
    fn roundtrip_and_validate() {
        let t = ServiceTable {
            services: vec![svc("a", &[]), svc("b", &["a"])],
        };
        t.validate().unwrap();
        let b = t.to_bytes().unwrap();
        assert_eq!(ServiceTable::from_bytes(&b).unwrap(), t);
        assert!(
            crate::BootConfig::from_bytes(&b).is_err(),
            "magic is checked"
        );
    }

    #[test]
    fn invalid_tables() {
        let t = ServiceTable {
            services: vec![svc("b", &["a"]), svc("a", &[])],
        };
        assert!(matches!(t.validate(), Err(TableError::BadOrder { .. })));
        let t = ServiceTable {
            services: vec![svc("a", &[]), svc("a", &[])],
        };
        assert!(matches!(t.validate(), Err(TableError::DuplicateName(_))));
        let mut s = svc("a", &[]);
        s.exec.clear();
        assert!(matches!(
            ServiceTable { services: vec![s] }.validate(),
            Err(TableError::EmptyExec(_))
        ));
        let t = ServiceTable {
            services: vec![svc("a", &["a"])],
        };
        assert!(t.validate().is_err(), "self-dependency");
    }
}
