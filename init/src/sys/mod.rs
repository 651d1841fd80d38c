//! Every foreign call of init that needs `unsafe`, each behind a safe
//! function with typed `#[repr(C)]` arguments (sizes asserted at compile
//! time). This is the only module allowed `unsafe` (`#![deny(unsafe_code)]`
//! crate-wide); every block carries a `// SAFETY:` line.
pub mod blkpg;
pub mod dm;
pub mod fsflags;
pub mod net;
pub mod process;
pub mod time;
pub mod watchdog;
