//! Why a request cannot be installed, from resolvo's conflict graph, as
//! typed problems that name the chain of packages:
//!
//! ```text
//! cannot install app: app-1.0-1.noarch requires libfoo >= 2, and nothing
//! provides it (libfoo-1.0-1.noarch provides libfoo = 1.0)
//! ```
//!
//! The graph's edges are "requires, and this candidate would do" from the
//! request root down to packages, "has no candidate" into one sink, and
//! conflicts (a constraint, two versions of one name, an unusable
//! package). Each problem is one such dead end, with the shortest chain of
//! requirements from the request to it.
use super::pool::Skip;
use super::provider::{Provider, SetKind};
use petgraph::graph::NodeIndex;
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use resolvo::conflict::{ConflictCause, ConflictEdge, ConflictGraph, ConflictNode};
use resolvo::DenseIndex;
use std::collections::{HashMap, VecDeque};
use std::fmt;

/// Problems reported at most (the rest are counted).
pub const PROBLEMS_MAX: usize = 10;

/// One step: `package` requires `requires`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub package: String,
    pub requires: String,
}

/// How a package is reached from the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// The install request at the start.
    pub request: String,
    pub links: Vec<Link>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The last link's requirement has no provider among the candidates.
    Missing {
        chain: Chain,
        /// Other versions of it, and providers that are not candidates.
        hints: Vec<String>,
    },
    /// `package` conflicts with or obsoletes `other`.
    Conflict {
        package: String,
        chain: Chain,
        kind: ConflictKind,
        /// The `Conflicts:`/`Obsoletes:` entry.
        dep: String,
        other: String,
        other_chain: Option<Chain>,
    },
    /// Two versions of one name would be needed.
    OneVersion {
        first: String,
        second: String,
        chain: Option<Chain>,
    },
    /// A package the chain needs cannot be used (its dependencies cannot
    /// be expressed).
    Unusable {
        package: String,
        chain: Option<Chain>,
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictKind {
    Conflicts,
    Obsoletes,
}

/// The typed explanation of an unsolvable request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsolvable {
    pub problems: Vec<Problem>,
    /// Problems found beyond [`PROBLEMS_MAX`].
    pub more: usize,
}

impl fmt::Display for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, l) in self.links.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{} requires {}", l.package, l.requires)?;
        }
        Ok(())
    }
}

fn via(f: &mut fmt::Formatter<'_>, c: &Option<Chain>) -> fmt::Result {
    match c {
        Some(c) if !c.links.is_empty() => write!(f, " (needed by {}: {c})", c.request),
        Some(c) => write!(f, " (requested as {})", c.request),
        None => Ok(()),
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing { chain, hints } => {
                write!(f, "cannot install {}: ", chain.request)?;
                if chain.links.is_empty() {
                    write!(f, "nothing provides {}", chain.request)?;
                } else {
                    write!(f, "{chain}, and nothing provides it")?;
                }
                if !hints.is_empty() {
                    write!(f, " ({})", hints.join("; "))?;
                }
                Ok(())
            }
            Problem::Conflict {
                package,
                chain,
                kind,
                dep,
                other,
                other_chain,
            } => {
                write!(f, "cannot install {}: ", chain.request)?;
                if !chain.links.is_empty() {
                    write!(f, "{chain}, and ")?;
                }
                let verb = match kind {
                    ConflictKind::Conflicts => "conflicts with",
                    ConflictKind::Obsoletes => "obsoletes",
                };
                write!(f, "{package} {verb} {dep}, which {other} is")?;
                via(f, other_chain)
            }
            Problem::OneVersion {
                first,
                second,
                chain,
            } => {
                write!(
                    f,
                    "{first} and {second} are both needed, but only one version of a package can be installed"
                )?;
                via(f, chain)
            }
            Problem::Unusable {
                package,
                chain,
                reason,
            } => {
                write!(f, "{package} cannot be used: {reason}")?;
                via(f, chain)
            }
        }
    }
}

impl fmt::Display for Unsolvable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        if self.more > 0 {
            write!(f, "; and {} more problems", self.more)?;
        }
        Ok(())
    }
}

impl std::error::Error for Unsolvable {}

type Back = HashMap<NodeIndex, (NodeIndex, String)>;

