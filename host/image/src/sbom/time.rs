//! Seconds since the epoch as the UTC timestamp SPDX and SLSA want
//! (`YYYY-MM-DDThh:mm:ssZ`), computed, not read from the clock: builds
//! take the time from `SOURCE_DATE_EPOCH` so they stay reproducible.

/// `epoch` as `YYYY-MM-DDThh:mm:ssZ`.
pub fn utc(epoch: u64) -> String {
    let ((y, m, d), (h, mi, s)) = civil_time(epoch);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `epoch` as ((year, month, day), (hour, minute, second)) in UTC; the
/// one calendar conversion of the crate (also `imagegen inspect`'s).
pub fn civil_time(epoch: u64) -> ((u64, u64, u64), (u64, u64, u64)) {
    let secs = epoch % 86_400;
    (
        civil(epoch / 86_400),
        (secs / 3600, secs / 60 % 60, secs % 60),
    )
}

/// Days since 1970-01-01 as (year, month, day) in the proleptic Gregorian
/// calendar (H. Hinnant's `civil_from_days`, for non-negative days).
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn known_instants() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(utc(4_294_967_295), "2106-02-07T06:28:15Z");
    }
}
