//! Accounts: `root` plus the image's `[[user]]` entries, rendered as
//! `/etc/passwd` and `/etc/group`, and the lookup services use to turn
//! `user = "app"` / `group = "app"` into numeric ids.
//!
//! Each user gets a group of the same name with its gid, unless another
//! group already has that gid. Users have no password (`x`, no shadow file):
//! nothing on the device logs in.
use crate::config::Config;
use crate::diag::Diagnostics;
use azl_formats::limits::MAX_ID;
use std::collections::{HashMap, HashSet};
use toml::Spanned;

/// Home and shell of users that do not say.
pub const DEFAULT_HOME: &str = "/";
pub const DEFAULT_SHELL: &str = "/bin/false";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub gid: u32,
}

#[derive(Debug, Clone)]
pub struct UserDb {
    pub users: Vec<User>,
    pub groups: Vec<Group>,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error(
        "user name {0:?} is invalid: use 1-32 of a-z, 0-9, `_`, `-`, starting with a letter or `_`"
    )]
    InvalidName(String),
    #[error("user \"root\" is built in and cannot be redefined")]
    Root,
    #[error("user {name:?} is defined twice (first at line {first_line})")]
    Duplicate { name: String, first_line: usize },
    #[error("user {name:?}: uid {uid} is already used by {other:?}")]
    DuplicateUid {
        name: String,
        uid: u32,
        other: String,
    },
    #[error("user {name:?}: {key} {value} is out of range (0..={MAX_ID}; {} means \"unchanged\" to the kernel)", u32::MAX)]
    IdRange {
        name: String,
        key: &'static str,
        value: u32,
    },
    #[error(
        "user {name:?}: {key} {value:?} must be an absolute path without `:` or control characters"
    )]
    BadPath {
        name: String,
        key: &'static str,
        value: String,
    },
}

fn valid_user_name(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=32).contains(&b.len())
        && b.first()
            .is_some_and(|c| c.is_ascii_lowercase() || *c == b'_')
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-')
}

fn valid_passwd_path(s: &str) -> bool {
    s.starts_with('/') && !s.contains(':') && !s.chars().any(char::is_control)
}

impl UserDb {
    /// Only root.
    pub fn root_only() -> Self {
        Self {
            users: vec![User {
                name: "root".into(),
                uid: 0,
                gid: 0,
                home: "/root".into(),
                shell: "/bin/sh".into(),
            }],
            groups: vec![Group {
                name: "root".into(),
                gid: 0,
            }],
        }
    }

