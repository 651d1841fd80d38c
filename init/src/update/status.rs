//! `update status` output, as text for people or JSON for tools: the
//! backend, the running slot (trial or not), the committed slot, a pending
//! trial, the floor (boot state and TPM NV), the trial's health gate, and per slot its state,
//! versions, manifest digest and why its last trial failed.
use super::bootctl::FirmwareVars;
use super::floor::Nv;
use azl_formats::booted::Booted;
use azl_formats::bootstate::{BootState, Slot, SlotState};
use azl_formats::manifest::Hex;

/// Everything `update status` reports.
pub struct Report<'a> {
    pub backend: &'a str,
    pub location: &'a str,
    pub state: &'a BootState,
    /// What stage 1 recorded (`None`: not known, e.g. booted without it).
    pub booted: Option<&'a Booted>,
    /// On a trial boot, the health gate's line ([`azl_formats::paths::GATE_STATUS`]):
    /// the gate pending (`ready`, `hold`, `health-check`, `self-check`) or
    /// the outcome (`committed`, `awaiting-commit`, `failed: REASON`,
    /// `commit-failed: ERROR`), or `approval MS` while waiting for an
    /// approval until MS milliseconds since kernel start.
    pub gate: Option<&'a str>,
    /// The TPM NV floor as read now (never defined by `status`).
    pub nv: &'a Nv,
    /// Milliseconds since kernel start now (for the approval's time left).
    pub now_ms: u64,
    /// UEFI's boot variables (`None`: the backend has none), or why they
    /// could not be read.
    pub firmware: Option<&'a Result<FirmwareVars, String>>,
}

fn var(n: Option<u16>) -> String {
    n.map_or("none".to_string(), azl_formats::efi::boot_var_name)
}

fn var_json(n: Option<u16>) -> String {
    n.map_or("null".to_string(), |n| {
        js(&azl_formats::efi::boot_var_name(n))
    })
}

/// The slot whose entry `n` is, if it is one of ours.
fn slot_of(v: &FirmwareVars, n: Option<u16>) -> Option<Slot> {
    let n = n?;
    v.entries
        .iter()
        .find(|(_, e)| *e == Some(n))
        .map(|(s, _)| *s)
}

/// `BootCurrent Boot0003 (root-a)`: a variable and the slot it names.
fn var_with_slot(v: &FirmwareVars, n: Option<u16>) -> String {
    match slot_of(v, n) {
        Some(s) => format!("{} ({s})", var(n)),
        None => var(n),
    }
}

/// The UEFI lines of the text output.
fn firmware_text(f: &Result<FirmwareVars, String>) -> String {
    let v = match f {
        Ok(v) => v,
        Err(e) => return format!("uefi:         variables unreadable: {e}\n"),
    };
    let order: Vec<String> = v.order.iter().map(|&n| var_with_slot(v, Some(n))).collect();
    let entries: Vec<String> = v
        .entries
        .iter()
        .map(|(s, n)| {
            format!(
                "{s} = {}",
                n.map_or("no entry".to_string(), azl_formats::efi::boot_var_name)
            )
        })
        .collect();
    format!(
        "uefi:         BootCurrent {}, BootNext {}\n              BootOrder {}\n              entries {}\n",
        var_with_slot(v, v.current),
        var_with_slot(v, v.next),
        if order.is_empty() { "empty".to_string() } else { order.join(", ") },
        entries.join(", ")
    )
}

/// `{"boot_current":"Boot0003","boot_current_slot":"root-a","boot_next":null,
/// "boot_next_slot":null,"boot_order":["Boot0003",…],"entries":{"root-a":"Boot0003",
/// "root-b":null}}`, `{"error":"…"}`, or `null` without UEFI.
fn firmware_json(f: Option<&Result<FirmwareVars, String>>) -> String {
    let v = match f {
        None => return "null".to_string(),
        Some(Err(e)) => return format!("{{\"error\":{}}}", js(e)),
        Some(Ok(v)) => v,
    };
    let slot = |n| slot_of(v, n).map_or("null".to_string(), |s| js(s.partition()));
    let order: Vec<String> = v.order.iter().map(|&n| var_json(Some(n))).collect();
    let entries: Vec<String> = v
        .entries
        .iter()
        .map(|(s, n)| format!("{}:{}", js(s.partition()), var_json(*n)))
        .collect();
    format!(
        "{{\"boot_current\":{},\"boot_current_slot\":{},\"boot_next\":{},\"boot_next_slot\":{},\"boot_order\":[{}],\"entries\":{{{}}}}}",
        var_json(v.current),
        slot(v.current),
        var_json(v.next),
        slot(v.next),
        order.join(","),
        entries.join(",")
    )
}

