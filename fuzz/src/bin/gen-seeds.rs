//! Write seed corpora for every target into `DIR/<target>/` from the
//! formats API (valid files of every kind, signed with the fixed fuzz key),
//! plus any real build artefacts given after `--from OUT` (an imagegen
//! output directory). Run by `scripts/fuzz.sh`.
use azl_formats::attest::{Report, Tier};
use azl_formats::envelope::Enveloped;
use azl_formats::eventlog::EventLog;
use azl_formats::manifest::{example, Sig, SignedManifest};
use azl_formats::measure::{Kind, Phase, VERIFIED_BOOT_SEQUENCE};
use azl_formats::services::*;
use azl_formats::{BootConfig, RootSpec, Watchdog};
use std::path::{Path, PathBuf};

fn put(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let d = dir.join(target);
    std::fs::create_dir_all(&d).expect("mkdir");
    std::fs::write(d.join(name), bytes).expect("write seed");
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().expect("usage: gen-seeds DIR [--from OUT]"));
    let from = match (args.next().as_deref(), args.next()) {
        (Some("--from"), Some(p)) => Some(PathBuf::from(p)),
        _ => None,
    };
    let key = azl_fuzz::key();
    let m = example();
    let mbytes = m.to_bytes().expect("manifest");
    let mut ed = [0u8; 64];
    ed.copy_from_slice(key.sign(&mbytes).as_ref());
    let signed = SignedManifest {
        manifest: mbytes.clone(),
        signature: Some(Sig {
            key_id: azl_formats::manifest::key_id(&azl_fuzz::public_key()),
            ed25519: ed,
        }),
    };
    let unsigned = SignedManifest {
        manifest: mbytes.clone(),
        signature: None,
    };
    let sm = signed.to_bytes().expect("sm");
    let boot = BootConfig {
        image_name: "demo".into(),
        image_version: "1.0.0".into(),
        board: "qemu-virt".into(),
        hostname: "edge".into(),
        modules: vec!["/lib/modules/virtio_blk.ko".into()],
        watchdog: Some(Watchdog {
            device: "/dev/watchdog".into(),
            timeout_s: 10,
            required: false,
        }),
        emergency_reboot_delay_s: 10,
        shutdown_grace_ms: 5000,
        root: Some(RootSpec {
            partition: "root-a".into(),
            data_partition: Some("data".into()),
            wait_s: 10,
            allow_unsigned: false,
            boot_control: azl_formats::boot::BootControl::InitramfsSelect {
                state_partition: "bootstate".into(),
            },
            update: azl_formats::UpdatePolicy {
                health_check: Some(azl_formats::HealthCheck {
                    exec: vec!["/bin/check".into(), "--quick".into()],
                    timeout_s: 30,
                }),
                ..Default::default()
            },
        }),
    };
    let svc = |name: &str, after: &[&str]| Service {
        name: azl_formats::name(name).expect("name"),
        exec: vec!["/bin/busybox".into(), "httpd".into(), "-f".into()],
        env: vec![("PORT".into(), "8080".into())],
        uid: 1000,
        gid: 1000,
        workdir: Some("/data".into()),
        restart: RestartPolicy::OnFailure,
        restart_delay_ms: 100,
        restart_delay_max_ms: 5000,
        crash_loop: CrashLoop {
            max_restarts: 5,
            window_s: 60,
            action: CrashLoopAction::Reboot,
        },
        after: after.iter().filter_map(|a| azl_formats::name(a)).collect(),
        memory_max: Some(64 << 20),
        ready: Readiness::Notify,
        stop_timeout_ms: Some(3000),
    };
    let table = ServiceTable {
        services: vec![svc("web", &[]), svc("app", &["web"])],
    };
    let mut log = EventLog::new();
    for (i, k) in VERIFIED_BOOT_SEQUENCE.iter().enumerate() {
        log.append_azl(*k, &vec![i as u8; i * 5]);
    }
    log.append_azl(Kind::Phase(Phase::Shutdown), b"");
    let report = Report {
        tier: Tier::Tpm,
        nonce: (0..32).collect(),
        ak_public: vec![0, 4, 0, 0x23, 0, 0x0b],
        quote: vec![0xff, 0x54, 0x43, 0x47, 0x80, 0x18],
        signature: vec![0, 0x18, 0, 0x0b],
        pcrs: vec![(8, [1; 32]), (9, [2; 32]), (11, [3; 32])],
        event_log: log.to_bytes(),
        manifest: sm.clone(),
    };
    let rep = report.to_bytes().expect("report");
    let soft = Report {
        tier: Tier::SoftwareOnly,
        ak_public: vec![],
        quote: vec![],
        signature: vec![],
        pcrs: vec![],
        manifest: vec![],
        ..report
    }
    .to_bytes()
    .expect("report");
    let bc = boot.to_bytes().expect("boot");
    let st = table.to_bytes().expect("table");
    let us = unsigned.to_bytes().expect("unsigned");
    for (name, b) in [
        ("boot.cfg", &bc),
        ("services.tbl", &st),
        ("manifest", &mbytes),
        ("signed", &sm),
        ("unsigned", &us),
        ("report", &rep),
        ("report-soft", &soft),
    ] {
        put(&dir, "envelope", name, b);
    }
    put(&dir, "signed_manifest", "signed", &sm);
    put(&dir, "signed_manifest", "unsigned", &us);
    put(&dir, "boot_config", "boot.cfg", &bc);
    put(&dir, "service_table", "services.tbl", &st);
    put(&dir, "eventlog", "log", log.as_bytes());
    put(&dir, "eventlog", "empty", EventLog::new().as_bytes());
    put(&dir, "attest_report", "report", &rep);
    put(&dir, "attest_report", "report-soft", &soft);
    put(&dir, "nonce", "plain", b"a1b2c3d4e5f60718293a4b5c6d7e8f90");
    put(&dir, "nonce", "prefixed", b" 0XA1B2C3D4E5F60718\n");
    // Real artefacts of an imagegen build, if given.
    // Boot state: a factory state and an installed trial, as both copies.
    {
        use azl_formats::bootstate::{encode, BootState, Slot};
        let f = BootState::factory(3, "1.0.0", [7; 32]);
        let t = f
            .begin_install(Slot::B)
            .and_then(|w| w.finish_install(Slot::B, 4, "2.0.0", [8; 32]))
            .expect("transitions");
        let (a, b) = (
            encode(&f, 1).expect("encode"),
            encode(&t, 2).expect("encode"),
        );
        put(&dir, "bootstate", "factory-then-trial", &[a, b].concat());
        put(&dir, "bootstate", "trial-then-factory", &[b, a].concat());
    }
    // Bundle head: preamble, the signed manifest section, a signed header.
    {
        use azl_formats::bundle::{Header, Payload, PayloadKind, Preamble, SignedHeader};
        let section = signed.to_bytes().expect("signed manifest");
        let v = &m.rootfs.verity;
        let header = Header {
            manifest_sha256: azl_formats::sha256(&section),
            min_from_security_version: None,
            payloads: vec![
                Payload {
                    kind: PayloadKind::HashTree,
                    size: v.hash_size,
                    sha256: [0; 32],
                },
                Payload {
                    kind: PayloadKind::RootData,
                    size: m.rootfs.data_size,
                    sha256: [0; 32],
                },
            ],
        }
        .to_bytes()
        .expect("header");
        let mut hs = [0u8; 64];
        hs.copy_from_slice(key.sign(&header).as_ref());
        let sh = SignedHeader {
            header,
            signature: Sig {
                key_id: azl_formats::manifest::key_id(&azl_fuzz::public_key()),
                ed25519: hs,
            },
        }
        .to_bytes()
        .expect("signed header");
        let pre = Preamble {
            manifest_len: section.len() as u32,
            header_len: sh.len() as u32,
        }
        .encode();
        put(&dir, "bundle", "head", &[&pre[..], &section, &sh].concat());
    }
    {
        // A valid approval (what the target expects) and its answer line.
        use azl_formats::approval::{answer_line, signed_message, Approval, Body};
        let body = Body {
            manifest_sha256: [0x1a; 32],
            ak_sha256: [0xa4; 32],
            nonce: vec![0xa1; 16],
        }
        .to_bytes()
        .expect("approval body");
        let mut ed25519 = [0u8; 64];
        ed25519.copy_from_slice(key.sign(&signed_message(&body)).as_ref());
        let a = Approval {
            body,
            signature: Sig {
                key_id: azl_formats::manifest::key_id(&azl_fuzz::public_key()),
                ed25519,
            },
        }
        .to_bytes()
        .expect("approval");
        put(&dir, "approval", "valid", &a);
        put(
            &dir,
            "approval",
            "answers",
            answer_line(&[0xa1; 16], &[0xa4; 32]).as_bytes(),
        );
    }
    if let Some(out) = from {
        for (file, target) in [
            ("manifest.bin", "signed_manifest"),
            ("manifest.bin", "envelope"),
            ("initramfs/etc/azl-edge/boot.cfg", "boot_config"),
            ("initramfs/etc/azl-edge/services.tbl", "service_table"),
            ("boot.cfg", "boot_config"),
            ("services.tbl", "service_table"),
        ] {
            if let Ok(b) = std::fs::read(out.join(file)) {
                put(
                    &dir,
                    target,
                    &format!("real-{}", file.replace('/', "_")),
                    &b,
                );
            }
        }
    }
}
