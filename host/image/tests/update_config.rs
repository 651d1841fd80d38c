//! `[update]` in the image config: defaults, every bad value as a located
//! error, and the policy's way into the boot config (round trip through
//! the `AZBC` envelope, in the root spec of a disk image).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
use azl_formats::envelope::Enveloped;
use azl_formats::{BootConfig, CommitPolicy, HealthCheck, UpdatePolicy};
use azl_image::board;
use azl_image::bootcfg;
use azl_image::config::{Config, ConfigErrorKind, ImageSettings};
use azl_image::diag::Diagnostics;
use azl_image::expand::MapEnv;
use azl_image::modules::ModuleSet;
use azl_image::source::SourceFile;
use std::path::Path;

const HEAD: &str = "[image]\nname = \"demo\"\nversion = \"1.0.0\"\nhostname = \"edge\"\n";

fn settings(text: &str) -> Result<ImageSettings, String> {
    let c = Config::parse(SourceFile::new("/cfg/demo.toml".into(), text.to_string()))
        .map_err(|e| e.to_string())?;
    let mut d = Diagnostics::<ConfigErrorKind>::new();
    let s = c.image_settings(&MapEnv::default(), &mut d);
    d.finish().map_err(|e| e.to_string())?;
    Ok(s)
}

fn error(update: &str) -> String {
    settings(&format!("{HEAD}[update]\n{update}")).unwrap_err()
}

#[test]
fn update_defaults_without_a_table_and_with_an_empty_one() {
    for text in [HEAD.to_string(), format!("{HEAD}[update]\n")] {
        let s = settings(&text).unwrap();
        assert_eq!(s.update, UpdatePolicy::default());
        assert_eq!(s.update.commit, CommitPolicy::Local);
        assert_eq!((s.update.ready_deadline_s, s.update.hold_s), (60, 30));
        assert_eq!(s.update.health_check, None);
    }
}

#[test]
fn update_values_are_taken() {
    let s = settings(&format!(
        "{HEAD}[update]\ncommit = \"manual\"\nready_deadline_s = 120\nhold_s = 0\n\
         health_check = [\"/usr/bin/check\", \"--quick\"]\nhealth_check_timeout_s = 5\n"
    ))
    .unwrap();
    assert_eq!(
        s.update,
        UpdatePolicy {
            commit: CommitPolicy::Manual,
            ready_deadline_s: 120,
            hold_s: 0,
            health_check: Some(HealthCheck {
                exec: vec!["/usr/bin/check".into(), "--quick".into()],
                timeout_s: 5,
            }),
        }
    );
    // Without a timeout the check gets the default 30 s.
    let s = settings(&format!("{HEAD}[update]\nhealth_check = [\"/c\"]\n")).unwrap();
    assert_eq!(s.update.health_check.map(|h| h.timeout_s), Some(30));
}

#[test]
fn update_errors_are_located() {
    let cases: &[(&str, &str)] = &[
        (
            "commit = \"attested\"\n",
            "/cfg/demo.toml:6: [update] commit = \"attested\" needs verifier_key = \"PATH\"",
        ),
        (
            "commit = \"manual\"\nverifier_key = \"v.pub\"\n",
            "/cfg/demo.toml:7: [update] verifier_key is set but commit is not \"attested\"",
        ),
        (
            "approval_deadline_s = 60\n",
            "/cfg/demo.toml:6: [update] approval_deadline_s is set but commit is not \"attested\"",
        ),
        (
            "commit = \"attested\"\nverifier_key = \"/nonexistent/v.pub\"\n",
            "/cfg/demo.toml:7: [update] verifier_key: reading key /nonexistent/v.pub",
        ),
        ("commit = \"sometimes\"\n", "/cfg/demo.toml:6: unknown variant `sometimes`"),
        (
            "ready_deadline_s = 0\n",
            "/cfg/demo.toml:6: [update] ready_deadline_s = 0 is out of range (1..=3600 seconds)",
        ),
        (
            "ready_deadline_s = 3601\n",
            "/cfg/demo.toml:6: [update] ready_deadline_s = 3601 is out of range",
        ),
        (
            "hold_s = -1\n",
            "/cfg/demo.toml:6: [update] hold_s = -1 is out of range (0..=3600 seconds)",
        ),
        (
            "health_check = [\"/c\"]\nhealth_check_timeout_s = 0\n",
            "/cfg/demo.toml:7: [update] health_check_timeout_s = 0 is out of range",
        ),
        (
            "health_check_timeout_s = 5\n",
            "/cfg/demo.toml:6: [update] health_check_timeout_s is set but there is no health_check",
        ),
        (
            "health_check = [\"check\"]\n",
            "/cfg/demo.toml:6: [update] health_check: service \"health-check\": exec[0] is not an absolute path",
        ),
        (
            "health_check = []\n",
            "/cfg/demo.toml:6: [update] health_check: service \"health-check\": exec is empty",
        ),
        ("hold = 3\n", "/cfg/demo.toml:6: unknown field `hold`"),
        ("hold_s = \"3\"\n", "/cfg/demo.toml:6: invalid type"),
    ];
    for (update, want) in cases {
        let e = error(update);
        assert!(e.starts_with(want), "{update:?}: got {e:?}, want {want:?}");
    }
    let long: Vec<String> = (0..64).map(|i| format!("\"/a{i}\"")).collect();
    let e = error(&format!("health_check = [{}]\n", long.join(", ")));
    assert!(
        e.starts_with("/cfg/demo.toml:6: [update] health_check: service \"health-check\": exec has 64 arguments"),
        "{e}"
    );
    // Several problems: each on its own line.
    let e = error("ready_deadline_s = 0\nhold_s = 4000\n");
    assert_eq!(e.lines().count(), 2, "{e}");
}

