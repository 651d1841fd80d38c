//! Shared pieces of the `#[ignore]`d benchmarks (`tests/tests/bench*.rs`):
//! kernel-log timestamps, medians, run counts from the environment, and the
//! `BENCH-BEGIN`/`BENCH-END` report blocks `scripts/bench.sh` collects.
use crate::workspace;

/// "[    0.417828] rest" → 0.417828
pub fn kmsg_ts(line: &str) -> Option<f64> {
    let a = line.find('[')?;
    let b = line[a..].find(']')? + a;
    line[a + 1..b].trim().parse().ok()
}

pub fn median(mut v: Vec<f64>) -> f64 {
    assert!(!v.is_empty());
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

pub fn env_count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

pub fn today() -> String {
    let o = std::process::Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d")
        .output();
    o.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// Which init was measured: the pinned commit (scripts/bench.sh with
/// AZL_BENCH_REV) or the working tree.
pub fn measured() -> String {
    if let Ok(c) = std::env::var("AZL_BENCH_COMMIT") {
        return format!(
            "init and imagegen built from commit `{}`",
            &c[..c.len().min(12)]
        );
    }
    let o = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(workspace())
        .output();
    let d = o
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!("init and imagegen built from the working tree (`{d}`)")
}

pub fn verdict(ok: bool) -> &'static str {
    if ok {
        "pass"
    } else {
        "MISS"
    }
}

pub fn begin(title: &str) {
    println!("\nBENCH-BEGIN");
    println!("## {title}\n");
    println!("Measured {}: {}.\n", today(), measured());
}

pub fn end(test: &str) {
    println!("\nReproduce: `scripts/bench.sh {test}` (all benchmarks: `scripts/bench.sh`)");
    println!("BENCH-END");
}
