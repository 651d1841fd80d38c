//! Benchmark (ignored by default; run by scripts/bench.sh): the boot-time
//! cost of measured boot — the same signed disk image booted with a TPM
//! (every measurement extended into swtpm) and without one (event log
//! only), interleaved, comparing init's own `ready: … ms since kernel
//! start` line.
use azl_e2e::bench::median;
use azl_e2e::*;

const BOOTS: usize = 7;

fn ready_ms(b: &Booted) -> f64 {
    let l = b.line("ready: ");
    let line = b.serial.lines().nth(l).unwrap_or_default();
    line.split(", ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no ready time in {line:?}"))
}

#[test]
#[ignore = "benchmark: scripts/bench.sh"]
fn bench_measured_boot_cost() {
    let dir = tempdir();
    let key = keygen(dir.path(), "k");
    let out = Image::new("measure-bench", Kernel::Small)
        .disk(&key)
        .sh_service("a", "exec sleep 1000", "")
        .sh_service("b", "exec sleep 1000", "after = [\"a\"]")
        .finisher(&["b"], "true")
        .build(dir.path());
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for i in 0..BOOTS {
        for tpm in if i % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        } {
            let b = boot(
                &out,
                &Boot {
                    tpm,
                    ..Boot::default()
                },
            );
            b.assert_clean_poweroff();
            assert_eq!(b.has("measure: TPM at /dev/tpmrm0"), tpm, "{}", b.dump());
            (if tpm { &mut with } else { &mut without }).push(ready_ms(&b));
        }
    }
    let (w, wo) = (median(with.clone()), median(without.clone()));
    println!("BENCH-BEGIN");
    println!("## measured boot cost\n");
    println!("Same signed disk image (small-6.1, 3 services), {BOOTS} interleaved boots each; init's `ready:` time since kernel start, median.\n");
    println!("| boot | ready (ms) | range |");
    println!("|---|---:|---|");
    let range = |v: &[f64]| {
        format!(
            "{:.0}–{:.0}",
            v.iter().cloned().fold(f64::MAX, f64::min),
            v.iter().cloned().fold(0.0, f64::max)
        )
    };
    println!(
        "| with TPM (swtpm, 7 extends + log) | {w:.0} | {} |",
        range(&with)
    );
    println!("| without TPM (log only) | {wo:.0} | {} |", range(&without));
    println!(
        "| cost of measuring into the TPM | {:.0} ms ({:.2}×) | |",
        w - wo,
        w / wo
    );
    println!("BENCH-END");
}
