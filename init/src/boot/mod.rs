//! The first things PID 1 does, before any verification: logging, the
//! pseudo filesystems ([`mounts`]), the boot config, kernel modules, the
//! hostname and loopback ([`identity`]), the watchdog, and the emergency
//! state every later failure ends in.
pub mod config;
pub mod emergency;
pub mod identity;
pub mod logger;
pub mod modules;
pub mod mounts;
pub mod watchdog;
