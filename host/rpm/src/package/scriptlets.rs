//! The scripts an RPM carries. azl-edge runs none of them (the image is
//! built rootless, for another architecture, and must be reproducible);
//! the build report lists each one with the lines that show what it would
//! have done — users, groups, directories, services — so the image config
//! can provide that itself (`[[user]]`, `[[file]]`, `[[service]]`).
use rpm::PackageMetadata;

/// Lines kept per script.
const LINES_MAX: usize = 8;
/// Characters kept per line.
const LINE_MAX: usize = 160;
/// Commands whose lines are kept.
const NOTABLE: [&str; 10] = [
    "useradd",
    "groupadd",
    "adduser",
    "addgroup",
    "systemd-sysusers",
    "mkdir",
    "install ",
    "systemctl",
    "ldconfig",
    "ln ",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub package: String,
    /// `%pre`, `%post`, …
    pub kind: &'static str,
    /// The interpreter (`/bin/sh`, or `<lua>`).
    pub interpreter: String,
    /// The notable lines (trimmed, shortened).
    pub would: Vec<String>,
}

type Getter = fn(&PackageMetadata) -> Result<rpm::Scriptlet, rpm::Error>;

const KINDS: [(&str, Getter); 6] = [
    ("%pretrans", PackageMetadata::get_pre_trans_script),
    ("%pre", PackageMetadata::get_pre_install_script),
    ("%post", PackageMetadata::get_post_install_script),
    ("%preun", PackageMetadata::get_pre_uninstall_script),
    ("%postun", PackageMetadata::get_post_uninstall_script),
    ("%posttrans", PackageMetadata::get_post_trans_script),
];

/// Every install-time and removal-time script of `meta`.
pub fn of(package: &str, meta: &PackageMetadata) -> Vec<Skipped> {
    KINDS
        .iter()
        .filter_map(|(kind, get)| {
            let s = get(meta).ok()?;
            let interpreter = s
                .program
                .as_ref()
                .and_then(|p| p.first().cloned())
                .unwrap_or_else(|| "/bin/sh".to_string());
            Some(Skipped {
                package: package.to_string(),
                kind,
                interpreter,
                would: notable(&s.script),
            })
        })
        .collect()
}

/// The lines of `script` that create users, groups, directories, links
/// or touch services.
pub fn notable(script: &str) -> Vec<String> {
    script
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && NOTABLE.iter().any(|n| l.contains(n)))
        .take(LINES_MAX)
        .map(|l| l.chars().take(LINE_MAX).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_the_lines_that_matter() {
        let s = "# useradd in a comment\ngetent group web >/dev/null || groupadd -r web\nexit 0\n  mkdir -p /var/lib/web  \n";
        assert_eq!(
            super::notable(s),
            [
                "getent group web >/dev/null || groupadd -r web",
                "mkdir -p /var/lib/web"
            ]
        );
    }
}
