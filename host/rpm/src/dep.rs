//! Dependencies as rpm writes them and rpm's rule for matching them.
//!
//! A simple dependency is `name [op evr]` (op one of `<`, `<=`, `=`, `>=`,
//! `>`); repository metadata gives it as `name`, `flags` (LT, LE, EQ, GE,
//! GT) and epoch/ver/rel. A rich dependency (rpm ≥ 4.13) is a
//! parenthesised expression:
//!
//! ```text
//! rich  := '(' term (op term)* ')'     op: and | or | with | without
//!        | '(' term 'if' term ['else' term] ')'
//!        | '(' term 'unless' term ['else' term] ')'
//! term  := rich | name [cmp evr]
//! ```
//!
//! Mixing different `and`/`or`/`with` operators in one level is an error
//! in rpm and here. [`Rich::parse`] is hostile-input safe: bounded length
//! and nesting ([`crate::limits`]).
use crate::evr::Evr;
use crate::limits::{DEP_LEN_MAX, RICH_DEPTH_MAX};
use std::cmp::Ordering;
use std::fmt;

/// A version comparison (rpm's sense flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cmp {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

impl Cmp {
    /// From primary.xml's `flags` attribute.
    pub fn from_flags(f: &str) -> Option<Cmp> {
        Some(match f {
            "LT" => Cmp::Lt,
            "LE" => Cmp::Le,
            "EQ" => Cmp::Eq,
            "GE" => Cmp::Ge,
            "GT" => Cmp::Gt,
            _ => return None,
        })
    }

    /// From an operator as written: `<`, `<=`, `=` (or `==`), `>=`, `>`.
    pub fn from_op(op: &str) -> Option<Cmp> {
        Some(match op {
            "<" => Cmp::Lt,
            "<=" => Cmp::Le,
            "=" | "==" => Cmp::Eq,
            ">=" => Cmp::Ge,
            ">" => Cmp::Gt,
            _ => return None,
        })
    }

    fn less(self) -> bool {
        matches!(self, Cmp::Lt | Cmp::Le)
    }
    fn greater(self) -> bool {
        matches!(self, Cmp::Gt | Cmp::Ge)
    }
    fn equal(self) -> bool {
        matches!(self, Cmp::Le | Cmp::Eq | Cmp::Ge)
    }

    pub fn op(self) -> &'static str {
        match self {
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Eq => "=",
            Cmp::Ge => ">=",
            Cmp::Gt => ">",
        }
    }
}

/// `name [op evr]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Dep {
    pub name: String,
    pub range: Option<(Cmp, Evr)>,
}

impl Dep {
    pub fn any(name: &str) -> Dep {
        Dep {
            name: name.to_string(),
            range: None,
        }
    }

    pub fn new(name: &str, cmp: Cmp, evr: Evr) -> Dep {
        Dep {
            name: name.to_string(),
            range: Some((cmp, evr)),
        }
    }

    /// Whether the provide `self` satisfies the requirement `req` (same
    /// name, and the two ranges overlap — rpm's rpmdsCompare: a side
    /// without a version matches every version).
    pub fn satisfies(&self, req: &Dep) -> bool {
        self.name == req.name && ranges_overlap(&self.range, &req.range)
    }
}

/// rpm's overlap rule for two version ranges.
pub fn ranges_overlap(a: &Option<(Cmp, Evr)>, b: &Option<(Cmp, Evr)>) -> bool {
    let (Some((ca, ea)), Some((cb, eb))) = (a, b) else {
        return true;
    };
    match ea.cmp_for_dep(eb) {
        Ordering::Less => ca.greater() || cb.less(),
        Ordering::Greater => ca.less() || cb.greater(),
        Ordering::Equal => {
            (ca.equal() && cb.equal()) || (ca.less() && cb.less()) || (ca.greater() && cb.greater())
        }
    }
}

impl fmt::Display for Dep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some((c, e)) = &self.range {
            write!(f, " {} {e}", c.op())?;
        }
        Ok(())
    }
}

/// A requirement: a simple dependency or a rich expression.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Rich {
    Dep(Dep),
    /// All of them.
    And(Vec<Rich>),
    /// At least one.
    Or(Vec<Rich>),
    /// `(a if b [else c])`: a when b is installed, else c (or nothing);
    /// `(a unless b [else c])`: a when b is not installed, else c.
    Cond {
        kind: CondKind,
        then: Box<Rich>,
        cond: Box<Rich>,
        otherwise: Option<Box<Rich>>,
    },
    /// `(a with b)`: one package that satisfies both.
    With(Vec<Rich>),
    /// `(a without b)`: one package that satisfies a and not b.
    Without(Box<Rich>, Box<Rich>),
}

/// Which way a conditional dependency's condition counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CondKind {
    If,
    Unless,
}

impl CondKind {
    pub fn word(self) -> &'static str {
        match self {
            CondKind::If => "if",
            CondKind::Unless => "unless",
        }
    }
}

/// Why an expression was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DepError {
    #[error("dependency is {len} bytes, longer than {DEP_LEN_MAX}")]
    TooLong { len: usize },
    #[error("rich dependency nests deeper than {RICH_DEPTH_MAX}")]
    TooDeep,
    #[error("{0}")]
    Syntax(String),
}

