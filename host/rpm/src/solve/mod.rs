//! Dependency resolution: which packages of the repositories an image
//! needs for what its config asks to install, chosen by a SAT solver
//! ([resolvo](https://docs.rs/resolvo), CDCL in the libsolv tradition)
//! rather than a greedy walk.
//!
//! - [`pool`]: the candidates (target architecture + noarch, minus
//!   excludes) and rpm's matching of requirements to provides and files;
//! - [`cnf`]: rich dependencies as clauses with conditions;
//! - [`provider`]: the resolvo model (version sets over providers,
//!   unions, conditions, conflicts and obsoletes as constraints);
//! - [`explain`]: an unsolvable request as typed problems naming the
//!   chain of requirements;
//! - [`glob`]: exclude patterns.
//!
//! Policy, as dnf applies it where the two differ in choice only: newest
//! EVR first inside a name; among alternative providers, those not
//! obsoleted by another provider, then by name; an install request naming
//! a package that another package obsoletes installs the obsoleter
//! (either may be chosen if only one works); a plain name requests
//! packages of that name if there are any, else its providers (a
//! capability, `name >= evr`, or a path).
//!
//! Limits: the candidates and their dependency lists are bounded by the
//! parsers ([`crate::limits`]); one requirement expands to at most
//! [`cnf::CLAUSES_MAX`] clauses; the solver stops after
//! [`Request::time_limit`]. Weak dependencies (`Recommends:`) are only
//! followed when asked, as resolvo soft requirements: after the hard
//! solution, the best provider of each recommendation of the chosen
//! packages is added if it fits, for at most [`WEAK_ROUNDS`] rounds;
//! `Supplements:` (reverse weak dependencies) are not followed.
pub mod cnf;
pub mod explain;
pub mod glob;
pub mod pool;
pub mod provider;

use crate::dep::{Cmp, Dep, DepError, Rich};
use crate::evr::Evr;
use crate::primary::Package;
pub use explain::{Problem, Unsolvable};
use pool::Pool;
use provider::Provider;
use resolvo::{DenseIndex, Problem as SatProblem, SolvableId, Solver, UnsolvableOrCancelled};
use std::time::{Duration, Instant};

/// Rounds of weak-dependency additions at most.
pub const WEAK_ROUNDS: usize = 8;

/// One repository's packages, named for messages and the result.
#[derive(Debug, Clone)]
pub struct Repo {
    pub name: String,
    pub packages: Vec<Package>,
}

/// What to resolve.
#[derive(Debug, Clone)]
pub struct Request {
    /// Package names, capabilities (`busybox >= 1.36`) or paths (`/usr/bin/sh`).
    pub install: Vec<String>,
    /// Package name patterns (`*`, `?`) never to install.
    pub exclude: Vec<String>,
    /// Follow `Recommends:` (off by default, like `install_weak_deps=False`).
    pub weak_deps: bool,
    /// The target architecture; `noarch` packages are always candidates,
    /// packages of other architectures never.
    pub arch: String,
    pub time_limit: Duration,
}

impl Default for Request {
    fn default() -> Self {
        Request {
            install: Vec::new(),
            exclude: Vec::new(),
            weak_deps: false,
            arch: "aarch64".into(),
            time_limit: Duration::from_secs(300),
        }
    }
}

/// A chosen package.
#[derive(Debug, Clone, Copy)]
pub struct Chosen<'a> {
    pub repo: &'a str,
    pub package: &'a Package,
}

impl Chosen<'_> {
    pub fn nevra(&self) -> String {
        self.package.nevra()
    }
}

/// The packages to install, sorted by name, EVR (rpm order), arch, repo.
#[derive(Debug, Clone)]
pub struct Solution<'a> {
    pub packages: Vec<Chosen<'a>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SolveError {
    #[error("install request `{request}`: {err}")]
    Request { request: String, err: DepError },
    #[error("{0}")]
    Unsolvable(Unsolvable),
    #[error("resolution took longer than {0:?} and was stopped")]
    TimedOut(Duration),
}

