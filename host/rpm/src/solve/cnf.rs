//! A requirement (simple or rich) as clauses the solver takes:
//! `condition → (atom₁ ∨ atom₂ ∨ …)`, where an atom is one set of
//! packages (a simple dependency, or `with`/`without`, which select
//! packages that satisfy both / one and not the other) and the condition,
//! when there is one, is an and/or tree of atoms meaning "some package of
//! the atom is installed".
//!
//! - `(a and b)` → one clause per operand;
//! - `(a or b)` → the clauses of each side distributed over each other
//!   (`(c₁→x) ∨ (c₂→y)` is `(c₁∧c₂) → (x∨y)`);
//! - `(a if b)` → `b → a`; `(a if b else c)` adds `b ∨ c`;
//! - `(a unless b)` → `b ∨ a`; `(a unless b else c)` adds `b → c`.
//!
//! The `unless` forms are exact as boolean formulas, but the solver may
//! satisfy `b ∨ a` by installing `b` (libsolv does the same). A condition
//! must be positive (atoms joined by and/or): a conditional inside a
//! condition is refused, as is an expression that expands to more than
//! [`CLAUSES_MAX`] clauses.
use crate::dep::{CondKind, Rich};

/// Clauses one requirement may expand to.
pub const CLAUSES_MAX: usize = 64;

/// "Some package of these atoms is installed", combined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond<'r> {
    Atom(&'r Rich),
    And(Box<Cond<'r>>, Box<Cond<'r>>),
    Or(Box<Cond<'r>>, Box<Cond<'r>>),
}

/// `cond → any[0] ∨ any[1] ∨ …` (no condition: always).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause<'r> {
    pub cond: Option<Cond<'r>>,
    pub any: Vec<&'r Rich>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CnfError {
    #[error("a conditional (`if`/`unless`) inside a condition is not supported")]
    NestedCondition,
    #[error("`{0}` is only supported between simple dependencies")]
    NotSimple(&'static str),
    #[error("expands to more than {CLAUSES_MAX} clauses")]
    TooMany,
}

/// Whether `r` selects one set of packages (an atom).
pub fn is_atom(r: &Rich) -> bool {
    match r {
        Rich::Dep(_) => true,
        Rich::With(v) => v.iter().all(is_atom),
        Rich::Without(a, b) => is_atom(a) && is_atom(b),
        _ => false,
    }
}

/// The clauses of a requirement.
pub fn clauses<'r>(r: &'r Rich) -> Result<Vec<Clause<'r>>, CnfError> {
    match r {
        Rich::Dep(_) => Ok(vec![Clause {
            cond: None,
            any: vec![r],
        }]),
        Rich::With(_) | Rich::Without(..) => {
            if is_atom(r) {
                Ok(vec![Clause {
                    cond: None,
                    any: vec![r],
                }])
            } else {
                Err(CnfError::NotSimple(if matches!(r, Rich::With(_)) {
                    "with"
                } else {
                    "without"
                }))
            }
        }
        Rich::And(v) => {
            let mut out = Vec::new();
            for x in v {
                out.extend(clauses(x)?);
                if out.len() > CLAUSES_MAX {
                    return Err(CnfError::TooMany);
                }
            }
            Ok(out)
        }
        Rich::Or(v) => {
            let mut acc: Option<Vec<Clause<'r>>> = None;
            for x in v {
                let c = clauses(x)?;
                acc = Some(match acc {
                    None => c,
                    Some(a) => or2(a, c)?,
                });
            }
            Ok(acc.unwrap_or_default())
        }
        Rich::Cond {
            kind,
            then,
            cond,
            otherwise,
        } => {
            let c = condition(cond)?;
            let guarded = |body: &'r Rich| -> Result<Vec<Clause<'r>>, CnfError> {
                Ok(clauses(body)?
                    .into_iter()
                    .map(|cl| Clause {
                        cond: Some(match cl.cond {
                            None => c.clone(),
                            Some(inner) => Cond::And(Box::new(c.clone()), Box::new(inner)),
                        }),
                        any: cl.any,
                    })
                    .collect())
            };
            let mut out = match kind {
                CondKind::If => guarded(then)?,
                CondKind::Unless => or2(clauses(cond)?, clauses(then)?)?,
            };
            if let Some(o) = otherwise {
                out.extend(match kind {
                    CondKind::If => or2(clauses(cond)?, clauses(o)?)?,
                    CondKind::Unless => guarded(o)?,
                });
            }
            if out.len() > CLAUSES_MAX {
                return Err(CnfError::TooMany);
            }
            Ok(out)
        }
    }
}

