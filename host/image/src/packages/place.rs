//! The packages' files into the image's [`FileSet`]: owners by name
//! through the image's user database (a file owned by a user or group the
//! image does not define is an error naming both, so the config can add
//! the `[[user]]` a skipped `%pre` would have created), hard links as
//! copies of their file (squashfs stores identical content once), block
//! devices refused (character devices only where the package was allowed
//! devices). A package file where imagegen generates one (`/etc/passwd`,
//! `/init`) is a conflict naming both.
use crate::rootfs::{Conflict, Content, FileSet, Kind as NodeKind, Node, Origin};
use crate::users::UserDb;
use azl_imagepath::ImagePath;
use azl_rpm::package::entries::{Item, Kind};
use azl_rpm::package::tree::Tree;
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    #[error("{path} of package {package} is owned by {what} `{name}`, which the image does not define: add a [[user]] (a skipped %pre script may have created it)")]
    UnknownOwner {
        path: String,
        package: String,
        what: &'static str,
        name: String,
    },
    #[error("{path} of package {package}: {source}")]
    Conflict {
        path: String,
        package: String,
        source: Conflict,
    },
    #[error("{path} of package {package}: {why}")]
    Path {
        path: String,
        package: String,
        why: String,
    },
}

/// Add every item of `tree` to `set`.
pub fn place(set: &mut FileSet, tree: &Tree, users: &UserDb) -> Result<(), PlaceError> {
    let files: BTreeMap<&str, &[u8]> = tree
        .iter()
        .filter_map(|(i, _)| match &i.kind {
            Kind::File(b) => Some((i.path.as_str(), b.as_slice())),
            _ => None,
        })
        .collect();
    for (item, package) in tree.iter() {
        if item.path == "/" {
            continue;
        }
        let node = node(item, package, users, &files)?;
        let path = ImagePath::parse(&item.path).map_err(|e| PlaceError::Path {
            path: item.path.clone(),
            package: package.to_string(),
            why: e.to_string(),
        })?;
        set.insert(path, node)
            .map_err(|source| PlaceError::Conflict {
                path: item.path.clone(),
                package: package.to_string(),
                source,
            })?;
    }
    Ok(())
}

fn node(
    item: &Item,
    package: &str,
    users: &UserDb,
    files: &BTreeMap<&str, &[u8]>,
) -> Result<Node, PlaceError> {
    let unknown = |what, name: &str| PlaceError::UnknownOwner {
        path: item.path.clone(),
        package: package.to_string(),
        what,
        name: name.to_string(),
    };
    let uid = users
        .user(&item.user)
        .ok_or_else(|| unknown("user", &item.user))?
        .uid;
    let gid = users
        .group(&item.group)
        .ok_or_else(|| unknown("group", &item.group))?
        .gid;
    let origin = Origin::Package(package.to_string());
    let kind = match &item.kind {
        Kind::Dir => NodeKind::Dir,
        Kind::File(b) => NodeKind::File(Content::Bytes(b.clone())),
        Kind::Symlink(t) => NodeKind::Symlink(t.clone()),
        Kind::HardLink(t) => {
            let bytes = files.get(t.as_str()).ok_or_else(|| PlaceError::Path {
                path: item.path.clone(),
                package: package.to_string(),
                why: format!("hard link to {t}, which is not a file of the package"),
            })?;
            NodeKind::File(Content::Bytes(bytes.to_vec()))
        }
        Kind::Device {
            block: false,
            major,
            minor,
        } => NodeKind::CharDevice {
            major: *major,
            minor: *minor,
        },
        Kind::Device { block: true, .. } => {
            return Err(PlaceError::Path {
                path: item.path.clone(),
                package: package.to_string(),
                why: "block devices are not supported in images".into(),
            })
        }
    };
    Ok(Node {
        kind,
        mode: item.mode,
        uid,
        gid,
        origin,
    })
}
