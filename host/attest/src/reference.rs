//! Build-time reference values: the azl-edge events and the PCR values a
//! correct boot of an image produces, predicted from what the build made
//! and stored, signed, in `Manifest::reference`.
use azl_formats::efistub;
use azl_formats::eventlog;
use azl_formats::logcheck;
use azl_formats::manifest::{RefEvent, Reference};
use azl_formats::measure::{self, Kind, VERIFIED_BOOT_SEQUENCE};

/// The content PID 1 measures for `kind`, given the build's inputs.
///
/// - manifest: `Manifest::identity_bytes()` (the manifest without its
///   reference values);
/// - cmdline: the kernel command line as the device reads it from
///   `/proc/cmdline`, by the contract's rule
///   ([`measure::measured_cmdline`]: trailing ASCII whitespace, the
///   newline, trimmed);
/// - verity root hash: the 32 raw bytes;
/// - service table: the compiled `/etc/azl-edge/services.tbl` bytes;
/// - phases: empty.
fn content<'a>(
    kind: Kind,
    manifest_identity: &'a [u8],
    cmdline: &'a str,
    root_hash: &'a [u8; 32],
    service_table: &'a [u8],
) -> &'a [u8] {
    match kind {
        Kind::Manifest => manifest_identity,
        Kind::Cmdline => measure::measured_cmdline(cmdline.as_bytes()),
        Kind::RootHash => root_hash,
        Kind::ServiceTable => service_table,
        Kind::Phase(_) => &[],
    }
}

/// PID 1's events of a verified boot: one per step of
/// [`measure::VERIFIED_BOOT_SEQUENCE`], digest = sha256 of
/// [`measure::event_data`].
fn pid1_events(
    manifest_identity: &[u8],
    cmdline: &str,
    root_hash: &[u8; 32],
    service_table: &[u8],
) -> Vec<RefEvent> {
    VERIFIED_BOOT_SEQUENCE
        .iter()
        .map(|&kind| {
            let c = content(kind, manifest_identity, cmdline, root_hash, service_table);
            let (digest, _) = eventlog::azl_event(kind, c);
            RefEvent {
                pcr: kind.pcr(),
                tag: kind.tag().to_string(),
                digest,
            }
        })
        .collect()
}

fn reference_of(events: Vec<RefEvent>) -> Reference {
    Reference {
        pcrs: logcheck::replay_reference(&events),
        events,
    }
}

/// Predict the reference values of a verified boot: one event per step of
/// [`measure::VERIFIED_BOOT_SEQUENCE`] (digest = sha256 of
/// [`measure::event_data`]), and PCRs 8, 9, 11 replayed from zero.
///
/// `cmdline` is trimmed of trailing whitespace here too, so passing the
/// manifest's `cmdline` or the same string with a newline gives the same
/// prediction.
pub fn predict(
    manifest_identity: &[u8],
    cmdline: &str,
    root_hash: &[u8; 32],
    service_table: &[u8],
) -> Reference {
    reference_of(pid1_events(
        manifest_identity,
        cmdline,
        root_hash,
        service_table,
    ))
}

/// Predict the reference values of a UEFI boot from the slot's boot
/// entry: first the Linux EFI stub's measurement of the entry's load
/// options ([`efistub::ref_event`]: PCR 9, sha256 of the UTF-16LE
/// `cmdline`, the slot's entry command line exactly as the entry holds
/// it), then PID 1's events as [`predict`] has them.
pub fn predict_uefi(
    manifest_identity: &[u8],
    cmdline: &str,
    root_hash: &[u8; 32],
    service_table: &[u8],
) -> Reference {
    let mut events = vec![efistub::ref_event(cmdline)];
    events.extend(pid1_events(
        manifest_identity,
        cmdline,
        root_hash,
        service_table,
    ));
    reference_of(events)
}

/// The event log a correct boot writes (for tests and for documentation
/// examples): the same events as [`predict`], with their data.
pub fn expected_log(
    manifest_identity: &[u8],
    cmdline: &str,
    root_hash: &[u8; 32],
    service_table: &[u8],
) -> eventlog::EventLog {
    let mut log = eventlog::EventLog::new();
    for &kind in VERIFIED_BOOT_SEQUENCE.iter() {
        log.append_azl(
            kind,
            content(kind, manifest_identity, cmdline, root_hash, service_table),
        );
    }
    log
}

