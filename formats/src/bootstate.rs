//! The A/B boot state: which root slot is committed, which one (if any)
//! gets a one-shot trial boot, what each slot holds, the anti-rollback
//! version floor and why the last trial failed.
//!
//! It lives in the `bootstate` partition as **two copies** of one record.
//! A writer always overwrites the copy that does *not* hold the current
//! state, with the next sequence number, so a power cut at any instant
//! leaves at least one intact copy: the torn one fails its checksum and the
//! reader takes the other. Readers take the valid copy with the higher
//! sequence number.
//!
//! ```text
//! copy (COPY_SIZE bytes, at COPY_OFFSETS[0] and COPY_OFFSETS[1])
//!   0   magic   [u8; 4]  "AZBS"
//!   4   format  u16 LE   FORMAT_VERSION
//!   6   len     u16 LE   bytes of body
//!   8   seq     u64 LE   sequence number, +1 per write
//!   16  body    [len]    postcard(BootState)
//!   ..  sha256  [32]     over bytes 0 .. 16+len
//!   ..  zero padding to COPY_SIZE
//! ```
//!
//! The transitions (install, trial, commit, failure, rollback) are pure
//! functions on [`BootState`] here, so the device's boot-control backends
//! and the host's tests apply the same rules. See `docs/update.md`.
use crate::manifest::Digest;
use core::fmt;
use serde::{Deserialize, Serialize};

/// Bytes of one copy.
pub const COPY_SIZE: usize = 4096;
/// Byte offsets of the two copies inside the partition (64 KiB apart, so
/// they never share a flash erase block or a 4 KiB sector).
pub const COPY_OFFSETS: [u64; 2] = [0, 64 * 1024];
/// The smallest `bootstate` partition that holds both copies.
pub const MIN_PARTITION_SIZE: u64 = 64 * 1024 + COPY_SIZE as u64;
/// Magic of a copy.
pub const MAGIC: [u8; 4] = *b"AZBS";
/// Layout version of a copy; readers refuse others.
pub const FORMAT_VERSION: u16 = 1;
/// Longest failure reason kept (longer ones are cut at a char boundary).
pub const REASON_MAX: usize = 120;

const HEAD: usize = 16;
const TAIL: usize = 32;
/// Longest body that fits a copy.
pub const BODY_MAX: usize = COPY_SIZE - HEAD - TAIL;

/// A root slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Slot {
    A,
    B,
}

impl Slot {
    pub const ALL: [Slot; 2] = [Slot::A, Slot::B];

    /// The other slot.
    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }

    /// Lower-case letter: `a` / `b`.
    pub fn letter(self) -> &'static str {
        match self {
            Slot::A => "a",
            Slot::B => "b",
        }
    }

    /// The GPT partition name of this slot's root (`root-a`, `root-b`).
    pub fn partition(self) -> &'static str {
        match self {
            Slot::A => "root-a",
            Slot::B => "root-b",
        }
    }

    /// The slot whose root partition is named `name`.
    pub fn from_partition(name: &str) -> Option<Slot> {
        Slot::ALL.into_iter().find(|s| s.partition() == name)
    }

    fn index(self) -> usize {
        match self {
            Slot::A => 0,
            Slot::B => 1,
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.partition())
    }
}

/// What a slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SlotState {
    /// Nothing was ever installed.
    Empty,
    /// An install is writing it: never bootable.
    Writing,
    /// Written and verified; waits for its one trial boot.
    Installed,
    /// Its trial boot has started and has not committed yet.
    Trying,
    /// Committed (or the factory image): bootable.
    Good,
    /// Its trial failed ([`SlotInfo::reason`] says why): never booted again
    /// until reinstalled.
    Bad,
}

/// A short, bounded text (a failure reason, a version string).
pub type Text = heapless::String<REASON_MAX>;

/// Cut `s` to [`REASON_MAX`] bytes at a char boundary.
pub fn text(s: &str) -> Text {
    let mut t = Text::new();
    for c in s.chars() {
        if t.push(c).is_err() {
            break;
        }
    }
    t
}

/// One slot's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotInfo {
    pub state: SlotState,
    /// The anti-rollback security version of the image in it.
    pub security_version: u32,
    /// The image's version string, for people.
    pub version: Text,
    /// The slot's manifest digest: sha256 of its SignedManifest envelope
    /// (the region's bytes after the length prefix,
    /// [`crate::manifest::region_body`]); equal to a bundle header's
    /// `manifest_sha256`.
    pub manifest_sha256: Digest,
    /// Why its last trial failed (with [`SlotState::Bad`]).
    pub reason: Text,
}

