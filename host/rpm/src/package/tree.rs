//! The files of every package of an image, merged: a path belongs to one
//! package, except directories (any number of packages may own one) and
//! regular files that are byte-identical with the same mode and owner
//! (rpm allows such shared files). Nothing may be placed *through* a
//! symlink: a path whose parent is a symlink of any package is refused, so
//! no package can write into another location by linking a directory.
use super::entries::{Item, Kind};
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct Tree {
    entries: BTreeMap<String, (Item, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    #[error("`{path}` conflicts between {first} and {second}")]
    Conflict {
        path: String,
        first: String,
        second: String,
    },
    #[error("`{path}` of {package} lies under the symlink `{link}` of {owner}")]
    ThroughSymlink {
        path: String,
        package: String,
        link: String,
        owner: String,
    },
    #[error(
        "`{path}` of {package} is a hard link to `{target}`, which is not a file of that package"
    )]
    HardLink {
        path: String,
        package: String,
        target: String,
    },
}

impl Tree {
    pub fn new() -> Tree {
        Tree::default()
    }

    /// Add the items of `package` (all or none).
    pub fn add(&mut self, package: &str, items: Vec<Item>) -> Result<(), TreeError> {
        let mine: BTreeMap<&str, &Item> = items.iter().map(|i| (i.path.as_str(), i)).collect();
        for item in &items {
            self.check(package, item, &mine)?;
        }
        for item in items {
            self.entries
                .entry(item.path.clone())
                .or_insert((item, package.to_string()));
        }
        Ok(())
    }

    fn check(
        &self,
        package: &str,
        item: &Item,
        mine: &BTreeMap<&str, &Item>,
    ) -> Result<(), TreeError> {
        let mut parent = item.path.as_str();
        while let Some(i) = parent.rfind('/') {
            parent = &parent[..i];
            if parent.is_empty() {
                break;
            }
            let link = match (self.entries.get(parent), mine.get(parent)) {
                (Some((i, owner)), _) if matches!(i.kind, Kind::Symlink(_)) => Some(owner.as_str()),
                (_, Some(i)) if matches!(i.kind, Kind::Symlink(_)) => Some(package),
                _ => None,
            };
            if let Some(owner) = link {
                return Err(TreeError::ThroughSymlink {
                    path: item.path.clone(),
                    package: package.to_string(),
                    link: parent.to_string(),
                    owner: owner.to_string(),
                });
            }
        }
        if let Kind::HardLink(target) = &item.kind {
            if !mine
                .get(target.as_str())
                .is_some_and(|t| matches!(t.kind, Kind::File(_)))
            {
                return Err(TreeError::HardLink {
                    path: item.path.clone(),
                    package: package.to_string(),
                    target: target.clone(),
                });
            }
        }
        match self.entries.get(&item.path) {
            None => Ok(()),
            Some((old, _)) if old.kind == Kind::Dir && item.kind == Kind::Dir => Ok(()),
            Some((old, _)) if old == item && matches!(item.kind, Kind::File(_)) => Ok(()),
            Some((_, owner)) => Err(TreeError::Conflict {
                path: item.path.clone(),
                first: owner.clone(),
                second: package.to_string(),
            }),
        }
    }

    /// Every item with the package that placed it, in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&Item, &str)> {
        self.entries.values().map(|(i, p)| (i, p.as_str()))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn item(path: &str, kind: Kind) -> Item {
        Item {
            path: path.to_string(),
            kind,
            mode: 0o644,
            user: "root".into(),
            group: "root".into(),
            config: false,
        }
    }

    #[test]
    fn shared_dirs_and_identical_files_merge_conflicts_do_not() {
        let mut t = Tree::new();
        t.add(
            "a-1",
            vec![
                item("/usr", Kind::Dir),
                item("/etc/x", Kind::File(b"1".to_vec())),
            ],
        )
        .unwrap();
        t.add(
            "b-1",
            vec![
                item("/usr", Kind::Dir),
                item("/etc/x", Kind::File(b"1".to_vec())),
            ],
        )
        .unwrap();
        let e = t
            .add("c-1", vec![item("/etc/x", Kind::File(b"2".to_vec()))])
            .unwrap_err();
        assert_eq!(e.to_string(), "`/etc/x` conflicts between a-1 and c-1");
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn nothing_goes_through_a_symlink() {
        let mut t = Tree::new();
        t.add(
            "a-1",
            vec![item("/usr/lib/x", Kind::Symlink("/etc".into()))],
        )
        .unwrap();
        let e = t
            .add("b-1", vec![item("/usr/lib/x/passwd", Kind::File(vec![]))])
            .unwrap_err();
        assert!(matches!(e, TreeError::ThroughSymlink { .. }), "{e}");
        // Within one package too.
        let e = Tree::new()
            .add(
                "c-1",
                vec![
                    item("/opt/l", Kind::Symlink("/etc".into())),
                    item("/opt/l/shadow", Kind::File(vec![])),
                ],
            )
            .unwrap_err();
        assert!(matches!(e, TreeError::ThroughSymlink { .. }), "{e}");
    }
}
