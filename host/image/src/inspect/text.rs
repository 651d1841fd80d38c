//! The human-readable rendering of a [`Report`]: aligned key/value lines
//! and tables, problems last, ending in `result: OK` or `result: FAILED`.
use super::{
    BundleReport, Check, DiskReport, ManifestView, Report, SigStatus, Signature, SlotReport,
    SlotState,
};
use std::fmt::{self, Write};

/// Width of the key column.
const KEY: usize = 16;

pub(super) fn render(r: &Report, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if let Some(b) = &r.bundle {
        bundle(b, r.manifests.first(), f)?;
        writeln!(f)?;
    }
    if let Some(d) = &r.disk {
        disk(d, f)?;
        for s in &r.slots {
            writeln!(f)?;
            let m = r.manifests.iter().find(|m| m.slot_number == s.number);
            slot(s, m, f)?;
        }
        writeln!(f)?;
    }
    if !r.files.is_empty() {
        writeln!(f, "output directory {}", r.path)?;
        let w = r
            .files
            .iter()
            .map(|x| x.name.len() + 2)
            .max()
            .unwrap_or(0)
            .max(KEY);
        for file in &r.files {
            writeln!(
                f,
                "  {:<w$}{:>10}  sha256 {}",
                file.name,
                human(file.size),
                file.sha256
            )?;
        }
        if let Some(c) = &r.boot_config {
            kv(f, "image", &format!("{} {}", c.image_name, c.image_version))?;
            kv(f, "board", &c.board)?;
            kv(f, "hostname", &c.hostname)?;
            kv(f, "modules", &c.modules.to_string())?;
            match &c.root_partition {
                Some(p) => {
                    let mut s = format!("{p} (verified root");
                    if c.allow_unsigned == Some(true) {
                        s.push_str(", UNSIGNED manifests allowed");
                    }
                    s.push(')');
                    if let Some(d) = &c.data_partition {
                        let _ = write!(s, ", data {d}");
                    }
                    kv(f, "root", &s)?;
                }
                None => kv(f, "root", "initramfs only")?,
            }
        }
        if let Some(s) = &r.services {
            let list = if s.is_empty() {
                "(none)".to_string()
            } else {
                s.join(" ")
            };
            kv(f, "services", &list)?;
        }
        writeln!(f)?;
    }
    if let Some(c) = &r.sbom {
        writeln!(
            f,
            "sbom: {}{}\n",
            if c.ok { "" } else { "FAILED: " },
            c.detail
        )?;
    }
    if r.problems.is_empty() {
        writeln!(f, "result: OK")
    } else {
        let n = r.problems.len();
        writeln!(
            f,
            "result: FAILED ({n} problem{})",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &r.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

fn kv(f: &mut fmt::Formatter<'_>, key: &str, value: &str) -> fmt::Result {
    writeln!(f, "  {key:<KEY$}{value}")
}

fn disk(d: &DiskReport, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "disk image {}", d.path)?;
    kv(
        f,
        "size",
        &format!("{}, {}-byte sectors", bytes(d.size), d.sector_size),
    )?;
    kv(f, "disk GUID", &d.disk_guid)?;
    kv(f, "GPT", &format!("{} copy", d.gpt_copy))?;
    writeln!(f)?;
    writeln!(f, "partitions (GPT entries)")?;
    let opt = |v: Option<u64>| v.map_or_else(|| "-".to_string(), human);
    let name_w = d
        .partitions
        .iter()
        .map(|p| p.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    writeln!(
        f,
        "  {:>2}  {:<name_w$}  {:<9}  {:>10}  {:>10}  {:>10}  {:>10}  {:>21}",
        "#", "name", "kind", "offset", "size", "used", "free", "sectors"
    )?;
    for p in &d.partitions {
        writeln!(
            f,
            "  {:>2}  {:<name_w$}  {:<9}  {:>10}  {:>10}  {:>10}  {:>10}  {:>21}",
            p.number,
            p.name,
            p.kind.unwrap_or("?"),
            human(p.offset),
            human(p.size),
            opt(p.used),
            opt(p.free),
            format!("{}..={}", p.first_lba, p.last_lba)
        )?;
    }
    writeln!(
        f,
        "  {:>2}  {:<name_w$}  {:<36}  partition GUID",
        "#", "name", "type GUID"
    )?;
    for p in &d.partitions {
        writeln!(
            f,
            "  {:>2}  {:<name_w$}  {:<36}  {}",
            p.number, p.name, p.type_guid, p.part_guid
        )?;
    }
    Ok(())
}

fn bundle(b: &BundleReport, m: Option<&ManifestView>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "update bundle {}", b.path)?;
    kv(f, "size", &bytes(b.size))?;
    if let Some(d) = &b.sha256 {
        kv(f, "sha256", d)?;
    }
    if let Some(slot) = &b.slot {
        let size = b
            .slot_size
            .map_or_else(String::new, |n| format!(", a {} partition", human(n)));
        kv(f, "target slot", &format!("{slot}{size}"))?;
    }
    if let Some(m) = m {
        kv(f, "board", &m.board)?;
        kv(f, "image", &format!("{} {}", m.image_name, m.image_version))?;
        kv(f, "verity root", &m.rootfs.verity.root_hash)?;
    }
    if let Some(sv) = b.security_version {
        kv(f, "security", &format!("version {sv}"))?;
    }
    if let Some(s) = &b.manifest_signature {
        kv(f, "manifest", &signature(s))?;
    }
    if let Some(s) = &b.header_signature {
        kv(f, "header", &signature(s))?;
    }
    if let Some(h) = &b.header {
        let min = h
            .min_from_security_version
            .map_or_else(|| "any".to_string(), |n| format!("{n} or later"));
        kv(f, "installs over", &format!("security version {min}"))?;
        writeln!(f, "  payloads")?;
        for p in &h.payloads {
            writeln!(
                f,
                "    {:<10}  at byte {:>10}  {:>10}  sha256 {}",
                p.kind,
                p.offset,
                human(p.size),
                p.sha256
            )?;
        }
    }
    checks(&b.checks, f)
}

fn checks(checks: &[Check], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if !checks.is_empty() {
        writeln!(f, "  checks")?;
        for c in checks {
            writeln!(
                f,
                "    {:<4}  {}: {}",
                if c.ok { "ok" } else { "FAIL" },
                c.name,
                c.detail
            )?;
        }
    }
    Ok(())
}

fn signature(s: &Signature) -> String {
    let id = s.key_id.as_deref().unwrap_or("?");
    match s.status {
        SigStatus::Verified => format!(
            "signed by key {id}, verified (public key {})",
            s.key_file.as_deref().unwrap_or("?")
        ),
        SigStatus::Unverified => {
            format!("signed by key {id}, NOT verified (no public key with this id; pass --key)")
        }
        SigStatus::Unsigned => "UNSIGNED (insecure)".to_string(),
        SigStatus::Invalid => format!(
            "INVALID: {}",
            s.reason.as_deref().unwrap_or("does not verify")
        ),
    }
}

fn slot(s: &SlotReport, m: Option<&ManifestView>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(
        f,
        "slot {} (GPT entry #{}, manifest region at byte {})",
        s.partition, s.number, s.region_offset
    )?;
    match s.state {
        SlotState::Empty => kv(f, "manifest", "none (region is empty)")?,
        SlotState::Invalid => kv(
            f,
            "manifest",
            &format!("INVALID: {}", s.error.as_deref().unwrap_or("unreadable")),
        )?,
        SlotState::Manifest => {}
    }
    if let Some(m) = m {
        kv(f, "signature", &signature(&m.signature))?;
        if let Some(why) = &s.not_checked {
            kv(f, "checks", &format!("NOT RUN: {why}"))?;
        }
        kv(f, "board", &m.board)?;
        kv(f, "image", &format!("{} {}", m.image_name, m.image_version))?;
        kv(f, "security", &format!("version {}", m.security_version))?;
        kv(
            f,
            "build epoch",
            &format!("{} ({})", m.build_epoch, utc(m.build_epoch)),
        )?;
        kv(f, "disk GUID", &m.disk_guid)?;
        kv(f, "cmdline", &m.cmdline)?;
        kv(
            f,
            "kernel",
            &format!("{}  sha256 {}", bytes(m.kernel.size), m.kernel.sha256),
        )?;
        kv(
            f,
            "initramfs",
            &format!("{}  sha256 {}", bytes(m.initramfs.size), m.initramfs.sha256),
        )?;
        kv(
            f,
            "service table",
            &format!("sha256 {}", m.service_table_sha256),
        )?;
        kv(f, "sbom", &format!("sha256 {}", m.sbom_sha256))?;
        kv(
            f,
            "lock",
            &m.lock_sha256
                .as_ref()
                .map_or("(no packages)".to_string(), |d| format!("sha256 {d}")),
        )?;
        let r = &m.rootfs;
        kv(
            f,
            "rootfs",
            &format!(
                "partition {}, data size {}",
                r.partition,
                bytes(r.data_size)
            ),
        )?;
        let v = &r.verity;
        kv(f, "verity root", &v.root_hash)?;
        kv(
            f,
            "verity salt",
            if v.salt.is_empty() { "(none)" } else { &v.salt },
        )?;
        kv(f, "verity uuid", &v.uuid)?;
        kv(
            f,
            "verity blocks",
            &format!(
                "{} data blocks of {} bytes, hash blocks of {} bytes",
                v.data_blocks, v.data_block_size, v.hash_block_size
            ),
        )?;
        kv(
            f,
            "verity area",
            &format!("at byte {}, {}", v.hash_offset, bytes(v.hash_size)),
        )?;
        writeln!(f, "  partition table (as recorded)")?;
        let name_w = m
            .partitions
            .iter()
            .map(|p| p.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        for p in &m.partitions {
            writeln!(
                f,
                "    {:<name_w$}  {:<9}  offset {:>12}  size {:>12}  sha256 {}",
                p.name,
                p.kind,
                p.offset,
                p.size,
                p.sha256.as_deref().unwrap_or("-")
            )?;
            writeln!(
                f,
                "    {:<name_w$}  {:<9}  type {}  guid {}",
                "", "", p.type_guid, p.part_guid
            )?;
        }
    }
    if let Some(l) = &s.layout {
        writeln!(f, "  sizes")?;
        let row = |f: &mut fmt::Formatter<'_>, k: &str, v: String| writeln!(f, "    {k:<14}{v}");
        match l.squashfs_size {
            Some(n) => row(
                f,
                "squashfs",
                format!("{}, padded to {}", bytes(n), bytes(l.data_size)),
            )?,
            None => row(
                f,
                "squashfs",
                format!("? (data size {})", bytes(l.data_size)),
            )?,
        }
        row(f, "verity tree", bytes(l.verity_size))?;
        row(f, "manifest", bytes(l.manifest_region))?;
        row(f, "free", bytes(l.free))?;
        row(f, "partition", bytes(l.partition_size))?;
    }
    if let Some(sq) = &s.squashfs {
        if sq.error.is_none() || sq.bytes_used > 0 {
            kv(
                f,
                "squashfs",
                &format!(
                    "{}, {} blocks, {} inodes, mtime {}",
                    sq.compression,
                    human(u64::from(sq.block_size)),
                    sq.inodes,
                    sq.mod_time
                ),
            )?;
        }
        if !sq.dirs.is_empty() {
            writeln!(f, "  rootfs by top-level entry")?;
            let w = sq
                .dirs
                .iter()
                .map(|d| d.path.len())
                .max()
                .unwrap_or(0)
                .max(12);
            for d in &sq.dirs {
                writeln!(
                    f,
                    "    {:<w$}  {:>10}  {:>7} entr{}",
                    d.path,
                    human(d.bytes),
                    d.entries,
                    if d.entries == 1 { "y" } else { "ies" }
                )?;
            }
        }
    }
    checks(&s.checks, f)
}

/// `1536` → `1.5 KiB`; below 1 KiB, `N B`.
pub(super) fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in UNITS.iter().skip(1) {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// `N bytes (human)`.
fn bytes(n: u64) -> String {
    if n < 1024 {
        format!("{n} bytes")
    } else {
        format!("{n} bytes ({})", human(n))
    }
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC`.
pub(super) fn utc(secs: u64) -> String {
    let ((year, month, day), (h, m, s)) = crate::sbom::time::civil_time(secs);
    format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02} UTC")
}
