//! Shell-style name patterns for `exclude`: `*` matches any run of
//! characters, `?` one character, everything else itself. No character
//! classes (dnf accepts them; no image config needs them yet).
//!
//! Iterative with one backtrack point, so a pattern costs at most
//! `len(pattern) × len(name)` steps whatever its shape.

/// Whether `name` matches `pattern` as a whole.
pub fn matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0usize, 0usize);
    // Where the last `*` was, and where in the name it started matching.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(c) if *c == '?' || Some(c) == n.get(ni) => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|c| *c == '*'))
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn matches_like_a_shell() {
        assert!(matches("foo", "foo"));
        assert!(!matches("foo", "foobar"));
        assert!(matches("foo*", "foobar"));
        assert!(matches("*-devel", "glibc-devel"));
        assert!(!matches("*-devel", "glibc-devel-x"));
        assert!(matches("f?o", "fxo"));
        assert!(matches("*", ""));
        assert!(matches("a*b*c", "aXXbYYc"));
        assert!(!matches("a*b*c", "aXXbYY"));
        assert!(matches("kernel*", "kernel"));
        // A pathological pattern stays cheap.
        let long = "a".repeat(2000);
        assert!(!matches(&("*a".repeat(50) + "b"), &long));
    }
}
