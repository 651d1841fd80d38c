//! The resolvo side: packages as solvables, requirements as version sets.
//!
//! resolvo gives every solvable one name and lets a version set select
//! candidates of one name; rpm requires *capabilities* that packages of
//! many names provide. So a requirement becomes, per package name among
//! its providers, a version set holding exactly those providers, and the
//! requirement is their union (a single set when one name provides it).
//! A capability nothing provides becomes a set over a name that has no
//! candidates (the capability text itself), which resolvo reports as
//! unresolved and [`super::explain`] turns into "nothing provides".
//!
//! Order inside a union is the preference among alternative providers,
//! as dnf (libsolv) prefers them: packages that another provider
//! obsoletes last, then by name; inside one name newest first
//! ([`Pool::order`]).
//!
//! Conditions (`a if b`) are resolvo conditions over the providers of
//! `b`; a condition nothing can satisfy drops its clause. Conflicts
//! (matched against provides and files, as rpm does) and obsoletes
//! (matched against package names, dnf's default) are resolvo
//! `constrains`: "if a package of name N is installed, it is one of the
//! others". A package whose dependencies cannot be expressed (see
//! [`super::cnf`]) is given to resolvo as unusable with the reason, so it
//! is never chosen and the reason shows in an explanation.
use super::cnf::{self, Clause, Cond};
use super::pool::Pool;
use crate::dep::{Dep, Rich};
use resolvo::{
    Candidates, Condition, ConditionId, ConditionalRequirement, DenseIndex, Dependencies,
    DependencyProvider, Interner, KnownDependencies, LogicalOperator, NameId, Requirement,
    SolvableId, SolverCache, StringId, VersionSetId, VersionSetUnionId,
};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Display;
use std::time::Instant;

/// What a version set stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetKind {
    Requires,
    Conflicts,
    Obsoletes,
}

#[derive(Debug, Clone)]
pub struct VSet {
    pub name: NameId,
    /// Candidate ids, sorted.
    pub members: Vec<usize>,
    /// The dependency as written (`libfoo >= 2`, `(a or b)`), or for
    /// constraints the owner's `Conflicts:`/`Obsoletes:` entry.
    pub label: String,
    pub kind: SetKind,
}

#[derive(Default)]
struct Tables {
    pseudo: Vec<String>,
    pseudo_ids: HashMap<String, usize>,
    sets: Vec<VSet>,
    unions: Vec<(Vec<VersionSetId>, String)>,
    conds: Vec<Condition>,
    strings: Vec<String>,
    /// Clause text → its requirement (`None`: its condition can never hold).
    reqs: HashMap<String, Option<ConditionalRequirement>>,
    /// Requirement label → the simple dependencies in it (for hints).
    hints: HashMap<String, Vec<Dep>>,
}

pub struct Provider<'p, 'a> {
    pub pool: &'p Pool<'a>,
    t: RefCell<Tables>,
    deadline: Option<Instant>,
}

enum CondVal {
    Never,
    Is(ConditionId),
}

fn sid(id: usize) -> SolvableId {
    SolvableId::from_index(id)
}

impl<'p, 'a> Provider<'p, 'a> {
    pub fn new(pool: &'p Pool<'a>, deadline: Option<Instant>) -> Self {
        Provider {
            pool,
            t: RefCell::new(Tables::default()),
            deadline,
        }
    }

    fn pseudo_name(&self, t: &mut Tables, text: &str) -> NameId {
        let i = match t.pseudo_ids.get(text) {
            Some(i) => *i,
            None => {
                let i = t.pseudo.len();
                t.pseudo.push(text.to_string());
                t.pseudo_ids.insert(text.to_string(), i);
                i
            }
        };
        NameId::from_index(self.pool.names.len() + i)
    }

    fn add_set(t: &mut Tables, set: VSet) -> VersionSetId {
        t.sets.push(set);
        VersionSetId::from_index(t.sets.len() - 1)
    }

    fn string(&self, s: String) -> StringId {
        let mut t = self.t.borrow_mut();
        t.strings.push(s);
        StringId::from_index(t.strings.len() - 1)
    }

