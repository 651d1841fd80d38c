//! One boot partition and one output directory, two root slots. After an
//! update (initramfs-select) the disk holds the factory build's boot
//! partition — kernel and initramfs that boot every slot — and a slot
//! written from a bundle whose manifest records *its own* build's boot
//! partition, kernel and initramfs, which were never installed. Each slot
//! is checked against its own manifest; the shared parts are checked
//! against the one slot whose build they are.
use super::{check, SlotReport};

/// The boot partition's checks (`sha256 BOOT`, `kernel on BOOT`,
/// `initramfs on BOOT`) of `s`, as (index, ok).
fn boot_checks(s: &SlotReport, boot: &str) -> Vec<(usize, bool)> {
    let names = [
        format!("sha256 {boot}"),
        format!("kernel on {boot}"),
        format!("initramfs on {boot}"),
    ];
    s.checks
        .iter()
        .enumerate()
        .filter(|(_, c)| names.contains(&c.name))
        .map(|(i, c)| (i, c.ok))
        .collect()
}

/// The slot the boot partition belongs to: its manifest's boot checks all
/// pass. When one does, the other slots' boot checks are replaced by one
/// passing `boot partition` check that says whose it is; when none does,
/// every failure stays (the boot partition is nobody's build).
pub(super) fn share_boot(slots: &mut [SlotReport], boot: &str) {
    let owner = slots
        .iter()
        .find(|s| {
            let c = boot_checks(s, boot);
            !c.is_empty() && c.iter().all(|(_, ok)| *ok)
        })
        .map(|s| s.partition.clone());
    let Some(owner) = owner else { return };
    for s in slots.iter_mut().filter(|s| s.partition != owner) {
        let drop: Vec<usize> = boot_checks(s, boot).into_iter().map(|(i, _)| i).collect();
        if drop.is_empty() {
            continue;
        }
        let mut i = 0;
        s.checks.retain(|_| {
            let keep = !drop.contains(&i);
            i += 1;
            keep
        });
        s.checks.push(check(
            format!("{boot} partition"),
            true,
            format!(
                "shared: its kernel and initramfs are {owner}'s build and boot this slot too; this slot's own were not installed"
            ),
        ));
    }
}

/// Whether the output directory's files (kernel, initramfs, services.tbl)
/// are compared with slot `slot`'s manifest: only the slot the
/// directory's boot config names (the slot its build filled), or every
/// slot when it names none.
pub(super) fn dir_is_for(dir_root: Option<&str>, slot: &str) -> bool {
    dir_root.is_none_or(|r| r == slot)
}