/// The NV floor as a JSON object: `{"state":"present","floor":2,
/// "protection":"platform","index":"0x013A2E01"}`, `{"state":"absent"}`,
/// `{"state":"undefined","index":…}`, `{"state":"error","error":"…"}`.
fn nv_json(nv: &Nv) -> String {
    let index = js(&format!("0x{:08X}", azl_formats::nvfloor::INDEX));
    match nv {
        Nv::Absent => "{\"state\":\"absent\"}".to_string(),
        Nv::Undefined => format!("{{\"state\":\"undefined\",\"index\":{index}}}"),
        Nv::At { floor, protection } => format!(
            "{{\"state\":\"present\",\"floor\":{floor},\"protection\":{},\"index\":{index}}}",
            js(protection.name())
        ),
        Nv::Failed(e) => format!(
            "{{\"state\":\"error\",\"error\":{},\"index\":{index}}}",
            js(&e.to_string())
        ),
    }
}

/// The gate line as shown: the word, and the seconds left while waiting
/// for an approval.
fn gate_view(gate: &str, now_ms: u64) -> (&str, Option<u64>) {
    match gate.split_once(' ') {
        Some(("approval", ms)) => match ms.trim().parse::<u64>() {
            Ok(until) => (
                "approval",
                Some(until.saturating_sub(now_ms).div_ceil(1000)),
            ),
            Err(_) => ("approval", None),
        },
        _ => (gate, None),
    }
}

fn state_name(s: SlotState) -> &'static str {
    match s {
        SlotState::Empty => "empty",
        SlotState::Writing => "writing",
        SlotState::Installed => "installed",
        SlotState::Trying => "trying",
        SlotState::Good => "good",
        SlotState::Bad => "bad",
    }
}