    /// Candidates grouped by name, in the preference order of a union.
    fn groups(&self, ids: &[usize]) -> Vec<(usize, Vec<usize>)> {
        let mut by: Vec<(usize, Vec<usize>)> = Vec::new();
        for id in ids {
            let Some(n) = self
                .pool
                .cand(*id)
                .and_then(|c| self.pool.name_id(&c.pkg.name))
            else {
                continue;
            };
            match by.iter_mut().find(|(m, _)| *m == n) {
                Some((_, v)) => v.push(*id),
                None => by.push((n, vec![*id])),
            }
        }
        let obsoleted = |g: &(usize, Vec<usize>)| {
            g.1.iter()
                .all(|id| ids.iter().any(|by| self.pool.obsoletes(*by, *id)))
        };
        by.sort_by(|a, b| {
            obsoleted(a).cmp(&obsoleted(b)).then_with(|| {
                let na = self.pool.names.get(a.0).copied().unwrap_or_default();
                let nb = self.pool.names.get(b.0).copied().unwrap_or_default();
                na.cmp(nb)
            })
        });
        for g in &mut by {
            g.1.sort_unstable();
        }
        by
    }

    /// A requirement over `ids` (any of them), labelled `label`; no ids:
    /// a set over the unprovided capability `label`.
    fn requirement_over(&self, t: &mut Tables, ids: &[usize], label: &str) -> Requirement {
        let groups = self.groups(ids);
        let mut sets: Vec<VersionSetId> = groups
            .into_iter()
            .map(|(n, members)| {
                Self::add_set(
                    t,
                    VSet {
                        name: NameId::from_index(n),
                        members,
                        label: label.to_string(),
                        kind: SetKind::Requires,
                    },
                )
            })
            .collect();
        if sets.is_empty() {
            let name = self.pseudo_name(t, label);
            sets.push(Self::add_set(
                t,
                VSet {
                    name,
                    members: Vec::new(),
                    label: label.to_string(),
                    kind: SetKind::Requires,
                },
            ));
        }
        match sets.as_slice() {
            [one] => Requirement::Single(*one),
            _ => {
                t.unions.push((sets, label.to_string()));
                Requirement::Union(VersionSetUnionId::from_index(t.unions.len() - 1))
            }
        }
    }

    fn condition(&self, t: &mut Tables, c: &Cond<'_>) -> CondVal {
        match c {
            Cond::Atom(r) => {
                let ids = self.pool.atom(r);
                let mut acc: Option<ConditionId> = None;
                for (n, members) in self.groups(&ids) {
                    let vs = Self::add_set(
                        t,
                        VSet {
                            name: NameId::from_index(n),
                            members,
                            label: r.to_string(),
                            kind: SetKind::Requires,
                        },
                    );
                    let leaf = Self::add_cond(t, Condition::Requirement(vs));
                    acc = Some(match acc {
                        None => leaf,
                        Some(a) => {
                            Self::add_cond(t, Condition::Binary(LogicalOperator::Or, a, leaf))
                        }
                    });
                }
                acc.map_or(CondVal::Never, CondVal::Is)
            }
            Cond::And(a, b) => match (self.condition(t, a), self.condition(t, b)) {
                (CondVal::Is(x), CondVal::Is(y)) => CondVal::Is(Self::add_cond(
                    t,
                    Condition::Binary(LogicalOperator::And, x, y),
                )),
                _ => CondVal::Never,
            },
            Cond::Or(a, b) => match (self.condition(t, a), self.condition(t, b)) {
                (CondVal::Is(x), CondVal::Is(y)) => CondVal::Is(Self::add_cond(
                    t,
                    Condition::Binary(LogicalOperator::Or, x, y),
                )),
                (CondVal::Is(x), CondVal::Never) | (CondVal::Never, CondVal::Is(x)) => {
                    CondVal::Is(x)
                }
                (CondVal::Never, CondVal::Never) => CondVal::Never,
            },
        }
    }

    fn add_cond(t: &mut Tables, c: Condition) -> ConditionId {
        t.conds.push(c);
        ConditionId::new((t.conds.len() - 1) as u32)
    }

