//! Epoch:version-release, ordered as rpm orders them. The comparison of
//! each part is the `rpm` crate's implementation of rpmvercmp (`~` sorts
//! before anything, `^` after the plain version, digits above letters).
//!
//! A dependency may leave out the release (`libfoo >= 2.0`): rpm then
//! compares only epoch and version, and so does [`Evr::cmp_for_dep`].
use std::cmp::Ordering;
use std::fmt;

/// A parsed EVR. `epoch` is 0 when absent (rpm's rule).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Evr {
    pub epoch: u32,
    pub version: String,
    /// `None` when the release was not given (only in dependencies).
    pub release: Option<String>,
}

impl Evr {
    pub fn new(epoch: u32, version: &str, release: Option<&str>) -> Evr {
        Evr {
            epoch,
            version: version.to_string(),
            release: release.map(str::to_string),
        }
    }

    /// `[E:]V[-R]`. A non-numeric epoch is `None` (the caller names the
    /// package in its error).
    pub fn parse(s: &str) -> Option<Evr> {
        let (epoch, vr) = match s.split_once(':') {
            Some((e, vr)) => (e.parse::<u32>().ok()?, vr),
            None => (0, s),
        };
        let (version, release) = match vr.rsplit_once('-') {
            Some((v, r)) => (v, Some(r)),
            None => (vr, None),
        };
        // rpm allows no ':' in a version or release (rpmbuild's
        // ALLOWED_CHARS_VERREL); accepting one would print an EVR that
        // reads back with another epoch.
        if version.is_empty() || release == Some("") || vr.contains(':') {
            return None;
        }
        Some(Evr::new(epoch, version, release))
    }

    /// rpm's order for package EVRs (a missing release sorts as empty).
    pub fn cmp_rpm(&self, other: &Evr) -> Ordering {
        self.cmp_parts(other, true)
    }

    /// rpm's order inside a dependency check: the release is compared only
    /// when both sides have one.
    pub fn cmp_for_dep(&self, other: &Evr) -> Ordering {
        self.cmp_parts(other, false)
    }

    fn cmp_parts(&self, other: &Evr, empty_release: bool) -> Ordering {
        let ev = |e: &Evr| (e.epoch.to_string(), e.version.clone());
        let (a, b) = (ev(self), ev(other));
        let first = rpm::Evr::new(a.0.as_str(), a.1.as_str(), "").cmp(&rpm::Evr::new(
            b.0.as_str(),
            b.1.as_str(),
            "",
        ));
        if first != Ordering::Equal {
            return first;
        }
        match (&self.release, &other.release) {
            (Some(r1), Some(r2)) => vercmp(r1, r2),
            (r1, r2) if empty_release => {
                vercmp(r1.as_deref().unwrap_or(""), r2.as_deref().unwrap_or(""))
            }
            _ => Ordering::Equal,
        }
    }
}

/// rpmvercmp of two version (or release) strings.
pub fn vercmp(a: &str, b: &str) -> Ordering {
    rpm::Evr::new("0", a, "").cmp(&rpm::Evr::new("0", b, ""))
}

impl fmt::Display for Evr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.epoch != 0 {
            write!(f, "{}:", self.epoch)?;
        }
        f.write_str(&self.version)?;
        if let Some(r) = &self.release {
            write!(f, "-{r}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let e = Evr::parse("1:2.0-3.azl4").unwrap();
        assert_eq!((e.epoch, e.version.as_str()), (1, "2.0"));
        assert_eq!(e.release.as_deref(), Some("3.azl4"));
        assert_eq!(e.to_string(), "1:2.0-3.azl4");
        assert_eq!(Evr::parse("2.0").unwrap().to_string(), "2.0");
        assert_eq!(Evr::parse("x:1"), None);
        assert_eq!(Evr::parse("1.0-"), None);
    }

    #[test]
    fn orders_like_rpm() {
        use Ordering::*;
        let c = |a: &str, b: &str| Evr::parse(a).unwrap().cmp_rpm(&Evr::parse(b).unwrap());
        assert_eq!(c("1.0-1", "1.0-2"), Less);
        assert_eq!(c("1:1.0-1", "2.0-1"), Greater);
        assert_eq!(c("1.0~rc1-1", "1.0-1"), Less);
        assert_eq!(c("1.0^git1-1", "1.0-1"), Greater);
        assert_eq!(c("1.10-1", "1.9-1"), Greater);
        assert_eq!(c("1.0a-1", "1.0-1"), Greater);
        // Without a release on one side a dependency compares E:V only.
        let d = |a: &str, b: &str| Evr::parse(a).unwrap().cmp_for_dep(&Evr::parse(b).unwrap());
        assert_eq!(d("2.0", "2.0-7"), Equal);
        assert_eq!(d("2.0-1", "2.0-7"), Less);
    }
}
