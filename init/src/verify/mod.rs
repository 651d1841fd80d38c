//! Stage 1's verification of the root slot, before anything on it is used:
//! find the partition in the GPT ([`partition`], [`disk`]), check the signed manifest
//! ([`manifest`]), map the slot through dm-verity ([`verity`]) and hand the
//! verified device to `mount`; [`root`] runs these steps in order, and
//! [`health`] watches the mapping afterwards.
pub mod disk;
pub mod health;
pub mod manifest;
pub mod partition;
pub mod root;
pub mod verity;
