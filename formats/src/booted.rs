//! What stage 1 booted, for stage 2 and the `update` command: the slot,
//! whether this boot is its one trial, the digest and security version of
//! the manifest it verified, and — after a damaged boot state — why it
//! booted in recovery. Stage 1 writes it to [`crate::paths::BOOTED`]
//! (tmpfs, gone at the next boot), so it is never stale.
use crate::bootstate::{Slot, Text};
use crate::envelope::Enveloped;
use crate::manifest::Digest;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Booted {
    /// The slot whose root is mounted.
    pub slot: Slot,
    /// This boot is the slot's one trial (it must commit or it is failed).
    pub trial: bool,
    /// sha256 of the slot's SignedManifest envelope as stage 1 verified it.
    pub manifest_sha256: Digest,
    pub security_version: u32,
    /// Set when the boot state was unreadable and stage 1 rebuilt it.
    pub recovery: Option<Text>,
}

impl Enveloped for Booted {
    const MAGIC: [u8; 4] = *b"AZBT";
    const VERSION: u16 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let b = Booted {
            slot: Slot::B,
            trial: true,
            manifest_sha256: [3; 32],
            security_version: 7,
            recovery: Some(crate::bootstate::text("both copies corrupt")),
        };
        let bytes = b.to_bytes().unwrap();
        assert_eq!(&bytes[..4], b"AZBT");
        assert_eq!(Booted::from_bytes(&bytes).unwrap(), b);
        assert!(Booted::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    }
}
