//! EFI load options, BootOrder and efivarfs files as stage 1 reads them
//! from the firmware's variables.
#![no_main]
use azl_formats::efi::{self, LoadOption};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(o) = LoadOption::decode(data) {
        let _ = o.cmdline();
        // What we encode from a decoded option decodes to the same fields
        // (the hardware nodes of a firmware-made path are not re-encoded).
        if o.description.chars().all(|c| c != '\0' && c != char::REPLACEMENT_CHARACTER)
            && o.file_path.as_deref().is_none_or(|p| !p.contains('\0'))
        {
            let again = LoadOption::decode(&o.encode()).expect("re-decodes");
            assert_eq!(again.description, o.description);
            assert_eq!(again.hard_drive, o.hard_drive);
            assert_eq!(again.file_path, o.file_path);
            assert_eq!(again.optional_data, o.optional_data);
        }
    }
    if let Ok((_, value)) = efi::efivarfs_decode(data) {
        if let Ok(order) = efi::decode_boot_order(value) {
            assert_eq!(efi::encode_boot_order(&order), value);
        }
        let _ = efi::decode_u16("BootNext", value);
    }
});
