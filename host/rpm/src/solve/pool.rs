//! The candidates of one resolution: every package of the repositories
//! that is for the target architecture (or `noarch`) and not excluded,
//! with the indexes the solver asks — packages by name (newest first),
//! providers of a capability (rpm's matching rule, [`Dep::satisfies`]),
//! owners of a path (the files primary lists) — and what obsoletes what.
//!
//! Packages left out (other architectures, excluded, no EVR) are kept
//! aside with the reason, so an explanation can say "only the x86_64
//! package provides it".
use super::glob;
use super::Repo;
use crate::dep::{Cmp, Dep, Rich};
use crate::evr::Evr;
use crate::primary::Package;
use std::cmp::Ordering;
use std::collections::HashMap;

/// One candidate package.
#[derive(Debug, Clone, Copy)]
pub struct Cand<'a> {
    /// Index into the repositories given.
    pub repo: usize,
    pub pkg: &'a Package,
    pub evr: &'a Evr,
}

impl Cand<'_> {
    /// The provide every package has implicitly: `name = evr`.
    pub fn self_provide(&self) -> Dep {
        Dep::new(&self.pkg.name, Cmp::Eq, self.evr.clone())
    }
}

/// Why a package is not a candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    Arch,
    Excluded(String),
}

pub struct Pool<'a> {
    pub repos: &'a [Repo],
    pub cands: Vec<Cand<'a>>,
    /// Package names; the index is the solver's name id.
    pub names: Vec<&'a str>,
    /// Candidates of each name, newest first.
    pub by_name: Vec<Vec<usize>>,
    name_ids: HashMap<&'a str, usize>,
    provides: HashMap<&'a str, Vec<(usize, &'a Dep)>>,
    files: HashMap<&'a str, Vec<usize>>,
    /// Packages that are not candidates, and why.
    pub skipped: Vec<(usize, &'a Package, Skip)>,
    pub arch: String,
}

impl<'a> Pool<'a> {
    pub fn new(repos: &'a [Repo], arch: &str, exclude: &[String]) -> Pool<'a> {
        let mut pool = Pool {
            repos,
            cands: Vec::new(),
            names: Vec::new(),
            by_name: Vec::new(),
            name_ids: HashMap::new(),
            provides: HashMap::new(),
            files: HashMap::new(),
            skipped: Vec::new(),
            arch: arch.to_string(),
        };
        for (ri, repo) in repos.iter().enumerate() {
            for pkg in &repo.packages {
                let Some(evr) = pkg.evr.as_ref() else {
                    continue;
                };
                if pkg.arch != arch && pkg.arch != "noarch" {
                    pool.skipped.push((ri, pkg, Skip::Arch));
                    continue;
                }
                if let Some(p) = exclude.iter().find(|p| glob::matches(p, &pkg.name)) {
                    pool.skipped.push((ri, pkg, Skip::Excluded(p.clone())));
                    continue;
                }
                let id = pool.cands.len();
                pool.cands.push(Cand { repo: ri, pkg, evr });
                let n = match pool.name_ids.get(pkg.name.as_str()) {
                    Some(n) => *n,
                    None => {
                        let n = pool.names.len();
                        pool.names.push(&pkg.name);
                        pool.by_name.push(Vec::new());
                        pool.name_ids.insert(&pkg.name, n);
                        n
                    }
                };
                if let Some(v) = pool.by_name.get_mut(n) {
                    v.push(id);
                }
                for d in &pkg.provides {
                    pool.provides.entry(&d.name).or_default().push((id, d));
                }
                for f in &pkg.files {
                    pool.files.entry(f).or_default().push(id);
                }
            }
        }
        let mut by_name = std::mem::take(&mut pool.by_name);
        for v in &mut by_name {
            v.sort_by(|a, b| pool.order(*a, *b));
        }
        pool.by_name = by_name;
        pool
    }

    pub fn cand(&self, id: usize) -> Option<&Cand<'a>> {
        self.cands.get(id)
    }

    pub fn name_id(&self, name: &str) -> Option<usize> {
        self.name_ids.get(name).copied()
    }

    /// The solver's preference among candidates of one name: newest EVR,
    /// then the target architecture over noarch, then the earlier
    /// repository, then the earlier entry.
    pub fn order(&self, a: usize, b: usize) -> Ordering {
        let (Some(x), Some(y)) = (self.cands.get(a), self.cands.get(b)) else {
            return a.cmp(&b);
        };
        y.evr
            .cmp_rpm(x.evr)
            .then_with(|| (x.pkg.arch == "noarch").cmp(&(y.pkg.arch == "noarch")))
            .then_with(|| x.repo.cmp(&y.repo))
            .then_with(|| a.cmp(&b))
    }