    /// One clause of a requirement, interned once per clause text.
    fn clause(&self, cl: &Clause<'_>) -> Option<ConditionalRequirement> {
        let key = cl.to_string();
        let mut t = self.t.borrow_mut();
        if let Some(r) = t.reqs.get(&key) {
            return *r;
        }
        let mut ids = Vec::new();
        for a in &cl.any {
            ids.extend(self.pool.atom(a));
        }
        ids.sort_unstable();
        ids.dedup();
        let any_label = {
            let c = Clause {
                cond: None,
                any: cl.any.clone(),
            };
            c.to_string()
        };
        let req = self.requirement_over(&mut t, &ids, &any_label);
        let hints: Vec<Dep> = cl.any.iter().flat_map(|a| a.deps()).cloned().collect();
        t.hints.insert(any_label, hints);
        let out = match &cl.cond {
            None => Some(ConditionalRequirement::from(req)),
            Some(c) => match self.condition(&mut t, c) {
                CondVal::Never => None,
                CondVal::Is(id) => Some(req.with_condition(id)),
            },
        };
        t.reqs.insert(key, out);
        out
    }

    /// An install request: any of `ids`, shown as `label`.
    pub fn request(&self, label: &str, ids: &[usize], hint: Vec<Dep>) -> ConditionalRequirement {
        let mut t = self.t.borrow_mut();
        let r = self.requirement_over(&mut t, ids, label);
        t.hints.insert(label.to_string(), hint);
        r.into()
    }

    /// "If a package of this name is installed it is not one of `hit`."
    fn constraint(
        &self,
        me: usize,
        hit: &[usize],
        label: String,
        kind: SetKind,
        out: &mut Vec<VersionSetId>,
    ) {
        let mut t = self.t.borrow_mut();
        for (n, hits) in self.groups(hit) {
            let all = self.pool.by_name.get(n).cloned().unwrap_or_default();
            let mut allowed: Vec<usize> = all
                .iter()
                .copied()
                .filter(|id| *id == me || hits.binary_search(id).is_err())
                .collect();
            if allowed.len() == all.len() {
                continue;
            }
            allowed.sort_unstable();
            out.push(Self::add_set(
                &mut t,
                VSet {
                    name: NameId::from_index(n),
                    members: allowed,
                    label: label.clone(),
                    kind,
                },
            ));
        }
    }

    fn dependencies(&self, id: usize) -> Result<KnownDependencies, String> {
        let Some(c) = self.pool.cand(id) else {
            return Err("unknown package".into());
        };
        let mut deps = KnownDependencies::default();
        for r in &c.pkg.requires {
            if matches!(&r.dep, Rich::Dep(d) if d.name.starts_with("rpmlib(")) {
                continue;
            }
            let cls = cnf::clauses(&r.dep).map_err(|e| format!("requires {}: {e}", r.dep))?;
            for cl in &cls {
                if let Some(req) = self.clause(cl) {
                    deps.requirements.push(req);
                }
            }
        }
        for x in &c.pkg.conflicts {
            let leaves: Vec<&Rich> = match x {
                _ if cnf::is_atom(x) => vec![x],
                Rich::Or(v) if v.iter().all(cnf::is_atom) => v.iter().collect(),
                _ => {
                    return Err(format!(
                        "conflicts {x}: only simple conflicts are supported"
                    ))
                }
            };
            for leaf in leaves {
                let hit: Vec<usize> = self
                    .pool
                    .atom(leaf)
                    .into_iter()
                    .filter(|h| *h != id)
                    .collect();
                self.constraint(
                    id,
                    &hit,
                    leaf.to_string(),
                    SetKind::Conflicts,
                    &mut deps.constrains,
                );
            }
        }
        for x in &c.pkg.obsoletes {
            let Rich::Dep(d) = x else {
                return Err(format!(
                    "obsoletes {x}: only simple obsoletes are supported"
                ));
            };
            let hit: Vec<usize> = self
                .pool
                .named(d)
                .into_iter()
                .filter(|h| self.pool.obsoletes(id, *h))
                .collect();
            self.constraint(
                id,
                &hit,
                d.to_string(),
                SetKind::Obsoletes,
                &mut deps.constrains,
            );
        }
        Ok(deps)
    }

    pub fn set(&self, vs: VersionSetId) -> Option<VSet> {
        self.t.borrow().sets.get(vs.to_index()).cloned()
    }

