//! Config values that TOML can spell in two ways: `user = "app"` or
//! `user = 1000`, `memory_max = "64M"` or `memory_max = 67108864`, and the
//! parsers for file modes and memory sizes. Meaning is checked by the
//! modules that use them, which know the context for error messages.
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;

/// A string or a non-negative integer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameOrNumber {
    Name(String),
    Number(u64),
}

impl<'de> Deserialize<'de> for NameOrNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = NameOrNumber;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a non-negative integer")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(NameOrNumber::Name(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(NameOrNumber::Number(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v)
                    .map(NameOrNumber::Number)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
        }
        d.deserialize_any(V)
    }
}

/// Parse a file mode written as an octal string: `"0755"`, `"755"`, `"0o755"`.
/// At most `0o7777` (permission, setuid/setgid and sticky bits).
pub fn parse_mode(s: &str) -> Option<u32> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b))
    {
        return None;
    }
    u32::from_str_radix(digits, 8).ok().filter(|m| *m <= 0o7777)
}

/// Parse a size: bytes as an integer, or a string `"<n>[K|M|G][i][B]"` with
/// binary multiples (`"64M"` = `"64MiB"` = 64 × 2^20). Zero is rejected.
pub fn parse_size(v: &NameOrNumber) -> Option<u64> {
    let n = match v {
        NameOrNumber::Number(n) => *n,
        NameOrNumber::Name(s) => {
            let s = s.trim();
            let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            let (num, unit) = s.split_at(digits_end);
            let num: u64 = num.parse().ok()?;
            let unit = unit.trim_start();
            let unit = unit.strip_suffix('B').unwrap_or(unit);
            let unit = unit.strip_suffix('i').unwrap_or(unit);
            let shift = match unit {
                "" => 0,
                "K" | "k" => 10,
                "M" => 20,
                "G" => 30,
                _ => return None,
            };
            num.checked_mul(1u64 << shift)?
        }
    };
    (n > 0).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(parse_mode("0755"), Some(0o755));
        assert_eq!(parse_mode("755"), Some(0o755));
        assert_eq!(parse_mode("0o644"), Some(0o644));
        assert_eq!(parse_mode("4755"), Some(0o4755));
        assert_eq!(parse_mode("0999"), None);
        assert_eq!(parse_mode("17777"), None);
        assert_eq!(parse_mode(""), None);
        assert_eq!(parse_mode("rwx"), None);
        assert_eq!(parse_mode("-755"), None);
    }

    #[test]
    fn sizes() {
        let s = |x: &str| parse_size(&NameOrNumber::Name(x.into()));
        assert_eq!(s("64M"), Some(64 << 20));
        assert_eq!(s("64MiB"), Some(64 << 20));
        assert_eq!(s("64 MB"), Some(64 << 20));
        assert_eq!(s("1G"), Some(1 << 30));
        assert_eq!(s("512k"), Some(512 << 10));
        assert_eq!(s("4096"), Some(4096));
        assert_eq!(s("0"), None);
        assert_eq!(s("M"), None);
        assert_eq!(s("12T"), None);
        assert_eq!(s("99999999999999999999G"), None);
        assert_eq!(parse_size(&NameOrNumber::Number(1000)), Some(1000));
        assert_eq!(parse_size(&NameOrNumber::Number(0)), None);
    }
}
