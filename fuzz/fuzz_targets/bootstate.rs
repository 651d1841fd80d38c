//! The A/B boot state as stage 1 reads it from the `bootstate` partition:
//! two copies of fuzzed bytes → the state in force → every transition.
//! A decoded state re-encodes to a copy that decodes to the same state.
#![no_main]
use azl_formats::bootstate::{decode, encode, Loaded, Slot, COPY_SIZE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (a, b) = data.split_at(data.len().min(COPY_SIZE));
    let loaded = Loaded::from_copies(a, b);
    if let Some(state) = loaded.state() {
        let bytes = encode(state, loaded.seq()).expect("a decoded state encodes");
        assert_eq!(&decode(&bytes).expect("re-decodes").state, state);
        for floor in [0, state.floor, u32::MAX] {
            if let Some(choice) = state.choose(floor) {
                let s = state.slot(choice.slot);
                assert!(s.security_version >= floor.max(state.floor));
            }
        }
        for slot in [Slot::A, Slot::B] {
            let _ = state.begin_install(slot);
            let _ = state.commit(slot);
            let _ = state.fail_trial(slot, "fuzz");
            let _ = state.rollback(slot);
        }
        let _ = loaded.next_write(state);
    }
});
