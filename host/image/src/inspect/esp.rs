//! The ESP of a UEFI board (formats::efi): one FAT partition that holds
//! each slot's own kernel files under `EFI/azl/<slot>/`. An update writes
//! the other slot's files into it, so after the first update its bytes are
//! no build's: neither manifest's recorded ESP digest can match. Each
//! slot is then checked by its own files against its own manifest
//! (kernel, initramfs, load-option data, command line), which is what the
//! firmware loads for that slot.
use super::{check, Check};
use azl_formats::bootstate::Slot;
use azl_formats::efi::{self, EspFile};
use azl_formats::manifest::{Digest, FileDigest, Hex, Manifest};

/// The slot whose entry a UEFI build's manifest describes (its command
/// line names it, `azl.slot=`); `None` for other boot methods.
pub(super) fn slot_of(m: &Manifest) -> Option<Slot> {
    efi::started_slot(&m.cmdline)
}

fn digest_of(bytes: &[u8]) -> FileDigest {
    FileDigest {
        size: bytes.len() as u64,
        sha256: azl_formats::sha256(bytes),
    }
}

/// The files of `slot` on the ESP as `m` implies them: (what, path,
/// expected size and digest).
pub(super) fn files(m: &Manifest, slot: Slot) -> Vec<(&'static str, String, FileDigest)> {
    let path = |f| format!("/{}", efi::esp_path(slot, f));
    vec![
        ("kernel", path(EspFile::Kernel), m.kernel.clone()),
        ("initramfs", path(EspFile::Initrd), m.initramfs.clone()),
        (
            "load options",
            path(EspFile::Options),
            digest_of(&efi::options_data(&m.cmdline)),
        ),
        (
            "cmdline",
            path(EspFile::Cmdline),
            digest_of(format!("{}\n", m.cmdline).as_bytes()),
        ),
    ]
}

/// The `sha256 <esp>` check of a UEFI slot whose ESP digest differs from
/// its build's: not a failure by itself (the files are checked one by
/// one), but said.
pub(super) fn changed(name: String, want: &Digest, got: &Digest, slot: Slot) -> Check {
    check(
        name,
        true,
        format!(
            "differs from this build's ESP ({} → {}): updates write each slot's files into the \
             one ESP; this slot's files under /{} are checked one by one",
            Hex(want.get(..8).unwrap_or_default()),
            Hex(got.get(..8).unwrap_or_default()),
            efi::esp_dir(slot)
        ),
    )
}
