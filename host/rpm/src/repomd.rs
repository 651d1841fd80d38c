//! `repodata/repomd.xml`: which metadata files a repository has, where,
//! and their checksums and sizes before and after decompression.
//!
//! ```xml
//! <repomd><revision>…</revision>
//!   <data type="primary">
//!     <checksum type="sha256">…</checksum>
//!     <open-checksum type="sha256">…</open-checksum>
//!     <location href="repodata/…-primary.xml.gz"/>
//!     <size>691</size><open-size>1597</open-size>
//!   </data> …
//! </repomd>
//! ```
use crate::xml::{attr, local};
use quick_xml::events::Event;
use quick_xml::Reader;

/// A checksum as repository metadata writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    pub kind: Algorithm,
    /// Lower-case hex.
    pub hex: String,
}

/// Digests accepted; md5 and sha1 are refused (`RepomdError::WeakChecksum`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }
}

/// One `<data>` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Data {
    /// `primary`, `filelists`, `other`, `primary_db`, …
    pub kind: String,
    pub checksum: Checksum,
    pub open_checksum: Option<Checksum>,
    /// Relative to the repository's base URL.
    pub href: String,
    pub size: Option<u64>,
    pub open_size: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repomd {
    pub revision: Option<String>,
    pub data: Vec<Data>,
}

#[derive(Debug, thiserror::Error)]
pub enum RepomdError {
    #[error("repomd.xml: {0}")]
    Xml(String),
    #[error("repomd.xml: <data type=\"{kind}\"> has no {what}")]
    Missing { kind: String, what: &'static str },
    #[error("repomd.xml: <data type=\"{kind}\"> uses checksum type {algorithm}; only sha256 and sha512 are accepted")]
    WeakChecksum { kind: String, algorithm: String },
    #[error("repomd.xml: <data type=\"{kind}\"> checksum `{hex}` is not {len} hex digits")]
    BadHex {
        kind: String,
        hex: String,
        len: usize,
    },
    #[error("repomd.xml: <data type=\"{kind}\"> location `{href}` leaves the repository")]
    BadHref { kind: String, href: String },
    #[error("repomd.xml: <data type=\"{kind}\"> {what} `{value}` is not a number")]
    BadNumber {
        kind: String,
        what: &'static str,
        value: String,
    },
    #[error("repomd.xml: two <data type=\"{0}\"> entries")]
    Duplicate(String),
    #[error("repomd.xml: no <data type=\"primary\">")]
    NoPrimary,
}

impl Repomd {
    pub fn parse(bytes: &[u8]) -> Result<Repomd, RepomdError> {
        let mut r = Reader::from_reader(bytes);
        r.config_mut().trim_text(true);
        let mut buf = Vec::new();
        let mut out = Repomd {
            revision: None,
            data: Vec::new(),
        };
        let mut cur: Option<Partial> = None;
        let mut text_for: Option<String> = None;
        let mut sum_kind: Option<String> = None;
        loop {
            let ev = r
                .read_event_into(&mut buf)
                .map_err(|e| RepomdError::Xml(format!("at byte {}: {e}", r.buffer_position())))?;
            match ev {
                Event::Start(e) | Event::Empty(e) => {
                    let name = local(&e);
                    match (name.as_str(), cur.as_mut()) {
                        ("data", None) => {
                            let kind = attr(&e, "type").map_err(RepomdError::Xml)?.ok_or(
                                RepomdError::Missing {
                                    kind: "?".into(),
                                    what: "type",
                                },
                            )?;
                            cur = Some(Partial::new(kind));
                        }
                        ("location", Some(p)) => {
                            p.href = attr(&e, "href").map_err(RepomdError::Xml)?;
                        }
                        ("checksum" | "open-checksum", Some(_)) => {
                            sum_kind = attr(&e, "type").map_err(RepomdError::Xml)?;
                            text_for = Some(name);
                        }
                        ("size" | "open-size", Some(_)) | ("revision", None) => {
                            text_for = Some(name)
                        }
                        _ => {}
                    }
                }
                Event::Text(t) => {
                    let text = t
                        .decode()
                        .map_err(|e| RepomdError::Xml(format!("bad text: {e}")))?
                        .into_owned();
                    match (text_for.take().as_deref(), cur.as_mut()) {
                        (Some("revision"), None) => out.revision = Some(text),
                        (Some(w @ ("checksum" | "open-checksum")), Some(p)) => {
                            let c = checksum(&p.kind, sum_kind.take(), &text)?;
                            if w == "checksum" {
                                p.checksum = Some(c);
                            } else {
                                p.open_checksum = Some(c);
                            }
                        }
                        (Some(w @ ("size" | "open-size")), Some(p)) => {
                            let what = if w == "size" { "size" } else { "open-size" };
                            let n = text.parse::<u64>().map_err(|_| RepomdError::BadNumber {
                                kind: p.kind.clone(),
                                what,
                                value: text.clone(),
                            })?;
                            if w == "size" {
                                p.size = Some(n);
                            } else {
                                p.open_size = Some(n);
                            }
                        }
                        _ => {}
                    }
                }
                Event::End(e) => {
                    text_for = None;
                    if e.local_name().as_ref() == b"data" {
                        if let Some(p) = cur.take() {
                            let d = p.finish()?;
                            if out.data.iter().any(|x| x.kind == d.kind) {
                                return Err(RepomdError::Duplicate(d.kind));
                            }
                            out.data.push(d);
                        }
                    }
                }
                Event::Eof => break,
                _ => {}
            }
            buf.clear();
        }
        if out.get("primary").is_none() {
            return Err(RepomdError::NoPrimary);
        }
        Ok(out)
    }