impl SlotInfo {
    pub fn empty() -> SlotInfo {
        SlotInfo {
            state: SlotState::Empty,
            security_version: 0,
            version: Text::new(),
            manifest_sha256: [0; 32],
            reason: Text::new(),
        }
    }

    /// Could stage 1 boot it (before the version floor check)?
    pub fn bootable(&self) -> bool {
        matches!(self.state, SlotState::Good | SlotState::Installed)
    }
}

/// The whole boot state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootState {
    /// The committed slot: booted unless a trial is pending.
    pub active: Slot,
    /// The slot that gets the next boot, once.
    pub trial: Option<Slot>,
    /// Lowest security version any slot may boot with.
    pub floor: u32,
    pub slots: [SlotInfo; 2],
}

/// Why a transition is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransitionError {
    /// Installing into the committed (running) slot.
    TargetIsActive(Slot),
    /// The slot is not in the state the step needs.
    WrongState {
        slot: Slot,
        state: SlotState,
        needed: SlotState,
    },
    /// The image's security version is below the floor.
    BelowFloor { security_version: u32, floor: u32 },
    /// The slot that is running is not the one named.
    NotBooted { booted: Slot, named: Slot },
}

impl fmt::Display for TransitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TargetIsActive(s) => {
                write!(f, "{s} is the committed slot; updates go to the other slot")
            }
            Self::WrongState {
                slot,
                state,
                needed,
            } => write!(f, "{slot} is {state:?}, this step needs {needed:?}"),
            Self::BelowFloor {
                security_version,
                floor,
            } => write!(
                f,
                "security version {security_version} is below the version floor {floor}"
            ),
            Self::NotBooted { booted, named } => {
                write!(f, "{named} is not the running slot ({booted} is)")
            }
        }
    }
}

/// What stage 1 does this boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootChoice {
    /// The slot to boot.
    pub slot: Slot,
    /// This boot is that slot's one trial.
    pub trial: bool,
    /// The state to write **before** booting, if it changed (the trial's
    /// try is used up, or a failed trial is recorded).
    pub write: Option<BootState>,
    /// A trial of this slot is pending but the firmware started another
    /// slot's kernel ([`BootState::choose_started`]): it was not used up;
    /// the backend must arm it again (UEFI `BootNext`).
    pub rearm: Option<Slot>,
}

impl BootState {
    /// The state of a freshly built disk: slot A holds the factory image
    /// and is committed; slot B is empty.
    pub fn factory(security_version: u32, version: &str, manifest_sha256: Digest) -> BootState {
        let mut a = SlotInfo::empty();
        a.state = SlotState::Good;
        a.security_version = security_version;
        a.version = text(version);
        a.manifest_sha256 = manifest_sha256;
        BootState {
            active: Slot::A,
            trial: None,
            floor: security_version,
            slots: [a, SlotInfo::empty()],
        }
    }

    pub fn slot(&self, s: Slot) -> &SlotInfo {
        match s {
            Slot::A => &self.slots[0],
            Slot::B => &self.slots[1],
        }
    }

    fn slot_mut(&mut self, s: Slot) -> &mut SlotInfo {
        match s {
            Slot::A => &mut self.slots[0],
            Slot::B => &mut self.slots[1],
        }
    }

    fn need(&self, s: Slot, needed: SlotState) -> Result<(), TransitionError> {
        let state = self.slot(s).state;
        if state == needed {
            Ok(())
        } else {
            Err(TransitionError::WrongState {
                slot: s,
                state,
                needed,
            })
        }
    }

    /// Step 1 of an install: mark `target` as being written (never
    /// bootable) before its first byte changes. Refused for the committed
    /// slot.
    pub fn begin_install(&self, target: Slot) -> Result<BootState, TransitionError> {
        if target == self.active {
            return Err(TransitionError::TargetIsActive(target));
        }
        let mut next = self.clone();
        if next.trial == Some(target) {
            next.trial = None;
        }
        *next.slot_mut(target) = SlotInfo {
            state: SlotState::Writing,
            ..SlotInfo::empty()
        };
        Ok(next)
    }