#[cfg(test)]
mod tests {
    use super::*;
    use azl_formats::manifest::Hex;
    use azl_formats::measure::QUOTED_PCRS;

    #[test]
    fn predict_matches_the_log_and_a_hand_replay() {
        let (id, cmd, root, tbl) = (
            b"identity".as_slice(),
            "console=ttyAMA0 quiet\n",
            [7u8; 32],
            b"table".as_slice(),
        );
        let r = predict(id, cmd, &root, tbl);
        assert_eq!(r.events.len(), VERIFIED_BOOT_SEQUENCE.len());
        let tags: Vec<&str> = r.events.iter().map(|e| e.tag.as_str()).collect();
        assert_eq!(
            tags,
            [
                "phase:initramfs-entered",
                "cmdline",
                "manifest",
                "verity-root-hash",
                "phase:root-switched",
                "service-table",
                "phase:services-ready"
            ]
        );
        // The cmdline event is over the trimmed line.
        let want = eventlog::sha256(b"azl-edge:cmdline\0console=ttyAMA0 quiet");
        assert_eq!(r.events[1].digest, want);
        assert_eq!(predict(id, "console=ttyAMA0 quiet", &root, tbl), r);

        // The log replays to the predicted PCRs, events in the same order.
        let log = expected_log(id, cmd, &root, tbl);
        let events = eventlog::parse(log.as_bytes()).unwrap();
        assert_eq!(eventlog::replay(&events, &QUOTED_PCRS), r.pcrs);
        for (e, re) in events.iter().zip(&r.events) {
            assert_eq!((e.pcr, e.sha256), (u32::from(re.pcr), re.digest));
        }

        // PCR 9 by hand: extend(extend(0, root-hash event), service-table event).
        let ext = |pcr: [u8; 32], d: [u8; 32]| {
            let mut cat = pcr.to_vec();
            cat.extend_from_slice(&d);
            eventlog::sha256(&cat)
        };
        let mut root_data = b"azl-edge:verity-root-hash\0".to_vec();
        root_data.extend_from_slice(&root);
        let pcr9 = ext(
            ext([0; 32], eventlog::sha256(&root_data)),
            eventlog::sha256(b"azl-edge:service-table\0table"),
        );
        assert_eq!(r.pcrs[1], (9, pcr9), "{}", Hex(&pcr9));
        assert_eq!(r.pcrs.iter().map(|p| p.0).collect::<Vec<_>>(), [8, 9, 11]);
    }

    #[test]
    fn predict_uefi_puts_the_stubs_load_options_event_first() {
        let (id, root, tbl) = (b"identity".as_slice(), [7u8; 32], b"table".as_slice());
        let cmd = "initrd=\\EFI\\azl\\a\\initrd console=ttyAMA0 azl.slot=a";
        let direct = predict(id, cmd, &root, tbl);
        let uefi = predict_uefi(id, cmd, &root, tbl);
        assert_eq!(uefi.events.len(), direct.events.len() + 1);
        let stub = &uefi.events[0];
        assert_eq!((stub.pcr, stub.tag.as_str()), (9, "efi-stub:load-options"));
        // The digest of the entry's OptionalData: the UTF-16LE command line.
        let utf16: Vec<u8> = cmd.encode_utf16().flat_map(u16::to_le_bytes).collect();
        assert_eq!(stub.digest, eventlog::sha256(&utf16));
        assert_eq!(&uefi.events[1..], &direct.events[..]);
        // PCR 9 starts from the stub's event; PCRs 8 and 11 are unchanged.
        let pcr9 = direct.events[3..]
            .iter()
            .filter(|e| e.pcr == 9)
            .fold(eventlog::extend(&[0; 32], &stub.digest), |v, e| {
                eventlog::extend(&v, &e.digest)
            });
        assert_eq!(uefi.pcrs[1], (9, pcr9));
        assert_eq!(
            (uefi.pcrs[0], uefi.pcrs[2]),
            (direct.pcrs[0], direct.pcrs[2])
        );
        assert_eq!(logcheck::without_firmware_events(&uefi), direct);
    }
}