/// The shortest requirement chain from the root to `n`.
fn chain_to(g: &ConflictGraph, p: &Provider<'_, '_>, back: &Back, n: NodeIndex) -> Option<Chain> {
    if n == g.root_node {
        return None;
    }
    let mut steps: Vec<(NodeIndex, String)> = Vec::new();
    let mut at = n;
    while at != g.root_node {
        let (from, label) = back.get(&at)?;
        steps.push((*from, label.clone()));
        at = *from;
        if steps.len() > back.len() {
            return None;
        }
    }
    steps.reverse();
    let mut it = steps.into_iter();
    let (_, request) = it.next()?;
    let links = it
        .map(|(from, requires)| Link {
            package: node_name(g, p, from),
            requires,
        })
        .collect();
    Some(Chain { request, links })
}

fn node_name(g: &ConflictGraph, p: &Provider<'_, '_>, n: NodeIndex) -> String {
    match g.graph.node_weight(n) {
        Some(ConflictNode::Solvable(s)) => p.pool.nevra(s.to_index()),
        _ => String::new(),
    }
}

fn hints(p: &Provider<'_, '_>, label: &str) -> Vec<String> {
    let mut out = Vec::new();
    for d in p.hints(label) {
        out.extend(p.pool.near_providers(&d));
        for (nevra, why) in p.pool.skipped_providers(&d) {
            out.push(match why {
                Skip::Arch => format!("{nevra} provides it but is not for {}", p.pool.arch),
                Skip::Excluded(pat) => format!("{nevra} provides it but is excluded by `{pat}`"),
            });
        }
    }
    out.dedup();
    out
}

/// The problems of a conflict graph.
pub fn explain(g: &ConflictGraph, p: &Provider<'_, '_>) -> Unsolvable {
    // Breadth first along requires edges: the shortest chains.
    let mut back: Back = HashMap::new();
    let mut queue = VecDeque::from([g.root_node]);
    let mut missing: Vec<(NodeIndex, String)> = Vec::new();
    while let Some(n) = queue.pop_front() {
        let mut edges: Vec<_> = g.graph.edges_directed(n, Direction::Outgoing).collect();
        edges.sort_by_key(|e| e.target());
        for e in edges {
            let ConflictEdge::Requires(r) = *e.weight() else {
                continue;
            };
            let label = p.label(r);
            if Some(e.target()) == g.unresolved_node {
                missing.push((n, label));
            } else if e.target() != g.root_node && !back.contains_key(&e.target()) {
                back.insert(e.target(), (n, label));
                queue.push_back(e.target());
            }
        }
    }
    let mut problems: Vec<Problem> = Vec::new();
    for (from, label) in missing {
        let chain = match chain_to(g, p, &back, from) {
            Some(mut c) => {
                c.links.push(Link {
                    package: node_name(g, p, from),
                    requires: label.clone(),
                });
                c
            }
            None => Chain {
                request: label.clone(),
                links: Vec::new(),
            },
        };
        problems.push(Problem::Missing {
            hints: hints(p, &label),
            chain,
        });
    }
    let unknown = || Chain {
        request: "the request".into(),
        links: Vec::new(),
    };
    for e in g.graph.edge_references() {
        let ConflictEdge::Conflict(cause) = *e.weight() else {
            continue;
        };
        let (a, b) = (e.source(), e.target());
        match cause {
            ConflictCause::Constrains(vs) => {
                let Some(set) = p.set(vs) else { continue };
                let kind = match set.kind {
                    SetKind::Obsoletes => ConflictKind::Obsoletes,
                    _ => ConflictKind::Conflicts,
                };
                problems.push(Problem::Conflict {
                    package: node_name(g, p, a),
                    chain: chain_to(g, p, &back, a).unwrap_or_else(unknown),
                    kind,
                    dep: set.label,
                    other: node_name(g, p, b),
                    other_chain: chain_to(g, p, &back, b),
                });
            }
            ConflictCause::ForbidMultipleInstances => problems.push(Problem::OneVersion {
                first: node_name(g, p, a),
                second: node_name(g, p, b),
                chain: chain_to(g, p, &back, b).or_else(|| chain_to(g, p, &back, a)),
            }),
            ConflictCause::Excluded => {
                let reason = match g.graph.node_weight(b) {
                    Some(ConflictNode::Excluded(s)) => p.string_of(*s),
                    _ => String::new(),
                };
                problems.push(Problem::Unusable {
                    package: node_name(g, p, a),
                    chain: chain_to(g, p, &back, a),
                    reason,
                });
            }
            ConflictCause::Locked(_) => {}
        }
    }
    let mut seen = std::collections::HashSet::new();
    problems.retain(|x| seen.insert(x.to_string()));
    let more = problems.len().saturating_sub(PROBLEMS_MAX);
    problems.truncate(PROBLEMS_MAX);
    Unsolvable { problems, more }
}