    /// Step 2: the slot is written and re-verified; give it one trial boot.
    pub fn finish_install(
        &self,
        target: Slot,
        security_version: u32,
        version: &str,
        manifest_sha256: Digest,
    ) -> Result<BootState, TransitionError> {
        self.need(target, SlotState::Writing)?;
        if security_version < self.floor {
            return Err(TransitionError::BelowFloor {
                security_version,
                floor: self.floor,
            });
        }
        let mut next = self.clone();
        *next.slot_mut(target) = SlotInfo {
            state: SlotState::Installed,
            security_version,
            version: text(version),
            manifest_sha256,
            reason: Text::new(),
        };
        next.trial = Some(target);
        Ok(next)
    }

    /// Stage 1's choice. `floor` is the effective floor: the maximum of
    /// [`BootState::floor`] and any hardware counter (a restored old copy
    /// cannot lower it). Returns `None` when no slot may boot.
    pub fn choose(&self, floor: u32) -> Option<BootChoice> {
        self.choose_started(floor, None)
    }

    /// [`BootState::choose`] on a boot method with one kernel per slot,
    /// where the firmware started `started`'s kernel (`None`: unknown, or
    /// one kernel for both). A pending trial of another slot than the one
    /// started (a power cut between the state write and the firmware's
    /// one-shot flag) is **not** used up: the committed slot boots, the
    /// trial stays pending and [`BootChoice::rearm`] names it.
    pub fn choose_started(&self, floor: u32, started: Option<Slot>) -> Option<BootChoice> {
        let floor = floor.max(self.floor);
        let allowed = |s: Slot| self.slot(s).security_version >= floor;
        let mut next = self.clone();
        let mut rearm = None;
        if let Some(t) = self.trial {
            match self.slot(t).state {
                SlotState::Installed if allowed(t) && started.is_some_and(|s| s != t) => {
                    rearm = Some(t);
                }
                SlotState::Installed if allowed(t) => {
                    next.slot_mut(t).state = SlotState::Trying;
                    next.trial = None;
                    return Some(BootChoice {
                        slot: t,
                        trial: true,
                        write: Some(next),
                        rearm: None,
                    });
                }
                _ => next.trial = None,
            }
        }
        // A trial that started and never committed: reset, hang, power loss.
        for s in Slot::ALL {
            if next.slot(s).state == SlotState::Trying {
                let info = next.slot_mut(s);
                info.state = SlotState::Bad;
                info.reason = text(
                    "the trial boot did not commit (reset, watchdog or power loss before commit)",
                );
            }
        }
        let pick = [self.active, self.active.other()]
            .into_iter()
            .find(|&s| next.slot(s).state == SlotState::Good && allowed(s))?;
        next.active = pick;
        let write = (next != *self).then_some(next);
        Some(BootChoice {
            slot: pick,
            trial: false,
            write,
            rearm,
        })
    }

    /// The running trial slot passed every gate: make it the committed
    /// slot and raise the floor to its security version.
    pub fn commit(&self, booted: Slot) -> Result<BootState, TransitionError> {
        self.need(booted, SlotState::Trying)?;
        let mut next = self.clone();
        next.active = booted;
        next.trial = None;
        next.floor = next.floor.max(self.slot(booted).security_version);
        let info = next.slot_mut(booted);
        info.state = SlotState::Good;
        info.reason = Text::new();
        Ok(next)
    }

    /// The running trial slot failed a gate: never boot it again; the
    /// committed slot boots next.
    pub fn fail_trial(&self, booted: Slot, reason: &str) -> Result<BootState, TransitionError> {
        self.need(booted, SlotState::Trying)?;
        let mut next = self.clone();
        next.trial = None;
        let info = next.slot_mut(booted);
        info.state = SlotState::Bad;
        info.reason = text(reason);
        Ok(next)
    }

    /// Stage 1 found `slot` unfit to boot (its manifest does not verify, is
    /// below the floor, or is not the one recorded): never boot it again
    /// until reinstalled. A pending trial of it is dropped.
    pub fn refuse(&self, slot: Slot, reason: &str) -> BootState {
        let mut next = self.clone();
        if next.trial == Some(slot) {
            next.trial = None;
        }
        let info = next.slot_mut(slot);
        info.state = SlotState::Bad;
        info.reason = text(reason);
        next
    }

