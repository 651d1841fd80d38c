//! `filelists.xml`: every file of every package, read only when a
//! requirement names a path that primary's short file list (`/etc`,
//! `*bin/`, `/usr/lib/sendmail`) does not have — as dnf does. Only the
//! paths asked for are kept, so a distribution's full file list (hundreds
//! of MiB decompressed) costs one streaming pass and almost no memory.
//!
//! ```xml
//! <filelists packages="1">
//!   <package pkgid="<sha256 of the rpm>" name="foo" arch="noarch">
//!     <version epoch="0" ver="1" rel="1"/>
//!     <file>/usr/share/foo/data</file>
//!     <file type="dir">/usr/share/foo</file>
//!   </package>
//! </filelists>
//! ```
//!
//! Packages are matched to primary's by `pkgid` (the package checksum
//! primary gives), never by name, so two builds of one NEVRA in one
//! repository cannot take each other's files. Streaming (quick-xml
//! events), bounded by [`PACKAGES_MAX`]; errors name the byte offset and
//! the package.
use crate::limits::PACKAGES_MAX;
use crate::xml::{attr, local};
use quick_xml::events::Event;
use quick_xml::Reader;
use std::collections::{BTreeSet, HashMap};

#[derive(Debug, thiserror::Error)]
#[error("filelists.xml{}: at byte {at}: {what}", package.as_ref().map(|p| format!(", package {p}")).unwrap_or_default())]
pub struct FilelistsError {
    pub package: Option<String>,
    pub at: u64,
    pub what: String,
}

/// For each `pkgid` (lower-case hex), the files of `wanted` it has.
pub type Owners = HashMap<String, Vec<String>>;

/// The owners of the `wanted` paths in a decompressed filelists.xml.
pub fn parse(bytes: &[u8], wanted: &BTreeSet<String>) -> Result<Owners, FilelistsError> {
    let mut r = Reader::from_reader(bytes);
    r.config_mut().trim_text(true);
    let mut buf = Vec::new();
    let mut out = Owners::new();
    // The current package: pkgid and name (for messages); whether the
    // next text is a <file>.
    let mut pkg: Option<(String, String)> = None;
    let mut in_file = false;
    let mut packages = 0usize;
    loop {
        let at = r.buffer_position();
        let fail = |pkg: &Option<(String, String)>, what: String| FilelistsError {
            package: pkg.as_ref().map(|p| p.1.clone()),
            at,
            what,
        };
        let ev = r
            .read_event_into(&mut buf)
            .map_err(|e| fail(&pkg, e.to_string()))?;
        match ev {
            Event::Start(e) | Event::Empty(e) => match local(&e).as_str() {
                "package" => {
                    if pkg.is_some() {
                        return Err(fail(&pkg, "<package> inside <package>".into()));
                    }
                    packages += 1;
                    if packages > PACKAGES_MAX {
                        return Err(fail(&pkg, format!("more than {PACKAGES_MAX} packages")));
                    }
                    let id = attr(&e, "pkgid").map_err(|w| fail(&pkg, w))?;
                    let name = attr(&e, "name").map_err(|w| fail(&pkg, w))?;
                    let name = name.unwrap_or_default();
                    let Some(id) = id.filter(|i| !i.is_empty()) else {
                        return Err(fail(&Some((String::new(), name)), "no pkgid".into()));
                    };
                    pkg = Some((id.to_ascii_lowercase(), name));
                }
                "file" => in_file = pkg.is_some(),
                _ => {}
            },
            Event::Text(t) if in_file => {
                in_file = false;
                let path = t
                    .decode()
                    .map_err(|e| fail(&pkg, format!("bad text: {e}")))?;
                if let (Some((id, _)), true) = (&pkg, wanted.contains(path.as_ref())) {
                    out.entry(id.clone()).or_default().push(path.into_owned());
                }
            }
            Event::End(e) => {
                in_file = false;
                if e.local_name().as_ref() == b"package" {
                    pkg = None;
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if pkg.is_some() {
        return Err(FilelistsError {
            package: pkg.map(|p| p.1),
            at: r.buffer_position(),
            what: "the file ends inside <package>".into(),
        });
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<filelists xmlns="http://linux.duke.edu/metadata/filelists" packages="2">
<package pkgid="AB12" name="foo" arch="noarch">
  <version epoch="0" ver="1" rel="1"/>
  <file>/usr/share/foo/data</file>
  <file type="dir">/usr/share/foo</file>
  <file>/usr/bin/foo</file>
</package>
<package pkgid="cd34" name="bar" arch="aarch64"><version epoch="0" ver="2" rel="1"/><file>/usr/share/foo/data</file></package>
</filelists>
"#;

    fn wanted(paths: &[&str]) -> BTreeSet<String> {
        paths.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn only_the_wanted_paths_are_kept_by_pkgid() {
        let o = parse(
            XML.as_bytes(),
            &wanted(&["/usr/share/foo/data", "/nowhere"]),
        )
        .unwrap();
        assert_eq!(o.len(), 2);
        assert_eq!(o["ab12"], ["/usr/share/foo/data"]);
        assert_eq!(o["cd34"], ["/usr/share/foo/data"]);
        assert!(parse(XML.as_bytes(), &wanted(&[])).unwrap().is_empty());
    }

    #[test]
    fn broken_files_are_refused_with_the_place() {
        let cut = &XML[..XML.find("</package>").unwrap()];
        let e = parse(cut.as_bytes(), &wanted(&[])).unwrap_err();
        assert!(e.to_string().contains("package foo"), "{e}");
        assert!(e.to_string().contains("ends inside <package>"), "{e}");
        let e = parse(
            br#"<filelists><package name="x"></package></filelists>"#,
            &wanted(&[]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("no pkgid"), "{e}");
        let e = parse(
            b"<filelists><package pkgid=\"a\"><package pkgid=\"b\">",
            &wanted(&[]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("<package> inside <package>"), "{e}");
        assert!(parse(b"<a><b></a>", &wanted(&[])).is_err());
    }
}
