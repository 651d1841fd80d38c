//! Every parser of outside input allocates in proportion to the bytes it
//! was given, never to a length or count those bytes merely declare.
//!
//! A counting global allocator records the largest single allocation and
//! the peak of live bytes while one parse runs. The tests run one at a
//! time (a lock) so the counters see only their own parse.
//!
//! A global allocator is `unsafe` by nature; this test file is the one place
//! in formats that needs it.
#![allow(unsafe_code)]
use azl_formats::attest::Report;
use azl_formats::envelope::Enveloped;
use azl_formats::eventlog::{self, LogErrorKind};
use azl_formats::manifest::SignedManifest;
use azl_formats::{BootConfig, ServiceTable};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Mutex;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static LARGEST: AtomicUsize = AtomicUsize::new(0);
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

// SAFETY: every call is forwarded to `System` with the caller's layout, so
// `System`'s guarantees hold; the counters are only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same layout contract as our caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), SeqCst) + layout.size();
            PEAK.fetch_max(live, SeqCst);
            LARGEST.fetch_max(layout.size(), SeqCst);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout (above).
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), SeqCst);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// (largest single allocation, peak live bytes above the start) while `f` runs.
fn measure<R>(f: impl FnOnce() -> R) -> (R, usize, usize) {
    let start = LIVE.load(SeqCst);
    PEAK.store(start, SeqCst);
    LARGEST.store(0, SeqCst);
    let r = f();
    let peak = PEAK.load(SeqCst).saturating_sub(start);
    (r, LARGEST.load(SeqCst), peak)
}

fn put_u32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_le_bytes());
}

/// The 60-byte log of the known defect: a Spec ID header that declares an
/// eventSize of ~4 GiB and ~1 G algorithms, then ends.
fn huge_count_log() -> Vec<u8> {
    let mut b = Vec::new();
    put_u32(&mut b, 0); // pcrIndex
    put_u32(&mut b, 3); // EV_NO_ACTION
    b.extend_from_slice(&[0; 20]);
    put_u32(&mut b, 0xFFFF_FFF0); // eventSize
    b.extend_from_slice(b"Spec ID Event03\0");
    put_u32(&mut b, 0); // platformClass
    b.extend_from_slice(&[0, 2, 2, 2]);
    put_u32(&mut b, 0x3FFF_FFF0); // numberOfAlgorithms, and nothing after it
    assert_eq!(b.len(), 60);
    b
}

#[test]
fn spec_id_algorithm_count_is_bounded_by_bytes_present() {
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let log = huge_count_log();
    let (res, largest, peak) = measure(|| eventlog::parse(&log));
    assert!(largest < 4096, "largest allocation {largest} bytes");
    assert!(peak < 4096, "peak {peak} bytes");
    let err = res.unwrap_err();
    assert!(
        matches!(
            err.kind,
            LogErrorKind::Truncated {
                what: "the Spec ID algorithm list",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.offset, 60, "{err}");
}

/// Postcard length prefixes (varints) that declare far more than follows.
fn huge_len_envelopes() -> Vec<(&'static str, Vec<u8>)> {
    // A varint of 2^32-1 and one of 2^63-ish.
    let big32: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0x0f];
    let big64: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
    let mut out = Vec::new();
    for big in [big32, big64] {
        let env = |magic: &[u8; 4], prefix: &[u8]| {
            let mut b = magic.to_vec();
            b.extend_from_slice(&1u16.to_le_bytes());
            b.extend_from_slice(prefix);
            b.extend_from_slice(big);
            b.extend_from_slice(&[1, 2, 3, 4]);
            b
        };
        // SignedManifest: manifest bytes (a Vec<u8>) first.
        out.push(("signed manifest", env(b"AZSM", &[])));
        // Manifest: board string first.
        out.push(("manifest", env(b"AZMN", &[])));
        // ServiceTable: the services Vec first.
        out.push(("service table", env(b"AZSV", &[])));
        // BootConfig: three short strings, a hostname, then the modules Vec.
        out.push((
            "boot config",
            env(b"AZBC", &[1, b'a', 1, b'b', 1, b'c', 1, b'd']),
        ));
        // Report: tier (varint 0), then the nonce Vec<u8>.
        out.push(("report", env(b"AZAR", &[0])));
    }
    out
}

/// postcard withholds a sequence's declared length as a size hint when
/// fewer bytes remain (`SeqAccess::size_hint`), and checks string and
/// byte lengths against the bytes left; serde caps any pre-allocation at
/// 1 MiB (`size_hint::cautious`). So a hostile envelope costs a small
/// multiple of its own size, never what its prefixes declare.
#[test]
fn envelope_length_prefixes_are_bounded() {
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for (what, bytes) in huge_len_envelopes() {
        let (err, largest, peak) = measure(|| match &bytes[..4] {
            b"AZSM" => SignedManifest::from_bytes(&bytes).err(),
            b"AZMN" => azl_formats::manifest::Manifest::from_bytes(&bytes).err(),
            b"AZSV" => ServiceTable::from_bytes(&bytes).err(),
            b"AZBC" => BootConfig::from_bytes(&bytes).err(),
            _ => Report::from_bytes(&bytes).err(),
        });
        assert!(err.is_some(), "{what}: decoded");
        let bound = 512 * bytes.len();
        assert!(largest <= bound, "{what}: largest allocation {largest}");
        assert!(peak <= bound, "{what}: peak {peak}");
    }
}
