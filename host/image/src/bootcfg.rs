//! The [`BootConfig`] init reads first: identity and the trial boot's
//! update policy from the image config, watchdog and timings from the
//! board, and the module paths in load order.
use crate::board::{Board, BootMethod};
use crate::config::ImageSettings;
use crate::modules::ModuleSet;
use azl_disk::Layout;
use azl_formats::manifest::PartitionKind;
use azl_formats::{BootConfig, BootControl, RootSpec, UpdatePolicy};

/// How long stage 1 waits for the disk's partitions to appear.
pub const ROOT_WAIT_S: u32 = 10;

/// The root spec of a disk image built into root slot `slot` (the slot
/// [`crate::diskimage::root_slot`] chose: `root-a` for `imagegen build`, the
/// bundle's `--slot` for `imagegen bundle`), and its data partition.
/// `partition` is that slot — the one a `fixed` image boots; with an A/B
/// boot state stage 1 picks the slot from the state and does not read it.
pub fn root_spec(layout: &Layout, slot: &str, allow_unsigned: bool) -> RootSpec {
    root_spec_for(layout, slot, allow_unsigned, BootMethod::Direct)
}

/// [`root_spec`] for a board whose firmware boots by `method`: with
/// `uefi` the backend is UEFI BootNext/BootOrder with the `boot`
/// partition as the ESP (the board file check ensures both exist).
pub fn root_spec_for(
    layout: &Layout,
    slot: &str,
    allow_unsigned: bool,
    method: BootMethod,
) -> RootSpec {
    let first = |kind: PartitionKind| {
        layout
            .partitions
            .iter()
            .find(|p| p.kind == kind)
            .map(|p| p.name.clone())
    };
    RootSpec {
        partition: slot.to_string(),
        data_partition: first(PartitionKind::Data),
        wait_s: ROOT_WAIT_S,
        allow_unsigned,
        // A/B slot choice by stage 1 when the layout has a boot state.
        boot_control: match (
            method,
            first(PartitionKind::BootState),
            first(PartitionKind::Boot),
        ) {
            (_, None, _) => BootControl::Fixed,
            (BootMethod::Uefi, Some(state_partition), Some(esp_partition)) => BootControl::Uefi {
                state_partition,
                esp_partition,
            },
            (_, Some(state_partition), _) => BootControl::InitramfsSelect { state_partition },
        },
        // The image config's `[update]`: set by [`compile`].
        update: UpdatePolicy::default(),
    }
}

pub fn compile(
    image: &ImageSettings,
    board: &Board,
    modules: &ModuleSet,
    root: Option<RootSpec>,
) -> BootConfig {
    BootConfig {
        image_name: image.name.clone(),
        image_version: image.version.clone(),
        board: board.name.clone(),
        hostname: image.hostname.clone(),
        modules: modules
            .modules
            .iter()
            .map(|m| m.install_path.clone())
            .collect(),
        watchdog: board.watchdog.clone(),
        emergency_reboot_delay_s: board.emergency_reboot_delay_s,
        shutdown_grace_ms: board.shutdown_grace_ms,
        // The slot's own `[update]` policy governs its trial boot.
        root: root.map(|r| RootSpec {
            update: image.update.clone(),
            ..r
        }),
    }
}
