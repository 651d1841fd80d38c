//! Clocks: milliseconds/microseconds since boot or on the monotonic clock.
use nix::time::{clock_gettime, ClockId};

/// (seconds, nanoseconds) of `clock`; zero if the kernel refuses.
fn now(clock: ClockId) -> (u64, u64) {
    clock_gettime(clock)
        .map(|t| (t.tv_sec() as u64, t.tv_nsec() as u64))
        .unwrap_or((0, 0))
}

/// Time since the kernel started, counting suspend (CLOCK_BOOTTIME), in ms.
pub fn boot_ms() -> u64 {
    let (s, ns) = now(ClockId::CLOCK_BOOTTIME);
    s * 1000 + ns / 1_000_000
}

/// CLOCK_MONOTONIC as (seconds, microseconds).
pub fn monotonic() -> (u64, u32) {
    let (s, ns) = now(ClockId::CLOCK_MONOTONIC);
    (s, (ns / 1000) as u32)
}
