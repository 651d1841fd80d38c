//! `primary.xml`: every package of a repository with what the resolver
//! needs — name, arch, EVR, the RPM's checksum and location, its license,
//! and its provides, requires (rich or simple; `pre` kept), conflicts,
//! obsoletes, weak dependencies (recommends, suggests, supplements,
//! enhances) and the files primary lists (those under `/etc`, `*bin/`, and
//! `/usr/lib/sendmail`; the rest are in filelists).
//!
//! Streaming (quick-xml events); bounded by [`PACKAGES_MAX`] and
//! [`ENTRIES_MAX`]; every error names the package and the byte offset.
use crate::dep::{Cmp, Dep, DepError, Rich};
use crate::evr::Evr;
use crate::limits::{ENTRIES_MAX, PACKAGES_MAX};
use crate::repomd::{relative_href_ok, Checksum, ChecksumError};
use crate::xml::{attr, local};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// A requirement and whether it is needed before install (`pre="1"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub dep: Rich,
    pub pre: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Package {
    pub name: String,
    pub arch: String,
    pub evr: Option<Evr>,
    pub checksum: Option<Checksum>,
    /// Relative to the repository base.
    pub location: String,
    /// Bytes of the .rpm file.
    pub package_size: u64,
    /// Bytes installed.
    pub installed_size: u64,
    pub license: String,
    pub sourcerpm: String,
    pub provides: Vec<Dep>,
    pub requires: Vec<Requirement>,
    pub conflicts: Vec<Rich>,
    pub obsoletes: Vec<Rich>,
    pub recommends: Vec<Rich>,
    pub suggests: Vec<Rich>,
    pub supplements: Vec<Rich>,
    pub enhances: Vec<Rich>,
    pub files: Vec<String>,
}

