//! The [`BootConfig`] init reads first: identity from the image config,
//! watchdog and timings from the board, and the module paths in load order.
use crate::board::Board;
use crate::config::ImageSettings;
use crate::modules::ModuleSet;
use azl_formats::BootConfig;

pub fn compile(image: &ImageSettings, board: &Board, modules: &ModuleSet) -> BootConfig {
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
        root: None,
    }
}
