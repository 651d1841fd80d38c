//! The GPT writer against the one reading rule (`azl_formats::gpt`, the
//! device's reader) and `sgdisk`, and `read_table` / `read_gpt` on damaged
//! and hostile tables.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code: a failed unwrap is a failed test
use azl_disk::{self as disk, DiskError, GptProblem, Layout, PartSpec, TableKind, MIB};
use azl_formats::gpt::{self as fgpt, GptError, Header, Which};
use azl_formats::manifest::PartitionKind;
use std::path::{Path, PathBuf};
use std::process::Command;

fn placed() -> disk::Placed {
    let spec = |name: &str, kind, size| PartSpec {
        name: name.into(),
        kind,
        size,
    };
    disk::place(
        &Layout {
            table: TableKind::Gpt,
            partitions: vec![
                spec("boot", PartitionKind::Boot, MIB),
                spec("root-a", PartitionKind::Root, 2 * MIB),
                spec("root-b", PartitionKind::Root, 2 * MIB),
                spec("bootstate", PartitionKind::BootState, MIB),
                spec("data", PartitionKind::Data, 8 * MIB),
            ],
        },
        b"gpt-read-test",
    )
    .unwrap()
}

fn written(dir: &Path) -> (PathBuf, disk::Placed) {
    let p = placed();
    let path = dir.join("d.img");
    disk::write_disk(&path, &p, &[]).unwrap();
    (path, p)
}

fn formats_read(bytes: &[u8]) -> Result<fgpt::Gpt, fgpt::ReadError<()>> {
    fgpt::read(bytes.len() as u64, |o, n| {
        let o = o as usize;
        Ok(bytes
            .get(o..(o + n).min(bytes.len()))
            .unwrap_or(&[])
            .to_vec())
    })
}