    /// `update rollback` on the running system `booted`: during a trial,
    /// fail it; on a committed system, make the other slot the committed
    /// one if it is good and not below the floor.
    pub fn rollback(&self, booted: Slot) -> Result<BootState, TransitionError> {
        if self.slot(booted).state == SlotState::Trying {
            return self.fail_trial(booted, "rolled back by the operator");
        }
        if booted != self.active {
            return Err(TransitionError::NotBooted {
                booted,
                named: self.active,
            });
        }
        let other = booted.other();
        self.need(other, SlotState::Good)?;
        let sv = self.slot(other).security_version;
        if sv < self.floor {
            return Err(TransitionError::BelowFloor {
                security_version: sv,
                floor: self.floor,
            });
        }
        let mut next = self.clone();
        next.active = other;
        next.trial = None;
        Ok(next)
    }
}

/// Why a copy is not valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyError {
    /// All zero: never written.
    Blank,
    BadMagic([u8; 4]),
    UnsupportedFormat(u16),
    /// The declared body does not fit a copy.
    BadLength(u16),
    /// Torn or corrupted write.
    BadChecksum,
    /// The checksum matches but the body does not decode.
    Body(postcard::Error),
    /// Fewer than [`COPY_SIZE`] bytes were given.
    Short(usize),
}

impl fmt::Display for CopyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Blank => f.write_str("blank (never written)"),
            Self::BadMagic(m) => write!(f, "bad magic {m:02x?}"),
            Self::UnsupportedFormat(v) => {
                write!(f, "format version {v} (this build reads {FORMAT_VERSION})")
            }
            Self::BadLength(n) => write!(f, "body length {n} does not fit a {COPY_SIZE}-byte copy"),
            Self::BadChecksum => f.write_str("checksum mismatch (torn or corrupted write)"),
            Self::Body(e) => write!(f, "body does not decode: {e}"),
            Self::Short(n) => write!(f, "only {n} of {COPY_SIZE} bytes"),
        }
    }
}

/// A decoded copy: its sequence number and the state it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    pub state: BootState,
}

/// Encode `state` as copy bytes with sequence number `seq`.
pub fn encode(state: &BootState, seq: u64) -> Result<[u8; COPY_SIZE], postcard::Error> {
    let mut body = [0u8; BODY_MAX];
    let len = postcard::to_slice(state, &mut body)?.len();
    let mut out = [0u8; COPY_SIZE];
    let (version, len16, seq) = (
        FORMAT_VERSION.to_le_bytes(),
        (len as u16).to_le_bytes(),
        seq.to_le_bytes(),
    );
    let header = MAGIC.iter().chain(&version).chain(&len16).chain(&seq);
    for (o, b) in out.iter_mut().zip(header.chain(body.iter().take(len))) {
        *o = *b;
    }
    let digest = crate::sha256(out.get(..HEAD + len).unwrap_or_default());
    for (o, b) in out.iter_mut().skip(HEAD + len).zip(digest.iter()) {
        *o = *b;
    }
    Ok(out)
}

/// Decode one copy.
pub fn decode(bytes: &[u8]) -> Result<Record, CopyError> {
    let bytes = bytes
        .get(..COPY_SIZE)
        .ok_or(CopyError::Short(bytes.len()))?;
    if bytes.iter().all(|&b| b == 0) {
        return Err(CopyError::Blank);
    }
    let (head, rest) = bytes.split_at(HEAD);
    let field = |r: core::ops::Range<usize>| head.get(r).unwrap_or_default();
    let magic: [u8; 4] = field(0..4).try_into().unwrap_or_default();
    if magic != MAGIC {
        return Err(CopyError::BadMagic(magic));
    }
    let format = u16::from_le_bytes(field(4..6).try_into().unwrap_or_default());
    if format != FORMAT_VERSION {
        return Err(CopyError::UnsupportedFormat(format));
    }
    let len = u16::from_le_bytes(field(6..8).try_into().unwrap_or_default());
    let seq = u64::from_le_bytes(field(8..16).try_into().unwrap_or_default());
    let n = usize::from(len);
    if n > BODY_MAX {
        return Err(CopyError::BadLength(len));
    }
    let covered = bytes.get(..HEAD + n).ok_or(CopyError::BadLength(len))?;
    let stored = rest.get(n..n + TAIL).ok_or(CopyError::BadLength(len))?;
    if crate::sha256(covered) != *stored {
        return Err(CopyError::BadChecksum);
    }
    let body = rest.get(..n).ok_or(CopyError::BadLength(len))?;
    let (state, tail) = postcard::take_from_bytes(body).map_err(CopyError::Body)?;
    if !tail.is_empty() {
        return Err(CopyError::Body(postcard::Error::DeserializeBadEncoding));
    }
    Ok(Record { seq, state })
}