    /// The text of a requirement as the package wrote it.
    pub fn label(&self, r: Requirement) -> String {
        let t = self.t.borrow();
        match r {
            Requirement::Single(vs) => t
                .sets
                .get(vs.to_index())
                .map(|s| s.label.clone())
                .unwrap_or_default(),
            Requirement::Union(u) => t
                .unions
                .get(u.to_index())
                .map(|s| s.1.clone())
                .unwrap_or_default(),
        }
    }

    /// The simple dependencies inside a requirement label.
    pub fn hints(&self, label: &str) -> Vec<Dep> {
        self.t
            .borrow()
            .hints
            .get(label)
            .cloned()
            .unwrap_or_default()
    }

    pub fn string_of(&self, s: StringId) -> String {
        self.t
            .borrow()
            .strings
            .get(s.to_index())
            .cloned()
            .unwrap_or_default()
    }

    fn name_text(&self, n: NameId) -> String {
        let i = n.to_index();
        match self.pool.names.get(i) {
            Some(s) => s.to_string(),
            None => self
                .t
                .borrow()
                .pseudo
                .get(i - self.pool.names.len())
                .cloned()
                .unwrap_or_default(),
        }
    }
}

impl Interner for Provider<'_, '_> {
    type NameId = NameId;
    type SolvableId = SolvableId;

    fn display_solvable(&self, s: SolvableId) -> impl Display + '_ {
        self.pool.nevra(s.to_index())
    }

    fn display_name(&self, name: NameId) -> impl Display + '_ {
        self.name_text(name)
    }

    fn display_version_set(&self, vs: VersionSetId) -> impl Display + '_ {
        self.set(vs)
            .map(|s| format!("({})", s.label))
            .unwrap_or_default()
    }

    fn display_string(&self, s: StringId) -> impl Display + '_ {
        self.string_of(s)
    }

    fn version_set_name(&self, vs: VersionSetId) -> NameId {
        self.t
            .borrow()
            .sets
            .get(vs.to_index())
            .map_or(NameId::from_index(0), |s| s.name)
    }

    fn solvable_name(&self, s: SolvableId) -> NameId {
        let n = self
            .pool
            .cand(s.to_index())
            .and_then(|c| self.pool.name_id(&c.pkg.name))
            .unwrap_or_default();
        NameId::from_index(n)
    }

    fn version_sets_in_union(&self, u: VersionSetUnionId) -> impl Iterator<Item = VersionSetId> {
        self.t
            .borrow()
            .unions
            .get(u.to_index())
            .map(|x| x.0.clone())
            .unwrap_or_default()
            .into_iter()
    }

    fn resolve_condition(&self, c: ConditionId) -> Condition {
        self.t
            .borrow()
            .conds
            .get(c.as_u32() as usize)
            .cloned()
            .unwrap_or(Condition::Requirement(VersionSetId(0)))
    }
}

impl DependencyProvider for Provider<'_, '_> {
    async fn filter_candidates(
        &self,
        candidates: &[SolvableId],
        vs: VersionSetId,
        inverse: bool,
    ) -> Vec<SolvableId> {
        let t = self.t.borrow();
        let Some(set) = t.sets.get(vs.to_index()) else {
            return Vec::new();
        };
        candidates
            .iter()
            .copied()
            .filter(|s| set.members.binary_search(&s.to_index()).is_ok() != inverse)
            .collect()
    }

    async fn get_candidates(&self, name: NameId) -> Option<Candidates<SolvableId>> {
        let ids = self.pool.by_name.get(name.to_index());
        Some(Candidates {
            candidates: ids.into_iter().flatten().map(|i| sid(*i)).collect(),
            ..Candidates::default()
        })
    }

    async fn sort_candidates(&self, _: &SolverCache<Self>, solvables: &mut [SolvableId]) {
        solvables.sort_by(|a, b| self.pool.order(a.to_index(), b.to_index()));
    }

    async fn get_dependencies(&self, s: SolvableId) -> Dependencies {
        match self.dependencies(s.to_index()) {
            Ok(d) => Dependencies::Known(d),
            Err(why) => Dependencies::Unknown(self.string(why)),
        }
    }

    fn should_cancel_with_value(&self) -> Option<Box<dyn std::any::Any>> {
        match self.deadline {
            Some(d) if Instant::now() >= d => Some(Box::new(())),
            _ => None,
        }
    }
}
