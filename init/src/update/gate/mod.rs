//! The trial boot's health gate (docs/update.md, "Trial and commit: the
//! health gate"): on the one trial boot of a newly installed slot, PID 1
//! watches the supervisor until every service is ready, holds while none
//! exits or restarts, runs the image's health check, replays its own
//! event log against the slot's signed reference values, and then commits
//! the trial (policy `local`), leaves the commit to `update commit`
//! (`manual`), or waits for a remote verifier's signed approval
//! (`attested`, [`approval`]). Any failure fails the trial with a reason naming the gate
//! and reboots into the committed slot.
//!
//! [`decide`] and [`selfcheck`] are pure (tested without processes);
//! [`driver`] does the spawning, reading and writing from the event loop.
pub mod approval;
pub mod decide;
pub mod driver;
pub mod selfcheck;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_uefi;

pub use driver::Driver;
