//! Byte sizes as people read them in build summaries and budget
//! messages (`1.5 KiB`, `3.0 MiB`).

/// `bytes` in B, KiB or MiB with one decimal.
pub fn human(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
    } else if bytes >= 1 << 10 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{bytes} B")
    }
}