impl Package {
    /// `name-[epoch:]version-release.arch`.
    pub fn nevra(&self) -> String {
        match &self.evr {
            Some(e) => format!("{}-{e}.{}", self.name, self.arch),
            None => format!("{}.{}", self.name, self.arch),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("primary.xml{}: {what}", package.as_ref().map(|p| format!(", package {p}")).unwrap_or_default())]
pub struct PrimaryError {
    pub package: Option<String>,
    pub what: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum List {
    Provides,
    Requires,
    Conflicts,
    Obsoletes,
    Recommends,
    Suggests,
    Supplements,
    Enhances,
}

fn list_of(name: &str) -> Option<List> {
    Some(match name {
        "provides" => List::Provides,
        "requires" => List::Requires,
        "conflicts" => List::Conflicts,
        "obsoletes" => List::Obsoletes,
        "recommends" => List::Recommends,
        "suggests" => List::Suggests,
        "supplements" => List::Supplements,
        "enhances" => List::Enhances,
        _ => return None,
    })
}

struct State {
    pkg: Option<Package>,
    list: Option<List>,
    text_for: Option<String>,
    sum_type: Option<String>,
}

/// All packages of a decompressed primary.xml.
pub fn parse(bytes: &[u8]) -> Result<Vec<Package>, PrimaryError> {
    let mut r = Reader::from_reader(bytes);
    r.config_mut().trim_text(true);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut st = State {
        pkg: None,
        list: None,
        text_for: None,
        sum_type: None,
    };
    loop {
        let at = r.buffer_position();
        let ev = r.read_event_into(&mut buf).map_err(|e| PrimaryError {
            package: st.pkg.as_ref().map(Package::nevra),
            what: format!("at byte {at}: {e}"),
        })?;
        let fail = |st: &State, what: String| PrimaryError {
            package: st.pkg.as_ref().map(Package::nevra),
            what: format!("at byte {at}: {what}"),
        };
        match ev {
            Event::Start(e) | Event::Empty(e) => {
                start(&mut st, &e).map_err(|w| fail(&st, w))?;
            }
            Event::Text(t) => {
                let text = t
                    .decode()
                    .map_err(|e| fail(&st, format!("bad text: {e}")))?;
                text_of(&mut st, &text).map_err(|w| fail(&st, w))?;
            }
            Event::End(e) => {
                st.text_for = None;
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if list_of(&name).is_some() {
                    st.list = None;
                } else if name == "package" {
                    if let Some(p) = st.pkg.take() {
                        out.push(finish(p)?);
                        if out.len() > PACKAGES_MAX {
                            return Err(fail(&st, format!("more than {PACKAGES_MAX} packages")));
                        }
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if st.pkg.is_some() {
        return Err(PrimaryError {
            package: st.pkg.as_ref().map(Package::nevra),
            what: "the file ends inside <package>".into(),
        });
    }
    Ok(out)
}

fn num(e: &BytesStart<'_>, name: &str) -> Result<u64, String> {
    match attr(e, name)? {
        None => Ok(0),
        Some(v) => v
            .parse()
            .map_err(|_| format!("<{}> {name}=\"{v}\" is not a number", local(e))),
    }
}

fn start(st: &mut State, e: &BytesStart<'_>) -> Result<(), String> {
    let name = local(e);
    if name == "package" {
        if st.pkg.is_some() {
            return Err("<package> inside <package>".into());
        }
        st.pkg = Some(Package::default());
        return Ok(());
    }
    let Some(p) = st.pkg.as_mut() else {
        return Ok(());
    };
    if let Some(l) = list_of(&name) {
        st.list = Some(l);
        return Ok(());
    }
    match name.as_str() {
        "name" | "arch" | "license" | "sourcerpm" | "file" => st.text_for = Some(name),
        "checksum" => {
            st.sum_type = attr(e, "type")?;
            st.text_for = Some(name);
        }
        "version" => {
            let epoch = match attr(e, "epoch")? {
                None => 0,
                Some(v) => v
                    .parse()
                    .map_err(|_| format!("epoch \"{v}\" is not a number"))?,
            };
            let ver = attr(e, "ver")?.ok_or("<version> has no ver")?;
            let rel = attr(e, "rel")?.ok_or("<version> has no rel")?;
            p.evr = Some(Evr::new(epoch, &ver, Some(&rel)));
        }
        "location" => {
            let href = attr(e, "href")?.ok_or("<location> has no href")?;
            if !relative_href_ok(&href) {
                return Err(format!("location `{href}` leaves the repository"));
            }
            p.location = href;
        }
        "size" => {
            p.package_size = num(e, "package")?;
            p.installed_size = num(e, "installed")?;
        }
        "entry" => {
            if let Some(l) = st.list {
                entry(p, l, e)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn dep_of(e: &BytesStart<'_>, name: &str) -> Result<Dep, String> {
    let Some(flags) = attr(e, "flags")? else {
        return Ok(Dep::any(name));
    };
    let cmp =
        Cmp::from_flags(&flags).ok_or_else(|| format!("{name}: unknown flags \"{flags}\""))?;
    let epoch = match attr(e, "epoch")? {
        None => 0,
        Some(v) => v
            .parse()
            .map_err(|_| format!("{name}: epoch \"{v}\" is not a number"))?,
    };
    let ver = attr(e, "ver")?.ok_or_else(|| format!("{name} {}: no ver", cmp.op()))?;
    let rel = attr(e, "rel")?;
    Ok(Dep::new(name, cmp, Evr::new(epoch, &ver, rel.as_deref())))
}

fn rich_of(e: &BytesStart<'_>, name: &str) -> Result<Rich, String> {
    if name.starts_with('(') {
        Rich::parse(name).map_err(|err: DepError| format!("dependency `{name}`: {err}"))
    } else {
        dep_of(e, name).map(Rich::Dep)
    }
}

fn entry(p: &mut Package, l: List, e: &BytesStart<'_>) -> Result<(), String> {
    let name = attr(e, "name")?.ok_or("<entry> has no name")?;
    let full = |n: usize| {
        if n >= ENTRIES_MAX {
            Err(format!("more than {ENTRIES_MAX} entries in one list"))
        } else {
            Ok(())
        }
    };
    match l {
        List::Provides => {
            full(p.provides.len())?;
            p.provides.push(dep_of(e, &name)?);
        }
        List::Requires => {
            full(p.requires.len())?;
            let pre = attr(e, "pre")?.is_some_and(|v| v == "1");
            p.requires.push(Requirement {
                dep: rich_of(e, &name)?,
                pre,
            });
        }
        List::Conflicts
        | List::Obsoletes
        | List::Recommends
        | List::Suggests
        | List::Supplements
        | List::Enhances => {
            let v = match l {
                List::Conflicts => &mut p.conflicts,
                List::Obsoletes => &mut p.obsoletes,
                List::Recommends => &mut p.recommends,
                List::Suggests => &mut p.suggests,
                List::Supplements => &mut p.supplements,
                _ => &mut p.enhances,
            };
            full(v.len())?;
            v.push(rich_of(e, &name)?);
        }
    }
    Ok(())
}

fn text_of(st: &mut State, text: &str) -> Result<(), String> {
    let (Some(p), Some(what)) = (st.pkg.as_mut(), st.text_for.take()) else {
        return Ok(());
    };
    match what.as_str() {
        "name" => p.name = text.to_string(),
        "arch" => p.arch = text.to_string(),
        "license" => p.license = text.to_string(),
        "sourcerpm" => p.sourcerpm = text.to_string(),
        "file" => {
            if p.files.len() >= ENTRIES_MAX {
                return Err(format!("more than {ENTRIES_MAX} files"));
            }
            p.files.push(text.to_string());
        }
        "checksum" => {
            let sum =
                Checksum::parse(st.sum_type.take().as_deref(), text).map_err(|e| match e {
                    ChecksumError::Weak(t) => {
                        let t = if t.is_empty() {
                            "(none)".to_string()
                        } else {
                            t
                        };
                        format!("package checksum type {t} is not accepted (sha256, sha512)")
                    }
                    ChecksumError::BadHex { len, .. } => {
                        format!("package checksum `{text}` is not {len} hex digits")
                    }
                })?;
            p.checksum = Some(sum);
        }
        _ => {}
    }
    Ok(())
}

fn finish(p: Package) -> Result<Package, PrimaryError> {
    let missing = |what: &str| PrimaryError {
        package: Some(p.nevra()),
        what: format!("no {what}"),
    };
    if p.name.is_empty() {
        return Err(PrimaryError {
            package: None,
            what: "a <package> has no <name>".into(),
        });
    }
    if p.arch.is_empty() {
        return Err(missing("<arch>"));
    }
    if p.evr.is_none() {
        return Err(missing("<version>"));
    }
    if p.checksum.is_none() {
        return Err(missing("<checksum>"));
    }
    if p.location.is_empty() {
        return Err(missing("<location>"));
    }
    Ok(p)
}