#[test]
fn writer_output_passes_the_formats_reader_and_sgdisk() {
    let dir = tempfile::tempdir().unwrap();
    let (path, p) = written(dir.path());
    let bytes = std::fs::read(&path).unwrap();
    let sectors = bytes.len() as u64 / 512;

    // The device's reader: primary used, every entry as placed.
    let g = formats_read(&bytes).unwrap();
    assert_eq!(g.copy, Which::Primary);
    assert_eq!(g.primary_error, None);
    assert_eq!(g.header.disk_guid, p.disk_guid);
    assert_eq!(g.header.alternate_lba, sectors - 1);
    assert_eq!(g.entries.len(), p.partitions.len());
    for (e, q) in g.entries.iter().zip(&p.partitions) {
        assert_eq!(e.name, q.spec.name);
        assert_eq!((e.offset(), e.size()), (q.offset, q.size), "{}", e.name);
        assert_eq!((e.type_guid, e.part_guid), (q.type_guid, q.part_guid));
    }
    // The backup on its own passes the same checks, with the same entries.
    let last = sectors - 1;
    let b = Header::parse(&bytes[last as usize * 512..], last, sectors).unwrap();
    let off = b.array_offset() as usize;
    let be = b
        .entries(&bytes[off..off + b.array_bytes() as usize])
        .unwrap();
    assert_eq!(be, g.entries);
    assert_eq!(b.alternate_lba, 1);

    // read_table/read_gpt: no problems, the same view.
    let (f, len) = disk::open_image(&path).unwrap();
    let t = disk::read_table(&path, &f, len).unwrap();
    assert_eq!(t.problems, vec![]);
    assert_eq!(t.entries, g.entries);
    assert_eq!(disk::read_gpt(&path).unwrap(), t.info);

    // sgdisk agrees it is a sound table.
    let out = Command::new("sgdisk")
        .arg("-v")
        .arg(&path)
        .output()
        .expect("sgdisk (Debian gdisk, installed by scripts/setup.sh)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("No problems found"), "{text}");
}

/// Re-seal a header sector (and its entry array) after an edit: the array
/// CRC into the header, then the header CRC.
fn reseal(bytes: &mut [u8], header_lba: usize) {
    let h = header_lba * 512;
    let array_lba = u64::from_le_bytes(bytes[h + 72..h + 80].try_into().unwrap()) as usize;
    let count = u32::from_le_bytes(bytes[h + 80..h + 84].try_into().unwrap()) as usize;
    let size = u32::from_le_bytes(bytes[h + 84..h + 88].try_into().unwrap()) as usize;
    let a = array_lba * 512;
    let crc = fgpt::crc32(&bytes[a..a + count * size]);
    bytes[h + 88..h + 92].copy_from_slice(&crc.to_le_bytes());
    bytes[h + 16..h + 20].fill(0);
    let crc = fgpt::crc32(&bytes[h..h + 92]);
    bytes[h + 16..h + 20].copy_from_slice(&crc.to_le_bytes());
}

/// Regression: the host's own reader accepted first_usable = 0 with a
/// partition from LBA 0 (over the protective MBR and the primary GPT),
/// CRCs intact. The formats reader refuses it, so read_gpt/read_table do.
#[test]
fn first_usable_zero_over_the_mbr_and_gpt_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = written(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() / 512 - 1;
    for (header, array) in [(1usize, 2usize), (last, last - 32)] {
        let h = header * 512;
        bytes[h + 40..h + 48].copy_from_slice(&0u64.to_le_bytes());
        // Entry 1 now starts at LBA 0.
        let e = array * 512;
        bytes[e + 32..e + 40].copy_from_slice(&0u64.to_le_bytes());
        reseal(&mut bytes, header);
    }
    std::fs::write(&path, &bytes).unwrap();
    let e = disk::read_gpt(&path).unwrap_err();
    match &e {
        DiskError::Gpt {
            problem: GptProblem::Unreadable { primary, backup },
            ..
        } => {
            assert!(
                matches!(primary, GptError::UsableRange { first: 0, .. }),
                "{e}"
            );
            assert!(
                matches!(backup, GptError::UsableRange { first: 0, .. }),
                "{e}"
            );
        }
        other => panic!("{other}"),
    }
    let text = e.to_string();
    assert!(text.starts_with(&path.display().to_string()), "{text}");
    assert!(text.contains("usable LBAs 0..="), "{text}");
}

#[test]
fn damaged_primary_is_read_from_the_backup_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = written(dir.path());
    let good = std::fs::read(&path).unwrap();
    let mut bytes = good.clone();
    bytes[512 + 8] ^= 1; // primary header CRC no longer matches
    std::fs::write(&path, &bytes).unwrap();
    let (f, len) = disk::open_image(&path).unwrap();
    let t = disk::read_table(&path, &f, len).unwrap();
    assert_eq!(t.info.copy, Which::Backup);
    assert_eq!(t.info.partitions.len(), 5);
    assert!(
        matches!(
            &t.problems[..],
            [GptProblem::Copy {
                which: Which::Primary,
                error: GptError::HeaderCrc { lba: 1, .. }
            }]
        ),
        "{:?}",
        t.problems
    );
    let e = disk::read_gpt(&path).unwrap_err().to_string();
    assert!(e.contains("primary GPT: GPT header at LBA 1: CRC"), "{e}");

    // A damaged backup with a sound primary: primary used, backup reported.
    let mut bytes = good.clone();
    let n = bytes.len();
    bytes[n - 512 + 8] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let e = disk::read_gpt(&path).unwrap_err().to_string();
    assert!(e.contains("backup GPT: GPT header at LBA"), "{e}");

    // Copies that both verify but differ (a re-sealed primary with another
    // partition GUID): read from the primary, the disagreement reported.
    let mut bytes = good.clone();
    bytes[1024 + 16] ^= 1;
    reseal(&mut bytes, 1);
    std::fs::write(&path, &bytes).unwrap();
    let e = disk::read_gpt(&path).unwrap_err().to_string();
    assert!(
        e.ends_with("primary and backup GPT headers disagree on the partition entries"),
        "{e}"
    );

    // No protective MBR: the device does not care; the host reports it.
    let mut bytes = good.clone();
    bytes[510] = 0;
    std::fs::write(&path, &bytes).unwrap();
    let (f, len) = disk::open_image(&path).unwrap();
    let t = disk::read_table(&path, &f, len).unwrap();
    assert_eq!(t.problems, vec![GptProblem::NoProtectiveMbr]);
    assert_eq!(t.info.copy, Which::Primary);

    // A disk that grew: the primary's backup LBA is not the last sector.
    let mut grown = good.clone();
    grown.extend_from_slice(&[0u8; 512]);
    std::fs::write(&path, &grown).unwrap();
    let e = disk::read_gpt(&path).unwrap_err().to_string();
    assert!(e.contains("is not the last sector"), "{e}");
}

#[test]
fn open_image_refuses_a_fifo_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("disk.img");
    let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success());
    let t = std::time::Instant::now();
    let e = disk::read_gpt(&fifo).unwrap_err();
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
    assert!(
        matches!(&e, DiskError::NotRegular { kind: "FIFO", .. }),
        "{e}"
    );
    assert!(
        e.to_string().contains("is a FIFO, not a regular file"),
        "{e}"
    );
    let e = disk::read_gpt(dir.path()).unwrap_err();
    assert!(e.to_string().contains("directory"), "{e}");
}