    /// Check the `[[user]]` entries and build the database.
    pub fn compile<K: From<UserError>>(cfg: &Config, diags: &mut Diagnostics<K>) -> Self {
        let mut db = Self::root_only();
        // Lookups by name, uid and gid while the entries are checked (linear
        // in the number of users).
        let mut first_lines: HashMap<String, usize> = HashMap::new();
        let mut uid_owner: HashMap<u32, String> =
            db.users.iter().map(|u| (u.uid, u.name.clone())).collect();
        let mut gids: HashSet<u32> = db.groups.iter().map(|g| g.gid).collect();
        for entry in &cfg.doc.user {
            let u = entry.get_ref();
            let name = u.name.get_ref();
            let loc = cfg.source.loc(u.name.span());
            if name == "root" {
                diags.push(loc, UserError::Root);
                continue;
            }
            if !valid_user_name(name) {
                diags.push(loc, UserError::InvalidName(name.clone()));
                continue;
            }
            if let Some(&line) = first_lines.get(name) {
                diags.push(
                    loc,
                    UserError::Duplicate {
                        name: name.clone(),
                        first_line: line,
                    },
                );
                continue;
            }
            first_lines.insert(name.clone(), loc.line.unwrap_or(0));
            let uid = *u.uid.get_ref();
            let gid = *u.gid.get_ref();
            let mut out_of_range = false;
            for (key, value, span) in [("uid", uid, u.uid.span()), ("gid", gid, u.gid.span())] {
                if value > MAX_ID {
                    diags.push(
                        cfg.source.loc(span),
                        UserError::IdRange {
                            name: name.clone(),
                            key,
                            value,
                        },
                    );
                    out_of_range = true;
                }
            }
            if out_of_range {
                continue;
            }
            if let Some(other) = uid_owner.get(&uid) {
                diags.push(
                    cfg.source.loc(u.uid.span()),
                    UserError::DuplicateUid {
                        name: name.clone(),
                        uid,
                        other: other.clone(),
                    },
                );
                continue;
            }
            uid_owner.insert(uid, name.clone());
            let mut path = |key: &'static str, v: &Option<Spanned<String>>, default: &str| match v {
                Some(p) if !valid_passwd_path(p.get_ref()) => {
                    diags.push(
                        cfg.source.loc(p.span()),
                        UserError::BadPath {
                            name: name.clone(),
                            key,
                            value: p.get_ref().clone(),
                        },
                    );
                    default.to_string()
                }
                Some(p) => p.get_ref().clone(),
                None => default.to_string(),
            };
            let home = path("home", &u.home, DEFAULT_HOME);
            let shell = path("shell", &u.shell, DEFAULT_SHELL);
            if gids.insert(gid) {
                db.groups.push(Group {
                    name: name.clone(),
                    gid,
                });
            }
            db.users.push(User {
                name: name.clone(),
                uid,
                gid,
                home,
                shell,
            });
        }
        db
    }

    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    pub fn user_by_uid(&self, uid: u32) -> Option<&User> {
        self.users.iter().find(|u| u.uid == uid)
    }

    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// `/etc/passwd`.
    pub fn passwd(&self) -> String {
        self.users
            .iter()
            .map(|u| {
                format!(
                    "{n}:x:{}:{}:{n}:{}:{}\n",
                    u.uid,
                    u.gid,
                    u.home,
                    u.shell,
                    n = u.name
                )
            })
            .collect()
    }

    /// `/etc/group`.
    pub fn group_file(&self) -> String {
        self.groups
            .iter()
            .map(|g| format!("{}:x:{}:\n", g.name, g.gid))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceFile;

    const HEAD: &str = "[image]\nname = \"d\"\nversion = \"1\"\nhostname = \"h\"\n";

    fn compile(users: &str) -> (UserDb, Result<(), String>) {
        let cfg =
            Config::parse(SourceFile::new("u.toml".into(), format!("{HEAD}{users}"))).unwrap();
        let mut d = Diagnostics::<UserError>::new();
        let db = UserDb::compile(&cfg, &mut d);
        (db, d.finish().map_err(|e| e.to_string()))
    }

    #[test]
    fn files() {
        let (db, r) = compile(
            "[[user]]\nname = \"app\"\nuid = 1000\ngid = 1000\n[[user]]\nname = \"web\"\nuid = 1001\ngid = 1000\nhome = \"/data/web\"\n",
        );
        r.unwrap();
        assert_eq!(
            db.passwd(),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/:/bin/false\nweb:x:1001:1000:web:/data/web:/bin/false\n"
        );
        assert_eq!(db.group_file(), "root:x:0:\napp:x:1000:\n");
        assert_eq!(db.group("app").unwrap().gid, 1000);
        assert!(db.group("web").is_none(), "gid 1000 already has a group");
        assert_eq!(db.user("web").unwrap().uid, 1001);
    }

    #[test]
    fn errors() {
        let (_, r) = compile(
            "[[user]]\nname = \"root\"\nuid = 5\ngid = 5\n\
             [[user]]\nname = \"App\"\nuid = 6\ngid = 6\n\
             [[user]]\nname = \"a\"\nuid = 7\ngid = 7\n\
             [[user]]\nname = \"a\"\nuid = 8\ngid = 8\n\
             [[user]]\nname = \"b\"\nuid = 7\ngid = 7\nshell = \"sh\"\n",
        );
        let e = r.unwrap_err();
        let lines: Vec<_> = e.lines().collect();
        assert_eq!(
            lines[0],
            "u.toml:6: user \"root\" is built in and cannot be redefined"
        );
        assert!(
            lines[1].starts_with("u.toml:10: user name \"App\" is invalid"),
            "{e}"
        );
        assert_eq!(
            lines[2],
            "u.toml:18: user \"a\" is defined twice (first at line 14)"
        );
        assert_eq!(
            lines[3],
            "u.toml:23: user \"b\": uid 7 is already used by \"a\""
        );
        assert_eq!(lines.len(), 4, "{e}");
    }
}
