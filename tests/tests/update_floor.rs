//! The anti-rollback floor in the TPM (docs/update.md "Anti-rollback"), end
//! to end in QEMU with swtpm: the NV floor follows the commits, and an
//! old boot state written back by someone with the disk cannot make the
//! device boot an older image signed with the same key.
use azl_e2e::floor::*;
use azl_e2e::update::{json_value, raw_disk, slot_of, write_slot_raw};
use azl_e2e::*;
use std::path::Path;

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

fn assert_floors(s: &serde_json::Value, running: &str, floor: u64, nv: u64) {
    assert_eq!(s["running"]["slot"], running, "running slot: {s}");
    assert_eq!(s["floor"], floor, "floor: {s}");
    assert_eq!(s["nv_floor"]["state"], "present", "nv floor: {s}");
    assert_eq!(s["nv_floor"]["floor"], nv, "nv floor: {s}");
    assert_eq!(s["nv_floor"]["protection"], "platform", "nv floor: {s}");
    assert_eq!(s["nv_floor"]["index"], "0x013A2E01", "nv floor: {s}");
}

/// v1 → v2 with a TPM: the NV floor is 1 from the first boot, stays 1
/// through install and trial, becomes 2 at the commit. Then the boot
/// state saved on the first boot (v1 committed and good, floor 1) is
/// written back: v1 is still intact in root-a and the state names its
/// exact manifest, so without the NV floor v1 would boot. It never does:
/// v2 boots, root-a is recorded bad with the reason, the floor is 2 again
/// and a v1 bundle is refused. Finally v1 is written straight into root-b
/// as well (no slot at or above the floor left): the device refuses to
/// boot rather than run v1.
#[test]
fn a_restored_boot_state_cannot_lower_the_nv_floor() {
    let f = fixture();
    let dir = tempdir();
    let d = dir.path();
    let out = device(&f, d);
    let disk = out.join("disk.img");

    // Boot 0: the first boot defines the NV index and raises it to the
    // factory floor.
    let b = step(
        &out,
        d,
        0,
        "echo release=$(cat /etc/release)\nst s0",
        &[],
        true,
    );
    assert_eq!(b.value("release"), "v1", "{}", b.dump());
    b.line("update: TPM NV floor index 0x013A2E01 defined (platform hierarchy, cannot be deleted)");
    b.line("update: TPM NV floor raised from 0 to the boot state's: security version 1");
    assert_floors(&json_value(&b, "s0"), "root-a", 1, 1);
    b.assert_clean_poweroff();
    let old_state = save_bootstate(&disk);

    // Boot 1: install v2 (the NV floor does not move).
    let stick = raw_disk(d, "stick.img", &read(&f.v2));
    let b = step(
        &out,
        d,
        1,
        "$U install $D1; echo install-rc=$?\nst s1",
        &[stick],
        true,
    );
    assert_eq!(b.value("install-rc"), "0", "{}", b.dump());
    assert_floors(&json_value(&b, "s1"), "root-a", 1, 1);
    b.assert_clean_poweroff();

    // Boot 2: v2's trial (NV still 1), committed by the gate (NV 2).
    let b = step(&out, d, 2, "st s2\ngate_wait\nst s3", &[], true);
    assert_floors(&json_value(&b, "s2"), "root-b", 1, 1);
    assert_eq!(b.value("gate"), "committed", "{}", b.dump());
    b.line("update: TPM NV floor: security version 2 (TPM NV index 0x013A2E01, platform: cannot be deleted)");
    assert_floors(&json_value(&b, "s3"), "root-b", 2, 2);
    b.assert_clean_poweroff();
    // tpm2-tools read the same index from the TPM's state: a bit field
    // (TPM_NT_BITS), platform-created, undeletable, bits 0 and 1 set.
    let (public, bits) = nv_floor_on_host(&out, d);
    assert!(public.contains("value: 0x62040424"), "{public}");
    assert_eq!(bits, [0, 0, 0, 0, 0, 0, 0, 3], "{public}");

    // The old state is written back. root-a still holds v1, as recorded.
    restore_bootstate(&disk, &old_state);
    let b = step(
        &out,
        d,
        3,
        "echo release=$(cat /etc/release)\nst s4",
        &[],
        true,
    );
    assert!(!b.has("release=v1"), "v1 booted\n{}", b.dump());
    b.line("!!! RECOVERY: the boot state's floor 1 is below the TPM NV floor 2");
    b.line("boot state: refusing root-a: security version 1 is below the TPM NV floor 2");
    assert_eq!(b.value("release"), "v2", "{}", b.dump());
    let s4 = json_value(&b, "s4");
    assert_floors(&s4, "root-b", 2, 2);
    assert_eq!(s4["committed"], "root-b", "{s4}");
    let ra = slot_of(&s4, "root-a");
    assert_eq!(ra["state"], "bad", "{s4}");
    assert_eq!(
        ra["failure"], "security version 1 is below the TPM NV floor 2",
        "{s4}"
    );
    assert!(
        s4["running"]["recovery"]
            .as_str()
            .is_some_and(|r| r.contains("below the TPM NV floor 2")),
        "{s4}"
    );
    b.assert_clean_poweroff();

    // Boot 4: a downgrade bundle is refused; rollback to root-a too.
    let down = raw_disk(d, "down.img", &read(&f.v1_root_a));
    let b = step(
        &out,
        d,
        4,
        "$U install $D1; echo down-rc=$?\n$U rollback; echo rollback-rc=$?\nst s5",
        &[down],
        true,
    );
    assert_eq!(b.value("down-rc"), "1", "{}", b.dump());
    b.line("update: refused: bundle has security version 1, below this device's floor 2");
    assert_eq!(b.value("rollback-rc"), "1", "{}", b.dump());
    assert_floors(&json_value(&b, "s5"), "root-b", 2, 2);
    b.assert_clean_poweroff();

    // v1 written straight into root-b too, and the old state back again:
    // no slot is at the floor, so nothing boots (v1 never runs).
    write_slot_raw(&disk, "root-b", &read(&f.v1_root_b));
    restore_bootstate(&disk, &old_state);
    let b = step(&out, d, 5, "echo release=$(cat /etc/release)", &[], true);
    assert!(!b.has("release="), "a slot booted\n{}", b.dump());
    b.line("EMERGENCY: no slot verifies for recovery (the boot state's floor 1 is below the TPM NV floor 2");
    b.line("root-a: security version 1 is below the TPM NV floor 2");
    b.line("root-b: security version 1 is below the TPM NV floor 2");
    // The NV floor is still 2.
    let (_, bits) = nv_floor_on_host(&out, d);
    assert_eq!(bits, [0, 0, 0, 0, 0, 0, 0, 3]);
}

/// Without a TPM nothing changes but what status says about the NV floor.
#[test]
fn without_a_tpm_the_nv_floor_is_absent() {
    let dir = tempdir();
    let d = dir.path();
    let key = keygen(d, "fleet.key");
    let out = d.join("v1");
    std::fs::create_dir_all(&out).unwrap_or_default();
    let out = image(&key, d, "v1", "1.0.0", 1).build(&out);
    let b = step(&out, d, 0, "st s0", &[], false);
    let s0 = json_value(&b, "s0");
    assert_eq!(s0["floor"], 1, "{s0}");
    assert_eq!(s0["nv_floor"]["state"], "absent", "{s0}");
    b.line("update: no TPM: the anti-rollback floor is the boot state's only");
    b.assert_clean_poweroff();
}
