//! The `update` face of the init binary (argv[0] `update`, or
//! `init update …`): `install FILE|-`, `status [--json]`, `commit`,
//! `rollback`, `approve FILE|-`. Progress goes to stderr. Exit codes: 0 done, 1 refused or
//! failed (the message says why), 2 usage.
use super::bootctl::{self, BootControl};
use super::gate::approval;
use super::install::{self, Tail, Target, Trust};
use super::{select, status};
use crate::boot::config;
use crate::verify::{manifest as vmanifest, partition};
use azl_formats::booted::Booted;
use azl_formats::manifest::Hex;
use azl_formats::{paths, CommitPolicy};
use std::io::{BufReader, Read};
use std::os::unix::fs::FileTypeExt;
use std::time::Duration;

const USAGE: &str = "usage: update COMMAND\n\ncommands:\n  install FILE|-    write a bundle (file, block device or stdin) into the slot not running\n  status [--json]   slots, versions, states, the floor, the running slot, trial results\n  commit            make the running trial slot the committed one\n  approve FILE|-    hand a verifier's approval to the trial's gate (commit = \"attested\")\n  rollback          fail the running trial, or switch back to the other good slot\n";

/// How long to wait for partitions (they exist already in stage 2).
const WAIT: Duration = Duration::from_secs(2);

struct Ctx {
    board: String,
    ctl: Box<dyn BootControl>,
}

fn open() -> Result<Ctx, String> {
    let cfg = config::boot_config().map_err(|e| e.to_string())?;
    let root = cfg
        .root
        .ok_or("this image has no root slots (root in the initramfs): updates are not possible")?;
    let ctl = bootctl::open(&root.boot_control, WAIT).map_err(|e| e.to_string())?;
    Ok(Ctx {
        board: cfg.board,
        ctl,
    })
}

fn running() -> Result<Booted, String> {
    select::booted(paths::BOOTED)
        .map_err(|e| format!("cannot tell which slot is running (stage 1 record: {e})"))
}

fn key() -> Result<Vec<u8>, String> {
    vmanifest::read_key(paths::RUN_MANIFEST_PUB)
        .or_else(|_| vmanifest::read_key(paths::MANIFEST_PUB))
        .map_err(|e| e.to_string())
}

fn cmd_install(arg: &str) -> Result<(), String> {
    let mut cx = open()?;
    let booted = running()?;
    let slot = booted.slot.other();
    let part = partition::find(slot.partition(), WAIT).map_err(|e| e.to_string())?;
    let target = Target {
        slot,
        dev: part.dev.clone(),
        offset: part.offset,
        size: part.size_bytes,
    };
    let key = key()?;
    let trust = Trust {
        key: &key,
        board: &cx.board,
    };
    let (mut input, tail): (Box<dyn Read>, Tail) = if arg == "-" {
        (Box::new(std::io::stdin().lock()), Tail::Exact)
    } else {
        let f = std::fs::File::open(arg).map_err(|e| format!("{arg}: {e}"))?;
        let block = f
            .metadata()
            .map(|m| m.file_type().is_block_device())
            .map_err(|e| format!("{arg}: {e}"))?;
        let tail = if block {
            Tail::ZeroPadded {
                limit: install::PADDING_LIMIT,
            }
        } else {
            Tail::Exact
        };
        (Box::new(f), tail)
    };
    let mut input = BufReader::with_capacity(1 << 20, &mut input);
    eprintln!("update: installing into {slot} ({})", part.dev);
    let s = install::install(
        &mut input,
        tail,
        &target,
        booted.slot,
        cx.ctl.as_mut(),
        &trust,
        &mut |line| eprintln!("update: {line}"),
    )
    .map_err(|e| e.to_string())?;
    println!(
        "installed {} (security version {}) into {}: {} data bytes, {} hash tree bytes; reboot to try it",
        s.image, s.security_version, s.slot, s.data_bytes, s.tree_bytes
    );
    Ok(())
}