/// Resolves `req` over `repos` (earlier repositories win ties).
pub fn resolve<'a>(repos: &'a [Repo], req: &Request) -> Result<Solution<'a>, SolveError> {
    let pool = Pool::new(repos, &req.arch, &req.exclude);
    let deadline = Instant::now().checked_add(req.time_limit);
    let provider = Provider::new(&pool, deadline);
    let mut roots = Vec::new();
    for s in &req.install {
        let r = parse_request(s).map_err(|err| SolveError::Request {
            request: s.clone(),
            err,
        })?;
        let ids = match &r {
            Rich::Dep(d) if d.range.is_none() && pool.name_id(&d.name).is_some() => {
                let mut ids = pool.named(d);
                ids.extend(pool.obsoleters_of(&ids));
                ids.sort_unstable();
                ids.dedup();
                ids
            }
            _ if cnf::is_atom(&r) => pool.atom(&r),
            _ => {
                return Err(SolveError::Request {
                    request: s.clone(),
                    err: DepError::Syntax("a request is a name, a capability or a path".into()),
                })
            }
        };
        roots.push(provider.request(s, &ids, r.deps().into_iter().cloned().collect()));
    }
    let mut solver = Solver::new(provider);
    let sat = |solver: &mut Solver<Provider<'_, '_>>, soft: Vec<SolvableId>| {
        solver.solve(
            SatProblem::new()
                .requirements(roots.clone())
                .soft_requirements(soft),
        )
    };
    let mut chosen = match sat(&mut solver, Vec::new()) {
        Ok(c) => c,
        Err(UnsolvableOrCancelled::Unsolvable(c)) => {
            let g = c.graph(&solver);
            return Err(SolveError::Unsolvable(explain::explain(
                &g,
                solver.provider(),
            )));
        }
        Err(UnsolvableOrCancelled::Cancelled(_)) => {
            return Err(SolveError::TimedOut(req.time_limit))
        }
    };
    if req.weak_deps {
        let mut soft: Vec<SolvableId> = Vec::new();
        for _ in 0..WEAK_ROUNDS {
            let more = weak_candidates(&pool, &chosen, &soft);
            if more.is_empty() {
                break;
            }
            soft.extend(more);
            match sat(&mut solver, soft.clone()) {
                Ok(c) => chosen = c,
                Err(UnsolvableOrCancelled::Cancelled(_)) => {
                    return Err(SolveError::TimedOut(req.time_limit))
                }
                // The hard part solved before; soft ones never make it fail.
                Err(UnsolvableOrCancelled::Unsolvable(_)) => break,
            }
        }
    }
    Ok(solution(&pool, repos, &chosen))
}

/// `name [op evr]` (the name may hold parentheses: `svc(api) >= 2`), or a
/// rich expression in parentheses.
fn parse_request(s: &str) -> Result<Rich, DepError> {
    if s.trim_start().starts_with('(') {
        return Rich::parse(s);
    }
    let w: Vec<&str> = s.split_whitespace().collect();
    match w.as_slice() {
        [name] => Ok(Rich::Dep(Dep::any(name))),
        [name, op, v] => {
            let cmp = Cmp::from_op(op)
                .ok_or_else(|| DepError::Syntax(format!("`{op}` is not a comparison")))?;
            let evr =
                Evr::parse(v).ok_or_else(|| DepError::Syntax(format!("bad version `{v}`")))?;
            Ok(Rich::Dep(Dep::new(name, cmp, evr)))
        }
        _ => Err(DepError::Syntax(
            "expected `name`, `name OP version` or a rich dependency".into(),
        )),
    }
}