/// Both copies as read, and which one holds the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub copies: [Result<Record, CopyError>; 2],
    /// Index of the copy in force (valid, highest seq; copy 0 on a tie).
    pub current: Option<usize>,
}

impl Loaded {
    /// Read the two copies (each `COPY_SIZE` bytes, in `COPY_OFFSETS` order).
    pub fn from_copies(c0: &[u8], c1: &[u8]) -> Loaded {
        let copies = [decode(c0), decode(c1)];
        let current = match (&copies[0], &copies[1]) {
            (Ok(a), Ok(b)) => Some(if b.seq > a.seq { 1 } else { 0 }),
            (Ok(_), Err(_)) => Some(0),
            (Err(_), Ok(_)) => Some(1),
            (Err(_), Err(_)) => None,
        };
        Loaded { copies, current }
    }

    /// The state in force, if any copy is valid.
    pub fn state(&self) -> Option<&BootState> {
        let i = self.current?;
        self.copies.get(i)?.as_ref().ok().map(|c| &c.state)
    }

    /// Sequence number of the state in force (0 when none).
    pub fn seq(&self) -> u64 {
        self.current
            .and_then(|i| self.copies.get(i))
            .and_then(|c| c.as_ref().ok())
            .map_or(0, |c| c.seq)
    }

    /// Where and what to write to replace the state with `next`: the copy
    /// that is *not* in force, with the next sequence number. After that
    /// write completes, the new copy is in force; if it is torn, the old
    /// one still is.
    pub fn next_write(
        &self,
        next: &BootState,
    ) -> Result<(usize, [u8; COPY_SIZE]), postcard::Error> {
        let target = match self.current {
            Some(0) => 1,
            _ => 0,
        };
        Ok((target, encode(next, self.seq().saturating_add(1))?))
    }
}

