//! An RPM header's `License` as an SPDX license expression. Azure Linux
//! spec files use SPDX expressions (`GPL-2.0-only AND MIT`); a value that
//! is not one syntactically (`GPLv2+ and BSD`, free text) is kept
//! verbatim as an extracted license `LicenseRef-rpm-<n>`, never rewritten
//! into an identifier it might not mean. Expressions are checked with the
//! `spdx` crate (EmbarkStudios, the parser cargo-deny uses), which knows
//! the SPDX license list; the e2e test also runs the SPDX reference
//! validator (`pyspdxtools`) over the whole document.
use super::model::{ExtractedLicense, NOASSERTION};

/// Turns header `License` values into `licenseDeclared` values, collecting
/// the extracted licenses the non-expressions need.
#[derive(Debug, Default)]
pub struct Licenses {
    extracted: Vec<ExtractedLicense>,
}

impl Licenses {
    /// The `licenseDeclared` for the header value `raw` of package `nevra`.
    pub fn declared(&mut self, raw: &str, nevra: &str) -> String {
        let raw = raw.trim();
        if raw.is_empty() {
            return NOASSERTION.to_string();
        }
        if is_expression(raw) {
            return raw.to_string();
        }
        if let Some(e) = self.extracted.iter().find(|e| e.extracted_text == raw) {
            return e.license_id.clone();
        }
        let id = format!("LicenseRef-rpm-{}", self.extracted.len() + 1);
        self.extracted.push(ExtractedLicense {
            license_id: id.clone(),
            extracted_text: raw.to_string(),
            name: format!("RPM License tag of {nevra}"),
        });
        id
    }

    pub fn into_extracted(self) -> Vec<ExtractedLicense> {
        self.extracted
    }
}

/// Whether `s` is an SPDX license expression: parsed strictly by the
/// `spdx` crate (identifiers on the SPDX license list it carries, no
/// deprecated ones), with the operators in upper case as the SPDX
/// specification writes them.
pub fn is_expression(s: &str) -> bool {
    let lower_operator = s
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .any(|w| {
            ["AND", "OR", "WITH"]
                .iter()
                .any(|op| w.eq_ignore_ascii_case(op) && w != *op)
        });
    !lower_operator && spdx::Expression::parse_mode(s, spdx::ParseMode::STRICT).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_are_checked_against_the_license_list() {
        for ok in [
            "MIT",
            "GPL-2.0-only",
            "GPL-2.0-only AND MIT",
            "(MIT OR Apache-2.0) AND BSD-3-Clause",
            "GPL-2.0-or-later WITH Linux-syscall-note",
            "LicenseRef-foo",
            "((MIT))",
        ] {
            assert!(is_expression(ok), "{ok}");
        }
        for bad in [
            "",
            "GPLv2+ and BSD",
            "MIT AND",
            "(MIT",
            "MIT)",
            "Public Domain",
            "MIT WITH",
            "AND",
            "GPL/BSD",
            "MIT and BSD-3-Clause",
            "GPLv2",
            "Not-A-License-1.0",
        ] {
            assert!(!is_expression(bad), "{bad}");
        }
    }

    #[test]
    fn non_expressions_become_extracted_licenses_once() {
        let mut l = Licenses::default();
        assert_eq!(l.declared("MIT", "a-1-1.x"), "MIT");
        assert_eq!(l.declared("  ", "a-1-1.x"), NOASSERTION);
        assert_eq!(l.declared("GPLv2+ and BSD", "b-1-1.x"), "LicenseRef-rpm-1");
        assert_eq!(l.declared("GPLv2+ and BSD", "c-1-1.x"), "LicenseRef-rpm-1");
        assert_eq!(l.declared("Public Domain", "d-1-1.x"), "LicenseRef-rpm-2");
        let e = l.into_extracted();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].extracted_text, "GPLv2+ and BSD");
        assert_eq!(e[0].name, "RPM License tag of b-1-1.x");
    }
}