    /// The entry of `kind`.
    pub fn get(&self, kind: &str) -> Option<&Data> {
        self.data.iter().find(|d| d.kind == kind)
    }
}

struct Partial {
    kind: String,
    checksum: Option<Checksum>,
    open_checksum: Option<Checksum>,
    href: Option<String>,
    size: Option<u64>,
    open_size: Option<u64>,
}

impl Partial {
    fn new(kind: String) -> Partial {
        Partial {
            kind,
            checksum: None,
            open_checksum: None,
            href: None,
            size: None,
            open_size: None,
        }
    }

    fn finish(self) -> Result<Data, RepomdError> {
        let missing = |what| RepomdError::Missing {
            kind: self.kind.clone(),
            what,
        };
        let href = self.href.clone().ok_or_else(|| missing("location href"))?;
        if !relative_href_ok(&href) {
            return Err(RepomdError::BadHref {
                kind: self.kind,
                href,
            });
        }
        Ok(Data {
            checksum: self.checksum.clone().ok_or_else(|| missing("checksum"))?,
            open_checksum: self.open_checksum,
            href,
            size: self.size,
            open_size: self.open_size,
            kind: self.kind,
        })
    }
}

/// A location inside the repository: relative, no `..`, no scheme.
pub fn relative_href_ok(href: &str) -> bool {
    !href.is_empty()
        && !href.starts_with('/')
        && !href.contains("://")
        && !href.contains('\\')
        && href
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// Why a checksum was not accepted (see [`Checksum::parse`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChecksumError {
    /// Not sha256 or sha512 (md5, sha1, missing, unknown).
    Weak(String),
    /// Not the algorithm's number of hex digits.
    BadHex { hex: String, len: usize },
}

impl Checksum {
    /// A `<checksum type="…">hex</checksum>` as metadata writes it.
    pub fn parse(algorithm: Option<&str>, hex: &str) -> Result<Checksum, ChecksumError> {
        let (kind, len) = match algorithm {
            Some("sha256") => (Algorithm::Sha256, 64),
            Some("sha512") => (Algorithm::Sha512, 128),
            other => return Err(ChecksumError::Weak(other.unwrap_or_default().to_string())),
        };
        let hex = hex.to_ascii_lowercase();
        if hex.len() != len || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ChecksumError::BadHex { hex, len });
        }
        Ok(Checksum { kind, hex })
    }
}

fn checksum(kind: &str, algorithm: Option<String>, hex: &str) -> Result<Checksum, RepomdError> {
    Checksum::parse(algorithm.as_deref(), hex).map_err(|e| match e {
        ChecksumError::Weak(algorithm) => RepomdError::WeakChecksum {
            kind: kind.to_string(),
            algorithm,
        },
        ChecksumError::BadHex { hex, len } => RepomdError::BadHex {
            kind: kind.to_string(),
            hex,
            len,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUM: &str = "2b241efa19b6023803b772585876c4526e912af34f263c2a2247873c7da60c13";

    fn repomd(data: &str) -> String {
        format!("<?xml version=\"1.0\"?><repomd xmlns=\"http://linux.duke.edu/metadata/repo\"><revision>7</revision>{data}</repomd>")
    }

    fn primary(sum_type: &str, href: &str) -> String {
        format!("<data type=\"primary\"><checksum type=\"{sum_type}\">{SUM}</checksum><location href=\"{href}\"/><size>691</size><open-size>1597</open-size></data>")
    }

    #[test]
    fn reads_entries() {
        let m = Repomd::parse(repomd(&primary("sha256", "repodata/p.xml.gz")).as_bytes()).unwrap();
        assert_eq!(m.revision.as_deref(), Some("7"));
        let p = m.get("primary").unwrap();
        assert_eq!(p.href, "repodata/p.xml.gz");
        assert_eq!((p.size, p.open_size), (Some(691), Some(1597)));
        assert_eq!(p.checksum.hex, SUM);
    }

    #[test]
    fn refuses_weak_checksums_escaping_locations_and_duplicates() {
        let e =
            Repomd::parse(repomd(&primary("sha1", "repodata/p.xml.gz")).as_bytes()).unwrap_err();
        assert!(e.to_string().contains("checksum type sha1"), "{e}");
        for href in ["../p.xml.gz", "/etc/passwd", "http://x/p", "repodata//p"] {
            let e = Repomd::parse(repomd(&primary("sha256", href)).as_bytes()).unwrap_err();
            assert!(
                e.to_string().contains("leaves the repository"),
                "{href}: {e}"
            );
        }
        let two = primary("sha256", "a") + &primary("sha256", "b");
        let e = Repomd::parse(repomd(&two).as_bytes()).unwrap_err();
        assert!(e.to_string().contains("two <data type=\"primary\">"), "{e}");
        let e = Repomd::parse(repomd("").as_bytes()).unwrap_err();
        assert!(matches!(e, RepomdError::NoPrimary));
        let e = Repomd::parse(b"<repomd><data type=\"primary\">").unwrap_err();
        assert!(
            e.to_string().contains("no checksum") || e.to_string().contains("repomd.xml"),
            "{e}"
        );
    }
}
