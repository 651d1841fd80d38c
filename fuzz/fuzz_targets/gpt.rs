//! The GPT reader stage 1 and `imagegen inspect` share (azl_formats::gpt),
//! on a fuzzed disk image: the whole input is the disk, so both the primary
//! (LBA 1) and the backup path (last LBA, taken when the primary fails) are
//! reached; then each copy on its own, and the duplicate-name lookup.
#![no_main]
use azl_formats::gpt::{self, Header, SECTOR};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let len = data.len() as u64;
    let read = |offset: u64, n: usize| -> Result<Vec<u8>, ()> {
        let start = usize::try_from(offset).map_err(|_| ())?;
        let end = start.saturating_add(n).min(data.len());
        Ok(data.get(start..end).unwrap_or(&[]).to_vec())
    };
    if let Ok(g) = gpt::read(len, read) {
        for e in &g.entries {
            // Every entry the reader returns lies inside the disk.
            assert!(e.first_lba <= e.last_lba);
            assert!(e.last_lba < len / SECTOR);
            let _ = (e.offset(), e.size());
            let _ = g.unique(&e.name);
        }
        let _ = g.unique("root-a");
    }
    let sectors = len / SECTOR;
    for lba in [1, sectors.saturating_sub(1)] {
        let at = usize::try_from(lba.saturating_mul(SECTOR)).unwrap_or(usize::MAX);
        let Some(sector) = data.get(at..) else {
            continue;
        };
        if let Ok(h) = Header::parse(sector, lba, sectors) {
            let off = usize::try_from(h.array_offset()).unwrap_or(usize::MAX);
            if let Some(array) = data.get(off..) {
                let _ = h.entries(array);
            }
        }
    }
});