fn syntax(s: impl Into<String>) -> DepError {
    DepError::Syntax(s.into())
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok<'a> {
    Open,
    Close,
    Word(&'a str),
}

fn tokens(s: &str) -> Vec<Tok<'_>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices() {
        let sep = c == '(' || c == ')' || c.is_whitespace();
        if sep {
            if let Some(st) = start.take() {
                out.push(Tok::Word(s.get(st..i).unwrap_or_default()));
            }
            match c {
                '(' => out.push(Tok::Open),
                ')' => out.push(Tok::Close),
                _ => {}
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(st) = start {
        out.push(Tok::Word(s.get(st..).unwrap_or_default()));
    }
    out
}

struct Parser<'a> {
    toks: Vec<Tok<'a>>,
    at: usize,
}

const OPS: [&str; 7] = ["and", "or", "if", "unless", "with", "without", "else"];

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&Tok<'a>> {
        self.toks.get(self.at)
    }
    fn next(&mut self) -> Option<Tok<'a>> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn term(&mut self, depth: usize) -> Result<Rich, DepError> {
        match self.next() {
            Some(Tok::Open) => self.group(depth + 1),
            Some(Tok::Word(w)) if !OPS.contains(&w) => {
                let name = w;
                if let Some(Tok::Word(op)) = self.peek().cloned() {
                    if let Some(cmp) = Cmp::from_op(op) {
                        self.at += 1;
                        let Some(Tok::Word(v)) = self.next() else {
                            return Err(syntax(format!("{name} {op}: version missing")));
                        };
                        let evr = Evr::parse(v)
                            .ok_or_else(|| syntax(format!("{name} {op} {v}: bad version")))?;
                        return Ok(Rich::Dep(Dep::new(name, cmp, evr)));
                    }
                }
                Ok(Rich::Dep(Dep::any(name)))
            }
            Some(Tok::Word(w)) => Err(syntax(format!("`{w}` where a dependency was expected"))),
            Some(Tok::Close) => Err(syntax("`)` where a dependency was expected")),
            None => Err(syntax("expression ends where a dependency was expected")),
        }
    }

    /// After `(`: terms joined by one operator, up to `)`.
    fn group(&mut self, depth: usize) -> Result<Rich, DepError> {
        if depth > RICH_DEPTH_MAX {
            return Err(DepError::TooDeep);
        }
        let first = self.term(depth)?;
        let op = match self.next() {
            Some(Tok::Close) => return Ok(first),
            Some(Tok::Word(w)) if OPS.contains(&w) && w != "else" => w,
            Some(Tok::Word(w)) => {
                return Err(syntax(format!("`{w}` where an operator was expected")))
            }
            Some(Tok::Open) => return Err(syntax("`(` where an operator was expected")),
            None => return Err(syntax("`(` without `)`")),
        };
        match op {
            "if" | "unless" => {
                let cond = self.term(depth)?;
                let otherwise = match self.next() {
                    Some(Tok::Close) => None,
                    Some(Tok::Word("else")) => {
                        let e = self.term(depth)?;
                        match self.next() {
                            Some(Tok::Close) => Some(Box::new(e)),
                            _ => return Err(syntax(format!("`{op} … else …` must end with `)`"))),
                        }
                    }
                    _ => {
                        return Err(syntax(format!(
                            "`{op}` takes one condition, then `else` or `)`"
                        )))
                    }
                };
                let kind = if op == "if" {
                    CondKind::If
                } else {
                    CondKind::Unless
                };
                Ok(Rich::Cond {
                    kind,
                    then: Box::new(first),
                    cond: Box::new(cond),
                    otherwise,
                })
            }
            "without" => {
                let b = self.term(depth)?;
                match self.next() {
                    Some(Tok::Close) => Ok(Rich::Without(Box::new(first), Box::new(b))),
                    _ => Err(syntax("`without` takes two operands")),
                }
            }
            _ => {
                let mut items = vec![first, self.term(depth)?];
                loop {
                    match self.next() {
                        Some(Tok::Close) => break,
                        Some(Tok::Word(w)) if w == op => items.push(self.term(depth)?),
                        Some(Tok::Word(w)) if OPS.contains(&w) => {
                            return Err(syntax(format!(
                                "`{op}` and `{w}` mixed without parentheses"
                            )))
                        }
                        _ => return Err(syntax(format!("`{op}` list must end with `)`"))),
                    }
                }
                Ok(match op {
                    "and" => Rich::And(items),
                    "or" => Rich::Or(items),
                    _ => Rich::With(items),
                })
            }
        }
    }
}

impl Rich {
    /// A requirement string: rich when it starts with `(`, else simple.
    pub fn parse(s: &str) -> Result<Rich, DepError> {
        if s.len() > DEP_LEN_MAX {
            return Err(DepError::TooLong { len: s.len() });
        }
        let mut p = Parser {
            toks: tokens(s),
            at: 0,
        };
        let r = p.term(0)?;
        if p.at < p.toks.len() {
            return Err(syntax(format!("`{s}`: text after the dependency")));
        }
        Ok(r)
    }

