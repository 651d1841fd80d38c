//! Regression: `attest verify --log-only` wrote one "also:" line per
//! divergent event, unbounded — a crafted log of 1 M events made 186 MB of
//! output and 847 MB RSS. The listed divergences are now capped
//! (`MAX_LISTED_DIVERGENCES`, then "… and N more events differ"), and the
//! verifier's peak memory stays proportional to the log, measured here with
//! a counting global allocator.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "integration test: a failed step is a failed test"
)]
use azl_attest::reference::predict;
use azl_attest::verify::{verify, Options, Verdict, MAX_LISTED_DIVERGENCES};
use azl_formats::attest::{Report, Tier};
use azl_formats::eventlog::EventLog;
use azl_formats::measure::{Kind, Phase};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

#[allow(unsafe_code, reason = "a GlobalAlloc impl is unsafe by definition")]
// SAFETY: every method forwards to `System` with the caller's arguments;
// only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(l.size(), Relaxed) + l.size();
        PEAK.fetch_max(live, Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

#[test]
fn log_only_divergences_are_capped_and_memory_follows_the_input() {
    const EVENTS: usize = 200_000;
    let mut m = azl_formats::manifest::example();
    let id = m.identity_bytes().unwrap();
    m.reference = Some(predict(&id, &m.cmdline, &[7; 32], b"table"));
    let mut log = EventLog::new();
    for _ in 0..EVENTS {
        log.append_azl(Kind::Phase(Phase::ServicesReady), &[]);
    }
    let report = Report {
        tier: Tier::SoftwareOnly,
        nonce: Vec::new(),
        ak_public: Vec::new(),
        quote: Vec::new(),
        signature: Vec::new(),
        pcrs: Vec::new(),
        event_log: log.to_bytes(),
        manifest: Vec::new(),
    };
    drop(log);
    let input = report.event_log.len();
    let opts = Options {
        nonce: &[],
        pinned_ak: None,
        log_only: true,
    };
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    let out = verify(&report, &m, &opts);
    let peak = PEAK.load(Relaxed) - base;
    let text = out.to_string();

    let Verdict::Failed(f) = &out.verdict else {
        panic!("a log of {EVENTS} phase events matched the reference:\n{text}");
    };
    // Every reference event but the last (services-ready) differs, then
    // every extra event: the first is the reason, 16 are listed, the rest
    // counted.
    let differing = EVENTS - 1;
    assert_eq!(
        f.details.len(),
        MAX_LISTED_DIVERGENCES + 1,
        "{} detail lines",
        f.details.len()
    );
    assert!(f.details[..MAX_LISTED_DIVERGENCES]
        .iter()
        .all(|d| d.starts_with("also: PCR ")));
    let more = differing - 1 - MAX_LISTED_DIVERGENCES;
    assert_eq!(
        f.details[MAX_LISTED_DIVERGENCES],
        format!("… and {more} more events differ")
    );
    assert!(text.len() < 8 << 10, "{} bytes of output", text.len());
    // Parsing keeps one Event per event (~2× the log bytes); nothing may
    // grow with the number of divergences on top of that.
    assert!(
        peak < 3 * input,
        "peak {peak} bytes for a {input}-byte log ({EVENTS} events)"
    );
}