    /// `name-[E:]V-R.arch`.
    pub fn nevra(&self, id: usize) -> String {
        self.cands
            .get(id)
            .map(|c| c.pkg.nevra())
            .unwrap_or_default()
    }

    /// Candidates that satisfy a simple dependency: by their provides
    /// (and the implicit `name = evr`), and for a path by the files
    /// primary lists. Sorted, without duplicates.
    pub fn what_provides(&self, dep: &Dep) -> Vec<usize> {
        let mut out: Vec<usize> = self
            .provides
            .get(dep.name.as_str())
            .into_iter()
            .flatten()
            .filter(|(_, p)| p.satisfies(dep))
            .map(|(id, _)| *id)
            .collect();
        if let Some(n) = self.name_id(&dep.name) {
            for id in self.by_name.get(n).into_iter().flatten() {
                if self
                    .cands
                    .get(*id)
                    .is_some_and(|c| c.self_provide().satisfies(dep))
                {
                    out.push(*id);
                }
            }
        }
        if dep.name.starts_with('/') && dep.range.is_none() {
            out.extend(self.files.get(dep.name.as_str()).into_iter().flatten());
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The packages an atom selects (see [`super::cnf::is_atom`]): a
    /// simple dependency's providers; `with`: those of every operand;
    /// `without`: those of the first operand but not the second.
    pub fn atom(&self, r: &Rich) -> Vec<usize> {
        match r {
            Rich::Dep(d) => self.what_provides(d),
            Rich::With(v) => {
                let mut it = v.iter();
                let mut acc = it.next().map(|x| self.atom(x)).unwrap_or_default();
                for x in it {
                    let other = self.atom(x);
                    acc.retain(|id| other.binary_search(id).is_ok());
                }
                acc
            }
            Rich::Without(a, b) => {
                let mut acc = self.atom(a);
                let other = self.atom(b);
                acc.retain(|id| other.binary_search(id).is_err());
                acc
            }
            _ => Vec::new(),
        }
    }

    /// Candidates named `dep.name` whose EVR `dep` matches: what an
    /// `Obsoletes:` names (obsoletes match package names, not provides,
    /// as in dnf's default).
    pub fn named(&self, dep: &Dep) -> Vec<usize> {
        let Some(n) = self.name_id(&dep.name) else {
            return Vec::new();
        };
        let mut out: Vec<usize> = self
            .by_name
            .get(n)
            .into_iter()
            .flatten()
            .copied()
            .filter(|id| {
                self.cands
                    .get(*id)
                    .is_some_and(|c| c.self_provide().satisfies(dep))
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// Whether candidate `by` obsoletes candidate `id`.
    pub fn obsoletes(&self, by: usize, id: usize) -> bool {
        let (Some(b), Some(c)) = (self.cands.get(by), self.cands.get(id)) else {
            return false;
        };
        by != id
            && b.pkg.name != c.pkg.name
            && b.pkg.obsoletes.iter().any(|o| match o {
                Rich::Dep(d) => c.self_provide().satisfies(d),
                _ => false,
            })
    }

    /// Candidates obsoleting any of `ids` (for an install request that
    /// names an obsoleted package: dnf installs the obsoleter).
    pub fn obsoleters_of(&self, ids: &[usize]) -> Vec<usize> {
        let mut out: Vec<usize> = (0..self.cands.len())
            .filter(|by| ids.iter().any(|id| self.obsoletes(*by, *id)))
            .collect();
        out.sort_unstable();
        out
    }

    /// Packages left out that would satisfy `dep` (for explanations).
    pub fn skipped_providers(&self, dep: &Dep) -> Vec<(String, &Skip)> {
        self.skipped
            .iter()
            .filter(|(_, p, _)| {
                p.provides.iter().any(|x| x.satisfies(dep))
                    || (p.name == dep.name
                        && p.evr
                            .as_ref()
                            .is_some_and(|e| Dep::new(&p.name, Cmp::Eq, e.clone()).satisfies(dep)))
                    || (dep.name.starts_with('/') && p.files.contains(&dep.name))
            })
            .map(|(_, p, why)| (p.nevra(), why))
            .collect()
    }

    /// Candidates providing `dep.name` at some other version (for
    /// explanations: "libfoo-1.0-1 provides libfoo = 1.0").
    pub fn near_providers(&self, dep: &Dep) -> Vec<String> {
        let mut out: Vec<String> = self
            .provides
            .get(dep.name.as_str())
            .into_iter()
            .flatten()
            .map(|(id, p)| format!("{} provides {p}", self.nevra(*id)))
            .collect();
        out.sort();
        out.dedup();
        out
    }
}