    /// Every simple dependency named anywhere in the expression.
    pub fn deps(&self) -> Vec<&Dep> {
        let mut out = Vec::new();
        self.walk(&mut out);
        out
    }

    fn walk<'a>(&'a self, out: &mut Vec<&'a Dep>) {
        match self {
            Rich::Dep(d) => out.push(d),
            Rich::And(v) | Rich::Or(v) | Rich::With(v) => v.iter().for_each(|r| r.walk(out)),
            Rich::Cond {
                then,
                cond,
                otherwise,
                ..
            } => {
                then.walk(out);
                cond.walk(out);
                if let Some(o) = otherwise {
                    o.walk(out);
                }
            }
            Rich::Without(a, b) => {
                a.walk(out);
                b.walk(out);
            }
        }
    }
}

impl fmt::Display for Rich {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, v: &[Rich], op: &str| -> fmt::Result {
            f.write_str("(")?;
            for (i, r) in v.iter().enumerate() {
                if i > 0 {
                    write!(f, " {op} ")?;
                }
                write!(f, "{r}")?;
            }
            f.write_str(")")
        };
        match self {
            Rich::Dep(d) => write!(f, "{d}"),
            Rich::And(v) => list(f, v, "and"),
            Rich::Or(v) => list(f, v, "or"),
            Rich::With(v) => list(f, v, "with"),
            Rich::Cond {
                kind,
                then,
                cond,
                otherwise,
            } => {
                write!(f, "({then} {} {cond}", kind.word())?;
                if let Some(o) = otherwise {
                    write!(f, " else {o}")?;
                }
                f.write_str(")")
            }
            Rich::Without(a, b) => write!(f, "({a} without {b})"),
        }
    }
}

#[cfg(test)]
mod tests {

    /// Regression (fuzz target rpm_primary, 2026-12-02): `0::x` was read as
    /// epoch 0 and version `:x`, printed as `:x`, which does not read back.
    #[test]
    fn a_colon_inside_a_version_is_refused() {
        let crash = "\0\r<\r0::\0`";
        assert!(Rich::parse(crash).is_err());
        for bad in ["a < 0::1", "a = 1:2:3", "a >= 1-2:3"] {
            assert!(Rich::parse(bad).is_err(), "{bad}");
        }
        let ok = Rich::parse("a >= 1:2.0-3").unwrap();
        assert_eq!(Rich::parse(&ok.to_string()).unwrap(), ok);
    }

    use super::*;

    fn d(s: &str) -> Dep {
        match Rich::parse(s).unwrap() {
            Rich::Dep(d) => d,
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn overlap_follows_rpm() {
        // provide = 2.0-1 vs requirements
        let p = d("libfoo = 2.0-1");
        assert!(p.satisfies(&d("libfoo >= 2.0")));
        assert!(p.satisfies(&d("libfoo")));
        assert!(
            !p.satisfies(&d("libfoo > 2.0")),
            "release ignored: 2.0 = 2.0"
        );
        assert!(!p.satisfies(&d("libfoo < 2.0")));
        assert!(p.satisfies(&d("libfoo <= 2.0-1")));
        assert!(!p.satisfies(&d("libfoo > 2.0-1")));
        assert!(!p.satisfies(&d("libfoo > 1:0")));
        assert!(!p.satisfies(&d("libbar")));
        // An unversioned provide satisfies every version.
        assert!(Dep::any("libfoo").satisfies(&d("libfoo >= 9")));
        // Two open ranges in the same direction always overlap.
        assert!(d("x >= 1").satisfies(&d("x >= 5")));
        assert!(!d("x < 1").satisfies(&d("x > 5")));
    }

    #[test]
    fn parses_rich_expressions_and_prints_them_back() {
        for s in [
            "(bar or baz)",
            "(a >= 1.0 and (b or c < 2))",
            "(pkg-doc if pkg)",
            "(x unless y else z)",
            "(a with b)",
            "(a without b)",
            "(kernel-core = 1:6.6-1.azl3 if kernel else dummy)",
        ] {
            let r = Rich::parse(s).unwrap();
            assert_eq!(r.to_string(), s);
        }
        assert_eq!(Rich::parse("(a or b)").unwrap().deps().len(), 2);
    }

    #[test]
    fn refuses_bad_expressions_with_a_reason() {
        for (s, why) in [
            ("(a or b and c)", "mixed"),
            ("(a or", "expected"),
            ("(a >= )", "version missing"),
            ("(a if b c)", "one condition"),
            ("a b", "text after"),
            ("(or b)", "where a dependency"),
            ("", "ends"),
        ] {
            let e = Rich::parse(s).unwrap_err().to_string();
            assert!(e.contains(why), "{s}: {e}");
        }
        let deep = "(".repeat(40) + "a" + &")".repeat(40);
        assert_eq!(Rich::parse(&deep), Err(DepError::TooDeep));
        assert!(matches!(
            Rich::parse(&"a".repeat(5000)),
            Err(DepError::TooLong { .. })
        ));
    }
}