/// `(∧ a) ∨ (∧ b)` as a conjunction of clauses.
fn or2<'r>(a: Vec<Clause<'r>>, b: Vec<Clause<'r>>) -> Result<Vec<Clause<'r>>, CnfError> {
    if a.len().saturating_mul(b.len()) > CLAUSES_MAX {
        return Err(CnfError::TooMany);
    }
    let mut out = Vec::with_capacity(a.len() * b.len());
    for x in &a {
        for y in &b {
            let cond = match (&x.cond, &y.cond) {
                (None, None) => None,
                (Some(c), None) | (None, Some(c)) => Some(c.clone()),
                (Some(c), Some(d)) => Some(Cond::And(Box::new(c.clone()), Box::new(d.clone()))),
            };
            let mut any = x.any.clone();
            any.extend(y.any.iter().copied());
            out.push(Clause { cond, any });
        }
    }
    Ok(out)
}

/// A positive condition.
fn condition<'r>(r: &'r Rich) -> Result<Cond<'r>, CnfError> {
    let fold = |v: &'r [Rich], and: bool| -> Result<Cond<'r>, CnfError> {
        let mut acc: Option<Cond<'r>> = None;
        for x in v {
            let c = condition(x)?;
            acc = Some(match acc {
                None => c,
                Some(a) if and => Cond::And(Box::new(a), Box::new(c)),
                Some(a) => Cond::Or(Box::new(a), Box::new(c)),
            });
        }
        acc.ok_or(CnfError::NotSimple("and/or"))
    };
    match r {
        _ if is_atom(r) => Ok(Cond::Atom(r)),
        Rich::And(v) => fold(v, true),
        Rich::Or(v) => fold(v, false),
        Rich::Cond { .. } => Err(CnfError::NestedCondition),
        Rich::With(_) => Err(CnfError::NotSimple("with")),
        Rich::Without(..) => Err(CnfError::NotSimple("without")),
        Rich::Dep(_) => Ok(Cond::Atom(r)),
    }
}

impl std::fmt::Display for Cond<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cond::Atom(r) => write!(f, "{r}"),
            Cond::And(a, b) => write!(f, "({a} and {b})"),
            Cond::Or(a, b) => write!(f, "({a} or {b})"),
        }
    }
}

/// As rpm would write it: `libfoo >= 2`, `(a or b)`, `(a if b)`.
impl std::fmt::Display for Clause<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bare = self.cond.is_none() && self.any.len() == 1;
        if !bare {
            f.write_str("(")?;
        }
        for (i, a) in self.any.iter().enumerate() {
            if i > 0 {
                f.write_str(" or ")?;
            }
            write!(f, "{a}")?;
        }
        if let Some(c) = &self.cond {
            write!(f, " if {c}")?;
        }
        if !bare {
            f.write_str(")")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(s: &str) -> Vec<String> {
        let r = Rich::parse(s).unwrap();
        clauses(&r).unwrap().iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn expands_each_form() {
        assert_eq!(show("a >= 1"), ["a >= 1"]);
        assert_eq!(show("(a and b)"), ["a", "b"]);
        assert_eq!(show("(a or b or c)"), ["(a or b or c)"]);
        assert_eq!(show("((a and b) or c)"), ["(a or c)", "(b or c)"]);
        assert_eq!(show("(a if b)"), ["(a if b)"]);
        assert_eq!(show("(a if (b or c))"), ["(a if (b or c))"]);
        assert_eq!(show("(a if b else c)"), ["(a if b)", "(b or c)"]);
        assert_eq!(show("(a unless b)"), ["(b or a)"]);
        assert_eq!(show("(a unless b else c)"), ["(b or a)", "(c if b)"]);
        assert_eq!(show("(x or (a if b))"), ["(x or a if b)"]);
        assert_eq!(show("(a with b)"), ["(a with b)"]);
        assert_eq!(show("((a if b) and c)"), ["(a if b)", "c"]);
    }

    #[test]
    fn refuses_what_it_cannot_express() {
        let r = Rich::parse("(a if (b if c))").unwrap();
        assert_eq!(clauses(&r), Err(CnfError::NestedCondition));
        let r = Rich::parse("((a or b) with c)").unwrap();
        assert_eq!(clauses(&r), Err(CnfError::NotSimple("with")));
        // 2^7 clauses.
        let big = format!(
            "({})",
            (0..7)
                .map(|i| format!("(a{i} and b{i})"))
                .collect::<Vec<_>>()
                .join(" or ")
        );
        let r = Rich::parse(&big).unwrap();
        assert_eq!(clauses(&r), Err(CnfError::TooMany));
    }
}
