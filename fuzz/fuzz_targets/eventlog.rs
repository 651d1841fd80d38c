//! The TCG event log: parse, continue and append, merge after a firmware
//! log (the input split in two at a byte the input chooses), replay.
#![no_main]
use azl_formats::eventlog::{self, EventLog};
use azl_formats::measure::{Kind, QUOTED_PCRS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(log) = eventlog::parse_log(data) {
        assert!(log.header.len <= data.len());
        let _ = eventlog::replay(&log.events, &QUOTED_PCRS);
        let _ = eventlog::replay(&log.events, &[0, 7]);
        let mut cont = EventLog::from_bytes(data).expect("parses twice");
        assert_eq!(cont.len(), log.events.len());
        cont.append_azl(Kind::Cmdline, b"x");
        let again = eventlog::parse(cont.as_bytes()).expect("appending keeps it valid");
        assert_eq!(again.len(), log.events.len() + 1);
    }
    if let Some((&cut, rest)) = data.split_first() {
        let at = usize::from(cut).min(rest.len()) * rest.len() / 255usize.max(1);
        let (fw, ours) = rest.split_at(at.min(rest.len()));
        if let Ok(merged) = eventlog::merge(fw, ours) {
            let _ = eventlog::parse(&merged);
        }
    }
});