/// For each recommendation of the chosen packages that nothing chosen
/// satisfies: its best provider (first alternative, newest), if that
/// package's name is not chosen yet.
fn weak_candidates(
    pool: &Pool<'_>,
    chosen: &[SolvableId],
    tried: &[SolvableId],
) -> Vec<SolvableId> {
    let have: Vec<usize> = chosen.iter().map(|s| s.to_index()).collect();
    let names: Vec<&str> = have
        .iter()
        .filter_map(|i| pool.cand(*i).map(|c| c.pkg.name.as_str()))
        .collect();
    let mut out = Vec::new();
    for id in &have {
        let Some(c) = pool.cand(*id) else { continue };
        for rec in &c.pkg.recommends {
            let alts: Vec<&Rich> = match rec {
                Rich::Or(v) => v.iter().collect(),
                r => vec![r],
            };
            let mut provs: Vec<usize> = alts
                .iter()
                .filter(|a| cnf::is_atom(a))
                .flat_map(|a| pool.atom(a))
                .collect();
            if provs.iter().any(|p| have.contains(p)) {
                continue;
            }
            provs.sort_by(|a, b| {
                let na = pool.cand(*a).map(|c| c.pkg.name.as_str());
                let nb = pool.cand(*b).map(|c| c.pkg.name.as_str());
                na.cmp(&nb).then_with(|| pool.order(*a, *b))
            });
            if let Some(best) = provs.first() {
                let s = SolvableId::from_index(*best);
                let name = pool.cand(*best).map(|c| c.pkg.name.as_str());
                if !tried.contains(&s)
                    && !out.contains(&s)
                    && name.is_some_and(|n| !names.contains(&n))
                {
                    out.push(s);
                }
            }
        }
    }
    out
}

fn solution<'a>(pool: &Pool<'a>, repos: &'a [Repo], chosen: &[SolvableId]) -> Solution<'a> {
    let mut packages: Vec<Chosen<'a>> = chosen
        .iter()
        .filter_map(|s| pool.cand(s.to_index()))
        .map(|c| Chosen {
            repo: repos
                .get(c.repo)
                .map(|r| r.name.as_str())
                .unwrap_or_default(),
            package: c.pkg,
        })
        .collect();
    let none = Evr::new(0, "", None);
    packages.sort_by(|a, b| {
        a.package
            .name
            .cmp(&b.package.name)
            .then_with(|| {
                a.package
                    .evr
                    .as_ref()
                    .unwrap_or(&none)
                    .cmp_rpm(b.package.evr.as_ref().unwrap_or(&none))
            })
            .then_with(|| a.package.arch.cmp(&b.package.arch))
            .then_with(|| a.repo.cmp(b.repo))
    });
    Solution { packages }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests() {
        let d = |s: &str| match parse_request(s).unwrap() {
            Rich::Dep(d) => d.to_string(),
            r => format!("rich {r}"),
        };
        assert_eq!(d("busybox"), "busybox");
        assert_eq!(d("busybox >= 1.36"), "busybox >= 1.36");
        assert_eq!(d("svc(api) < 2"), "svc(api) < 2");
        assert_eq!(d("/usr/bin/sh"), "/usr/bin/sh");
        assert_eq!(d("(a or b)"), "rich (a or b)");
        assert!(parse_request("a >= ").is_err());
        assert!(parse_request("a ~ 1").is_err());
        assert!(parse_request("").is_err());
    }

    #[test]
    fn refuses_other_arches_and_names_them() {
        let pkg = |name: &str, arch: &str| Package {
            name: name.into(),
            arch: arch.into(),
            evr: Some(Evr::new(0, "1", Some("1"))),
            location: format!("{name}.rpm"),
            ..Package::default()
        };
        let repos = vec![Repo {
            name: "r".into(),
            packages: vec![pkg("a", "x86_64"), pkg("a", "aarch64"), pkg("b", "ppc64le")],
        }];
        let req = |n: &str| Request {
            install: vec![n.into()],
            ..Request::default()
        };
        let s = resolve(&repos, &req("a")).unwrap();
        assert_eq!(s.packages.len(), 1);
        assert_eq!(s.packages[0].nevra(), "a-1-1.aarch64");
        let e = resolve(&repos, &req("b")).unwrap_err().to_string();
        assert_eq!(
            e,
            "cannot install b: nothing provides b (b-1-1.ppc64le provides it but is not for aarch64)"
        );
    }
}