/// `commit = "attested"`: the key file is read (relative to the config's
/// directory), the deadline defaults to 600 s and is bounded.
#[test]
fn attested_policy_reads_the_verifier_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = azl_sign::generate_key_files(&dir.path().join("verifier.key"), false).unwrap();
    let cfg = dir.path().join("demo.toml");
    let parse = |update: &str| {
        let text = format!("{HEAD}[update]\n{update}");
        let c = Config::parse(SourceFile::new(cfg.clone(), text)).map_err(|e| e.to_string())?;
        let mut d = Diagnostics::<ConfigErrorKind>::new();
        let s = c.image_settings(&MapEnv::default(), &mut d);
        d.finish().map_err(|e| e.to_string()).map(|()| s)
    };
    let s = parse("commit = \"attested\"\nverifier_key = \"verifier.key.pub\"\n").unwrap();
    assert_eq!(
        s.update.commit,
        CommitPolicy::Attested {
            verifier_key: key.public_key,
            deadline_s: 600
        }
    );
    assert_eq!(s.update.commit.name(), "attested");
    let s = parse(
        "commit = \"attested\"\nverifier_key = \"verifier.key.pub\"\napproval_deadline_s = 40\n",
    )
    .unwrap();
    assert!(matches!(
        s.update.commit,
        CommitPolicy::Attested { deadline_s: 40, .. }
    ));
    let e = parse(
        "commit = \"attested\"\nverifier_key = \"verifier.key.pub\"\napproval_deadline_s = 0\n",
    )
    .unwrap_err();
    assert!(
        e.contains("[update] approval_deadline_s = 0 is out of range (1..=3600 seconds)"),
        "{e}"
    );
    // The private key is not a public key file.
    let e = parse("commit = \"attested\"\nverifier_key = \"verifier.key\"\n").unwrap_err();
    assert!(
        e.contains("[update] verifier_key: public key") && e.contains("expected a raw 32-byte"),
        "{e}"
    );
    // It reaches the boot config and survives the envelope.
    let boards = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../boards");
    let b = board::load(&boards.join("qemu-virt.toml"), Some("qemu-virt")).unwrap();
    let root = bootcfg::root_spec(b.disk.as_ref().unwrap(), "root-a", false);
    let bc = bootcfg::compile(&s, &b, &ModuleSet::default(), Some(root));
    let back = BootConfig::from_bytes(&bc.to_bytes().unwrap()).unwrap();
    assert_eq!(back.root.unwrap().update.commit, s.update.commit);
}

#[test]
fn update_policy_reaches_the_boot_config_of_a_disk_image() {
    let s = settings(&format!(
        "{HEAD}[update]\ncommit = \"manual\"\nhold_s = 7\nhealth_check = [\"/bin/true\"]\n"
    ))
    .unwrap();
    let boards = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../boards");
    let b = board::load(&boards.join("qemu-virt.toml"), Some("qemu-virt")).unwrap();
    let layout = b.disk.as_ref().expect("qemu-virt has a disk layout");
    let root = bootcfg::root_spec(layout, "root-a", false);
    let cfg = bootcfg::compile(&s, &b, &ModuleSet::default(), Some(root));
    let spec = cfg.root.as_ref().unwrap();
    assert_eq!(spec.update, s.update);
    assert_eq!(spec.update.hold_s, 7);
    let bytes = cfg.to_bytes().unwrap();
    let back = BootConfig::from_bytes(&bytes).unwrap();
    assert_eq!(back, cfg);
    assert_eq!(back.root.unwrap().update.commit, CommitPolicy::Manual);
}