fn cmd_status(as_json: bool) -> Result<(), String> {
    let mut cx = open()?;
    let state = bootctl::state(cx.ctl.as_mut()).map_err(|e| e.to_string())?;
    let booted = running().ok();
    let location = cx.ctl.location();
    let gate = std::fs::read_to_string(paths::GATE_STATUS).ok();
    let nv = super::floor::device().read(false);
    let firmware = cx.ctl.firmware_vars().map(|r| r.map_err(|e| e.to_string()));
    let r = status::Report {
        backend: cx.ctl.name(),
        location: &location,
        state: &state,
        booted: booted.as_ref(),
        gate: gate.as_deref().map(str::trim_end),
        nv: &nv,
        now_ms: crate::sys::time::boot_ms(),
        firmware: firmware.as_ref(),
    };
    print!(
        "{}",
        if as_json {
            status::json(&r)
        } else {
            status::text(&r)
        }
    );
    Ok(())
}

/// The running trial's commit policy (this root's boot config is the
/// trial slot's own), or why there is no trial to approve.
fn trial_policy(b: &Booted) -> Result<CommitPolicy, String> {
    if !b.trial {
        return Err(format!(
            "no trial is running ({} runs as the committed slot)",
            b.slot
        ));
    }
    let cfg = config::boot_config().map_err(|e| e.to_string())?;
    Ok(cfg.root.map_or(CommitPolicy::Local, |r| r.update.commit))
}

fn cmd_approve(arg: &str) -> Result<(), String> {
    let b = running()?;
    let policy = trial_policy(&b)?;
    let CommitPolicy::Attested { verifier_key, .. } = policy else {
        return Err(format!(
            "the trial of {} does not take approvals (its commit policy is {})",
            b.slot,
            policy.name()
        ));
    };
    let bytes = approval::read(arg).map_err(|e| e.to_string())?;
    let body =
        approval::check(&bytes, &verifier_key, &b.manifest_sha256).map_err(|e| e.to_string())?;
    eprintln!(
        "update: approval for {} (manifest {}, nonce {}) verifies; handing it to the gate",
        b.slot,
        Hex(&body.manifest_sha256),
        Hex(&body.nonce)
    );
    approval::hand_over(&bytes).map_err(|e| format!("{}: {e}", paths::APPROVAL))?;
    match crate::initctl::client::send(&crate::initctl::protocol::Request::Approve) {
        Ok(Ok(answer)) => {
            println!("{}", answer.trim_end());
            Ok(())
        }
        Ok(Err(why)) => Err(format!("the gate refused it: {why}")),
        Err(e) => Err(format!("cannot reach the gate (PID 1): {e}")),
    }
}

fn cmd_commit() -> Result<(), String> {
    let mut cx = open()?;
    let b = running()?;
    if b.trial {
        if let Ok(CommitPolicy::Attested { .. }) = trial_policy(&b) {
            return Err(format!(
                "the trial of {} has commit policy attested: it commits with a verifier's approval (`update approve FILE`), not by hand",
                b.slot
            ));
        }
    }
    let s = bootctl::commit(cx.ctl.as_mut(), b.slot).map_err(|e| e.to_string())?;
    println!(
        "committed {}; the floor is now security version {}",
        s.active, s.floor
    );
    Ok(())
}

fn cmd_rollback() -> Result<(), String> {
    let mut cx = open()?;
    let b = running()?;
    let s = bootctl::rollback(cx.ctl.as_mut(), b.slot).map_err(|e| e.to_string())?;
    println!("rolled back: {} boots next", s.active);
    Ok(())
}

pub fn main(args: &[String]) -> i32 {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = match a.as_slice() {
        ["install", file] => cmd_install(file),
        ["status"] => cmd_status(false),
        ["status", "--json"] => cmd_status(true),
        ["commit"] => cmd_commit(),
        ["approve", file] => cmd_approve(file),
        ["rollback"] => cmd_rollback(),
        ["-h" | "--help"] => {
            print!("{USAGE}");
            return 0;
        }
        _ => {
            eprint!("{USAGE}");
            return 2;
        }
    };
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("update: refused: {e}");
            1
        }
    }
}