/// A JSON string literal.
fn js(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub fn text(r: &Report) -> String {
    let s = r.state;
    let mut out = format!("boot control: {} ({})\n", r.backend, r.location);
    match r.booted {
        Some(b) => {
            out.push_str(&format!(
                "running:      {}{}\n",
                b.slot,
                match (b.trial, s.slot(b.slot).state) {
                    (false, _) => "",
                    (true, SlotState::Good) => " (trial boot, committed)",
                    (true, _) => " (trial boot, not committed)",
                }
            ));
            if let Some(why) = &b.recovery {
                out.push_str(&format!("RECOVERY:     {why}\n"));
            }
        }
        None => out.push_str("running:      unknown (stage 1 left no record)\n"),
    }
    if let Some(g) = r.gate {
        match gate_view(g, r.now_ms) {
            ("approval", Some(left)) => out.push_str(&format!(
                "gate:         waiting for approval ({left} s left)\n"
            )),
            ("approval", None) => out.push_str("gate:         waiting for approval\n"),
            (g, _) => out.push_str(&format!("gate:         {g}\n")),
        }
    }
    out.push_str(&format!("committed:    {}\n", s.active));
    out.push_str(&format!(
        "trial:        {}\n",
        s.trial.map_or("none pending".to_string(), |t| format!(
            "{t} on the next boot"
        ))
    ));
    out.push_str(&format!("floor:        security version {}\n", s.floor));
    out.push_str(&format!("nv floor:     {}\n", r.nv.describe()));
    if let Some(f) = r.firmware {
        out.push_str(&firmware_text(f));
    }
    for slot in Slot::ALL {
        let i = s.slot(slot);
        out.push_str(&format!(
            "{slot}:       {:<9} version {:<12} security {:<4} manifest {}\n",
            state_name(i.state),
            if i.version.is_empty() {
                "-"
            } else {
                i.version.as_str()
            },
            i.security_version,
            Hex(&i.manifest_sha256)
        ));
        if !i.reason.is_empty() {
            out.push_str(&format!("              last trial failed: {}\n", i.reason));
        }
    }
    out
}

pub fn json(r: &Report) -> String {
    let s = r.state;
    let running = r.booted.map_or("null".to_string(), |b| {
        format!(
            "{{\"slot\":{},\"trial\":{},\"manifest_sha256\":{},\"security_version\":{},\"recovery\":{}}}",
            js(b.slot.partition()),
            b.trial,
            js(&Hex(&b.manifest_sha256).to_string()),
            b.security_version,
            b.recovery.as_ref().map_or("null".to_string(), |w| js(w))
        )
    });
    let slots: Vec<String> = Slot::ALL
        .iter()
        .map(|&slot| {
            let i = s.slot(slot);
            format!(
                "{{\"name\":{},\"state\":{},\"version\":{},\"security_version\":{},\"manifest_sha256\":{},\"failure\":{}}}",
                js(slot.partition()),
                js(state_name(i.state)),
                js(&i.version),
                i.security_version,
                js(&Hex(&i.manifest_sha256).to_string()),
                if i.reason.is_empty() { "null".to_string() } else { js(&i.reason) }
            )
        })
        .collect();
    let gate = r.gate.map(|g| gate_view(g, r.now_ms));
    format!(
        "{{\"backend\":{},\"location\":{},\"running\":{running},\"gate\":{},\"approval_left_s\":{},\"committed\":{},\"trial_pending\":{},\"floor\":{},\"nv_floor\":{},\"uefi\":{},\"slots\":[{}]}}\n",
        js(r.backend),
        js(r.location),
        gate.map_or("null".to_string(), |(g, _)| js(g)),
        gate.and_then(|(_, left)| left).map_or("null".to_string(), |l| l.to_string()),
        js(s.active.partition()),
        s.trial.map_or("null".to_string(), |t| js(t.partition())),
        s.floor,
        nv_json(r.nv),
        firmware_json(r.firmware),
        slots.join(",")
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn sample() -> (BootState, Booted) {
        let s = BootState::factory(3, "1.0", [0xa; 32])
            .begin_install(Slot::B)
            .unwrap()
            .finish_install(Slot::B, 4, "2.0 \"beta\"", [0xb; 32])
            .unwrap()
            .choose(0)
            .unwrap()
            .write
            .unwrap()
            .fail_trial(Slot::B, "service web crash-looped")
            .unwrap();
        let b = Booted {
            slot: Slot::A,
            trial: false,
            manifest_sha256: [0xa; 32],
            security_version: 3,
            recovery: None,
        };
        (s, b)
    }

    #[test]
    fn json_is_valid_and_complete() {
        let (s, b) = sample();
        let r = Report {
            backend: "initramfs-select",
            location: "/dev/vda4",
            state: &s,
            booted: Some(&b),
            gate: None,
            nv: &Nv::Absent,
            now_ms: 0,
            firmware: None,
        };
        let v: serde_json::Value = serde_json::from_str(&json(&r)).unwrap();
        assert_eq!(v["gate"], serde_json::Value::Null);
        assert_eq!(v["running"]["slot"], "root-a");
        assert_eq!(v["running"]["trial"], false);
        assert_eq!(v["committed"], "root-a");
        assert_eq!(v["trial_pending"], serde_json::Value::Null);
        assert_eq!(v["floor"], 3);
        assert_eq!(v["nv_floor"]["state"], "absent");
        let nv = Nv::At {
            floor: 2,
            protection: azl_formats::nvfloor::Protection::Platform,
        };
        let v: serde_json::Value = serde_json::from_str(&json(&Report { nv: &nv, ..r })).unwrap();
        assert_eq!(v["nv_floor"]["floor"], 2);
        assert_eq!(v["nv_floor"]["protection"], "platform");
        assert_eq!(v["nv_floor"]["index"], "0x013A2E01");
        let bad = Nv::Failed(crate::update::floor::FloorError::Vanished);
        let v: serde_json::Value = serde_json::from_str(&json(&Report { nv: &bad, ..r })).unwrap();
        assert_eq!(v["nv_floor"]["state"], "error");
        assert!(v["nv_floor"]["error"]
            .as_str()
            .unwrap()
            .contains("0x013A2E01"));
        assert_eq!(v["slots"][1]["state"], "bad");
        assert_eq!(v["slots"][1]["version"], "2.0 \"beta\"");
        assert_eq!(v["slots"][1]["failure"], "service web crash-looped");
        assert_eq!(v["slots"][0]["manifest_sha256"], "0a".repeat(32));
        let none = Report { booted: None, ..r };
        let v: serde_json::Value = serde_json::from_str(&json(&none)).unwrap();
        assert_eq!(v["running"], serde_json::Value::Null);
        let gated = Report {
            gate: Some("failed: service \"web\" not ready within 60 s"),
            ..r
        };
        let v: serde_json::Value = serde_json::from_str(&json(&gated)).unwrap();
        assert_eq!(v["gate"], "failed: service \"web\" not ready within 60 s");
        assert_eq!(v["approval_left_s"], serde_json::Value::Null);
        let waiting = Report {
            gate: Some("approval 64000"),
            now_ms: 20_500,
            ..r
        };
        let v: serde_json::Value = serde_json::from_str(&json(&waiting)).unwrap();
        assert_eq!(
            (&v["gate"], &v["approval_left_s"]),
            (&"approval".into(), &44.into())
        );
        let t = text(&waiting);
        assert!(
            t.contains("gate:         waiting for approval (44 s left)\n"),
            "{t}"
        );
    }

    #[test]
    fn text_names_running_slot_and_failure() {
        let (s, mut b) = sample();
        b.trial = true;
        let t = text(&Report {
            backend: "initramfs-select",
            location: "/dev/vda4",
            state: &s,
            booted: Some(&b),
            gate: Some("hold"),
            nv: &Nv::At {
                floor: 2,
                protection: azl_formats::nvfloor::Protection::Platform,
            },
            now_ms: 0,
            firmware: None,
        });
        assert!(
            t.contains("nv floor:     security version 2 (TPM NV index 0x013A2E01, platform: cannot be deleted)"),
            "{t}"
        );
        assert!(t.contains("running:      root-a (trial boot"), "{t}");
        assert!(t.contains("gate:         hold\n"), "{t}");
        assert!(
            t.contains("last trial failed: service web crash-looped"),
            "{t}"
        );
        assert!(t.contains("floor:        security version 3"), "{t}");
    }

    #[test]
    fn uefi_variables_name_the_slots() {
        let (s, b) = sample();
        let vars: Result<FirmwareVars, String> = Ok(FirmwareVars {
            current: Some(3),
            next: Some(4),
            order: vec![3, 4, 0],
            entries: vec![(Slot::A, Some(3)), (Slot::B, Some(4))],
        });
        let r = Report {
            backend: "uefi",
            location: "/dev/vda3",
            state: &s,
            booted: Some(&b),
            gate: None,
            nv: &Nv::Absent,
            now_ms: 0,
            firmware: Some(&vars),
        };
        let t = text(&r);
        assert!(
            t.contains("uefi:         BootCurrent Boot0003 (root-a), BootNext Boot0004 (root-b)\n"),
            "{t}"
        );
        assert!(
            t.contains("BootOrder Boot0003 (root-a), Boot0004 (root-b), Boot0000\n"),
            "{t}"
        );
        assert!(
            t.contains("entries root-a = Boot0003, root-b = Boot0004\n"),
            "{t}"
        );
        let v: serde_json::Value = serde_json::from_str(&json(&r)).unwrap();
        let u = &v["uefi"];
        assert_eq!(u["boot_current"], "Boot0003");
        assert_eq!(u["boot_current_slot"], "root-a");
        assert_eq!(u["boot_next"], "Boot0004");
        assert_eq!(u["boot_next_slot"], "root-b");
        assert_eq!(u["boot_order"][2], "Boot0000");
        assert_eq!(u["entries"]["root-b"], "Boot0004");
        let none: Result<FirmwareVars, String> = Ok(FirmwareVars {
            current: Some(0),
            next: None,
            order: vec![],
            entries: vec![(Slot::A, None), (Slot::B, None)],
        });
        let r2 = Report {
            firmware: Some(&none),
            ..r
        };
        let v: serde_json::Value = serde_json::from_str(&json(&r2)).unwrap();
        assert_eq!(v["uefi"]["boot_next"], serde_json::Value::Null);
        assert_eq!(v["uefi"]["boot_current_slot"], serde_json::Value::Null);
        assert_eq!(v["uefi"]["entries"]["root-a"], serde_json::Value::Null);
        assert!(text(&r2).contains("BootNext none\n              BootOrder empty\n"));
        let err: Result<FirmwareVars, String> = Err("BootOrder: odd length".into());
        let r3 = Report {
            firmware: Some(&err),
            ..r
        };
        let v: serde_json::Value = serde_json::from_str(&json(&r3)).unwrap();
        assert_eq!(v["uefi"]["error"], "BootOrder: odd length");
        assert!(text(&r3).contains("uefi:         variables unreadable: BootOrder: odd length\n"));
        let plain = Report {
            firmware: None,
            ..r
        };
        let v: serde_json::Value = serde_json::from_str(&json(&plain)).unwrap();
        assert_eq!(v["uefi"], serde_json::Value::Null);
        assert!(!text(&plain).contains("uefi:"));
    }
}