/// Slot index helper for callers that store per-slot arrays.
pub fn slot_index(s: Slot) -> usize {
    s.index()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn factory() -> BootState {
        BootState::factory(3, "1.0.0", [7; 32])
    }

    fn write(disk: &mut [[u8; COPY_SIZE]; 2], next: &BootState) {
        let loaded = Loaded::from_copies(&disk[0], &disk[1]);
        let (i, bytes) = loaded.next_write(next).unwrap();
        disk[i] = bytes;
    }

    fn read(disk: &[[u8; COPY_SIZE]; 2]) -> Option<BootState> {
        Loaded::from_copies(&disk[0], &disk[1]).state().cloned()
    }

    fn pending_b() -> BootState {
        factory()
            .begin_install(Slot::B)
            .unwrap()
            .finish_install(Slot::B, 4, "2.0.0", [8; 32])
            .unwrap()
    }

    /// Rule (a): the firmware started the committed slot's kernel while a
    /// trial of the other slot is pending (the power was cut between the
    /// state write and BootNext): the trial is kept and re-armed.
    #[test]
    fn a_pending_trial_is_not_used_up_by_another_slots_kernel() {
        let s = pending_b();
        let c = s.choose_started(0, Some(Slot::A)).unwrap();
        assert_eq!((c.slot, c.trial, c.rearm), (Slot::A, false, Some(Slot::B)));
        assert_eq!(c.write, None, "nothing changes: the trial stays pending");
        // The next boot starts B's kernel: now it is the trial.
        let c = s.choose_started(0, Some(Slot::B)).unwrap();
        assert_eq!((c.slot, c.trial, c.rearm), (Slot::B, true, None));
        let w = c.write.unwrap();
        assert_eq!(w.slot(Slot::B).state, SlotState::Trying);
        assert_eq!(w.trial, None);
        // Unknown kernel: as on one-kernel boot methods, the trial runs.
        assert_eq!(s.choose_started(0, None), s.choose(0));
        assert!(s.choose(0).unwrap().trial);
        // A trial below the floor is dropped, whichever kernel started.
        let c = s.choose_started(5, Some(Slot::A));
        assert!(c.is_none() || c.as_ref().unwrap().rearm.is_none());
    }

    /// Rule (b) and the hung trial: a started kernel never changes which
    /// root boots when no trial is pending — the committed slot does, and
    /// a trial that was tried and never committed is failed.
    #[test]
    fn the_committed_slot_boots_whatever_kernel_started() {
        let trying = pending_b().choose(0).unwrap().write.unwrap();
        let c = trying.choose_started(0, Some(Slot::A)).unwrap();
        assert_eq!((c.slot, c.trial, c.rearm), (Slot::A, false, None));
        let w = c.write.unwrap();
        assert_eq!(w.slot(Slot::B).state, SlotState::Bad);
        assert!(w.slot(Slot::B).reason.contains("did not commit"));
        let committed = trying.commit(Slot::B).unwrap();
        for started in [Some(Slot::A), Some(Slot::B), None] {
            let c = committed.choose_started(0, started).unwrap();
            assert_eq!(
                (c.slot, c.trial, c.rearm, c.write),
                (Slot::B, false, None, None)
            );
        }
    }

    #[test]
    fn round_trip_and_blank() {
        let s = factory();
        let bytes = encode(&s, 9).unwrap();
        assert_eq!(decode(&bytes).unwrap(), Record { seq: 9, state: s });
        assert_eq!(decode(&[0u8; COPY_SIZE]), Err(CopyError::Blank));
        assert_eq!(decode(&[0u8; 10]), Err(CopyError::Short(10)));
        let l = Loaded::from_copies(&[0; COPY_SIZE], &[0; COPY_SIZE]);
        assert_eq!(l.state(), None);
        assert_eq!(l.seq(), 0);
    }

    #[test]
    fn every_flipped_byte_is_caught() {
        let bytes = encode(&factory(), 1).unwrap();
        let used = HEAD + usize::from(u16::from_le_bytes([bytes[6], bytes[7]])) + TAIL;
        for i in 0..used {
            let mut b = bytes;
            b[i] ^= 0x40;
            assert!(decode(&b).is_err(), "flip at {i} accepted");
        }
    }

    /// A power cut at any byte of any write leaves a valid state that is
    /// either the old or the new one.
    #[test]
    fn torn_writes_leave_old_or_new() {
        let mut disk = [[0u8; COPY_SIZE]; 2];
        write(&mut disk, &factory());
        write(&mut disk, &factory().begin_install(Slot::B).unwrap());
        let old = read(&disk).unwrap();
        let new = old.finish_install(Slot::B, 4, "2.0.0", [8; 32]).unwrap();
        let loaded = Loaded::from_copies(&disk[0], &disk[1]);
        let (target, bytes) = loaded.next_write(&new).unwrap();
        assert_ne!(
            Some(target),
            loaded.current,
            "never overwrites the copy in force"
        );
        for cut in (0..=COPY_SIZE).step_by(7).chain([COPY_SIZE]) {
            let mut torn = disk;
            torn[target][..cut].copy_from_slice(&bytes[..cut]);
            // The rest of the sector keeps whatever it held (old bytes).
            let got = read(&torn).unwrap();
            assert!(got == old || got == new, "cut at {cut}: {got:?}");
        }
        let mut done = disk;
        done[target] = bytes;
        assert_eq!(read(&done).unwrap(), new);
    }

    #[test]
    fn install_trial_commit() {
        let s = factory();
        assert_eq!(
            s.begin_install(Slot::A),
            Err(TransitionError::TargetIsActive(Slot::A))
        );
        let w = s.begin_install(Slot::B).unwrap();
        assert_eq!(w.slot(Slot::B).state, SlotState::Writing);
        // A half-written slot is never chosen.
        assert_eq!(w.choose(0).unwrap().slot, Slot::A);
        assert_eq!(
            w.finish_install(Slot::B, 2, "0.9", [1; 32]),
            Err(TransitionError::BelowFloor {
                security_version: 2,
                floor: 3
            })
        );
        let i = w.finish_install(Slot::B, 4, "2.0.0", [9; 32]).unwrap();
        let c = i.choose(0).unwrap();
        assert_eq!((c.slot, c.trial), (Slot::B, true));
        let trying = c.write.unwrap();
        assert_eq!(trying.slot(Slot::B).state, SlotState::Trying);
        assert_eq!(trying.trial, None, "the trial is one-shot");
        assert_eq!(trying.floor, 3, "floor is not raised at install or trial");
        let done = trying.commit(Slot::B).unwrap();
        assert_eq!((done.active, done.floor), (Slot::B, 4));
        assert_eq!(done.slot(Slot::B).state, SlotState::Good);
        let c = done.choose(0).unwrap();
        assert_eq!((c.slot, c.trial, c.write), (Slot::B, false, None));
    }

    #[test]
    fn reset_during_trial_falls_back_with_reason() {
        let trying = factory()
            .begin_install(Slot::B)
            .unwrap()
            .finish_install(Slot::B, 4, "2", [9; 32])
            .unwrap()
            .choose(0)
            .unwrap()
            .write
            .unwrap();
        // The trial slot reset before committing: next boot.
        let c = trying.choose(0).unwrap();
        assert_eq!((c.slot, c.trial), (Slot::A, false));
        let after = c.write.unwrap();
        assert_eq!(after.slot(Slot::B).state, SlotState::Bad);
        assert!(after.slot(Slot::B).reason.contains("did not commit"));
        assert_eq!(
            after.commit(Slot::B).map(|_| ()),
            Err(TransitionError::WrongState {
                slot: Slot::B,
                state: SlotState::Bad,
                needed: SlotState::Trying
            })
        );
    }

    #[test]
    fn failed_gate_and_rollback() {
        let trying = factory()
            .begin_install(Slot::B)
            .unwrap()
            .finish_install(Slot::B, 4, "2", [9; 32])
            .unwrap()
            .choose(0)
            .unwrap()
            .write
            .unwrap();
        let failed = trying
            .fail_trial(Slot::B, "service web crash-looped")
            .unwrap();
        assert_eq!(failed.choose(0).unwrap().slot, Slot::A);
        assert_eq!(
            failed.slot(Slot::B).reason.as_str(),
            "service web crash-looped"
        );
        let rolled = trying.rollback(Slot::B).unwrap();
        assert_eq!(rolled.slot(Slot::B).state, SlotState::Bad);
        // After a commit the old slot is below the raised floor.
        let done = trying.commit(Slot::B).unwrap();
        assert!(matches!(
            done.rollback(Slot::B),
            Err(TransitionError::BelowFloor { .. })
        ));
    }

    #[test]
    fn floor_from_hardware_counter_wins() {
        // A restored old state (floor 3) with slot A at version 3, while the
        // TPM counter says 4: slot A may not boot; B (version 4) may.
        let mut s = factory();
        s.slots[1] = SlotInfo {
            state: SlotState::Good,
            security_version: 4,
            ..SlotInfo::empty()
        };
        let c = s.choose(4).unwrap();
        assert_eq!(c.slot, Slot::B);
        assert_eq!(c.write.unwrap().active, Slot::B);
        s.slots[1].security_version = 2;
        assert_eq!(s.choose(4), None, "nothing above the floor: no slot");
        // An installed trial below the floor is never tried.
        let mut t = factory().begin_install(Slot::B).unwrap();
        t = t.finish_install(Slot::B, 3, "x", [0; 32]).unwrap();
        assert_eq!(t.choose(5), None);
    }

    #[test]
    fn a_refused_committed_slot_falls_back_to_the_other_good_one() {
        let mut s = factory();
        s.slots[1] = SlotInfo {
            state: SlotState::Good,
            security_version: 3,
            ..SlotInfo::empty()
        };
        let r = s.refuse(Slot::A, "manifest signature does not verify");
        assert_eq!(r.slot(Slot::A).state, SlotState::Bad);
        let c = r.choose(0).unwrap();
        assert_eq!((c.slot, c.trial), (Slot::B, false));
        assert_eq!(c.write.unwrap().active, Slot::B);
        // Refusing the only good slot leaves nothing to boot.
        assert_eq!(factory().refuse(Slot::A, "x").choose(0), None);
        // A refused trial is not tried.
        let t = factory()
            .begin_install(Slot::B)
            .unwrap()
            .finish_install(Slot::B, 4, "2", [9; 32])
            .unwrap()
            .refuse(Slot::B, "digest differs");
        assert_eq!(t.trial, None);
        assert_eq!(t.choose(0).unwrap().slot, Slot::A);
    }

    #[test]
    fn long_reasons_are_cut_on_char_boundary() {
        let long: Vec<u8> = core::iter::repeat_n(b'x', 119)
            .chain("é…".bytes())
            .collect();
        let s = core::str::from_utf8(&long).unwrap();
        let t = text(s);
        assert!(t.len() <= REASON_MAX);
        assert!(t.ends_with('x'));
    }
}
