//! Shared pieces of the A/B update tests (`tests/update.rs`,
//! `tests/powercut.rs`): bundles from `imagegen bundle`, bundles carried on
//! extra virtio disks (raw, like a USB stick, or as files on an ext4
//! disk), a control script the guest's agent service runs, the guest's
//! `update status --json`, slot digests, and a bundle laid out as a slot
//! (what `dd` of a slot image would write).
use crate::{read_at, run_mut, Booted, Image};
use azl_formats::bundle::{Preamble, PREAMBLE_LEN};
use azl_formats::envelope::Enveloped;
use azl_formats::manifest::{region_of, SignedManifest, MANIFEST_REGION};
use std::path::{Path, PathBuf};
use std::process::Command;

/// First bytes of a control disk: the agent runs it only then.
pub const CONTROL_MAGIC: &str = "#azl-ctl";

/// The update face inside the guest (init's `update` command).
pub const UPDATE: &str = "/sbin/init update";

/// The agent: runs the control disk (found by its magic on any virtio
/// disk) with `sh`, then powers off. Every update-test image carries it,
/// so one image serves many boots whose steps the host chooses.
///
/// Virtio disks do not get their letters in `--disk` order (QEMU's virt
/// machine hands the transports out from the top, so the image's own disk
/// is the last letter); scripts therefore find each disk by content (see
/// [`control_disk`]).
pub fn with_agent(img: Image) -> Image {
    let script = format!(
        "for d in /dev/vd?; do if head -c {n} $d 2>/dev/null | grep -q '{CONTROL_MAGIC}'; then sh $d; echo agent-rc=$?; fi; done; /sbin/initctl poweroff",
        n = CONTROL_MAGIC.len()
    );
    img.sh_service("agent", &script, "restart = \"never\"")
        .with_applets(&["cut", "tr", "umount", "sha256sum"])
}

/// A raw disk holding `script` for the agent (zero-padded to 1 MiB; the
/// script ends with `exit`, so the shell never reads the padding). Before
/// the script, `$D1`, `$D2`, … are set to the guest devices of `disks`
/// (found by the sha256 of their first 4 KiB, which must differ), and `$BS`
/// to the boot-state partition (from `update status --json`).
pub fn control_disk(dir: &Path, name: &str, script: &str, disks: &[PathBuf]) -> PathBuf {
    let mut text = format!(
        "{CONTROL_MAGIC}\n\
         head4k() {{ dd if=$1 bs=4096 count=1 2>/dev/null | sha256sum | cut -c1-64; }}\n\
         find_disk() {{ for d in /dev/vd?; do [ \"$(head4k $d)\" = \"$1\" ] && {{ echo $d; return 0; }}; done; echo /dev/missing-$1; }}\n\
         BS=$(/sbin/init update status --json | sed -n 's/.*\"location\":\"\\([^\"]*\\)\".*/\\1/p')\n"
    );
    let mut seen = Vec::new();
    for (i, d) in disks.iter().enumerate() {
        let head = read_at(d, 0, 4096);
        let h = hex(&azl_formats::sha256(&head));
        assert!(
            !seen.contains(&h),
            "disks {} share their first 4 KiB",
            d.display()
        );
        text.push_str(&format!("D{}=$(find_disk {h})\n", i + 1));
        seen.push(h);
    }
    text.push_str(&format!("{script}\nexit 0\n"));
    raw_disk(dir, name, text.as_bytes())
}

/// Boot `out` with a control disk holding `script` (see [`control_disk`];
/// `n` numbers its file in `dir`), then `disks`, a TPM if `tpm`, and the
/// extra kernel command-line words `append`; at most 240 s.
pub fn control_boot(
    out: &Path,
    dir: &Path,
    n: usize,
    script: &str,
    disks: &[PathBuf],
    tpm: bool,
    append: &str,
) -> Booted {
    let ctl = control_disk(dir, &format!("ctl{n}.img"), script, disks);
    let mut all = vec![ctl];
    all.extend(disks.iter().cloned());
    crate::boot(
        out,
        &crate::Boot {
            disks: all,
            tpm,
            timeout: Some(std::time::Duration::from_secs(240)),
            append: append.into(),
        },
    )
}

/// `bytes` as a raw disk image, zero-padded to a whole MiB (QEMU and the
/// guest see a block device; the bundle installer allows zero padding
/// after a bundle there).
pub fn raw_disk(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    let mut b = bytes.to_vec();
    b.resize(b.len().next_multiple_of(1 << 20).max(1 << 20), 0);
    std::fs::write(&p, b).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    p
}

/// An ext4 disk image whose root holds `files` (made with the reference
/// tool `mkfs.ext4 -d`), for bundles that must be regular files in the
/// guest (exact length: truncations, trailing bytes).
pub fn files_disk(dir: &Path, name: &str, files: &[(String, Vec<u8>)]) -> PathBuf {
    let src = dir.join(format!("{name}.d"));
    std::fs::create_dir_all(&src).unwrap_or_else(|e| panic!("mkdir {}: {e}", src.display()));
    let mut total = 0u64;
    for (n, bytes) in files {
        std::fs::write(src.join(n), bytes).unwrap_or_else(|e| panic!("write {n}: {e}"));
        total += bytes.len() as u64;
    }
    let img = dir.join(name);
    let mib = total / (1 << 20) * 11 / 10 + 16;
    let r = run_mut(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-E", "root_owner=0:0", "-d"])
            .arg(&src)
            .arg(&img)
            .arg(format!("{mib}M")),
    );
    assert!(r.ok, "mkfs.ext4: {}{}", r.stdout, r.stderr);
    img
}

/// `imagegen bundle` of `img` for `slot`: the image's key (its `--key`
/// build argument), its config written to `dir/image.toml`, the bundle to
/// `dir/NAME`. `extra` adds arguments (`--min-from-security-version N`).
pub fn bundle(img: &Image, dir: &Path, name: &str, slot: &str, extra: &[&str]) -> PathBuf {
    let cfg = dir.join("image.toml");
    std::fs::write(&cfg, img.config_text())
        .unwrap_or_else(|e| panic!("write {}: {e}", cfg.display()));
    let out = dir.join(name);
    let r = run_mut(
        Command::new(crate::imagegen())
            .arg("bundle")
            .arg("-c")
            .arg(&cfg)
            .args(&img.build_args)
            .arg("-o")
            .arg(&out)
            .args(["--slot", slot])
            .args(extra),
    );
    assert!(
        r.ok,
        "imagegen bundle failed:\n{}{}\n--- config ---\n{}",
        r.stdout,
        r.stderr,
        img.config_text()
    );
    out
}

/// The JSON a guest printed on a line `KEY=…` (e.g. `update status --json`).
pub fn json_value(b: &Booted, key: &str) -> serde_json::Value {
    let text = b.value(key);
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{key}= is not JSON ({e}): {text}\n{}", b.dump()))
}

/// Every `KEY=…` line's JSON, in order.
pub fn json_values(b: &Booted, key: &str) -> Vec<serde_json::Value> {
    let needle = format!("{key}=");
    b.serial
        .lines()
        .filter_map(|l| l.split_once(&needle).map(|(_, v)| v.trim()))
        .map(|v| serde_json::from_str(v).unwrap_or_else(|e| panic!("{key}= not JSON ({e}): {v}")))
        .collect()
}

/// One slot's entry of a status document.
pub fn slot_of<'a>(status: &'a serde_json::Value, slot: &str) -> &'a serde_json::Value {
    status["slots"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == slot))
        .unwrap_or_else(|| panic!("status lacks slot {slot}: {status}"))
}

/// sha256 (hex) of a partition's bytes in a disk image.
pub fn partition_sha256(disk: &Path, name: &str) -> String {
    let p = crate::partition(disk, name);
    hex(&azl_formats::sha256(&read_at(
        disk,
        p.offset,
        p.size as usize,
    )))
}

/// sha256 (hex) of the boot-state copy in force (the valid copy with the
/// higher sequence number; see docs/update.md) and its sequence number;
/// `None` when no copy is valid (a fresh disk).
pub fn bootstate_in_force(disk: &Path) -> Option<(u64, String)> {
    let p = crate::partition(disk, "bootstate");
    let copies = [0u64, 65536].map(|at| read_at(disk, p.offset + at, 4096));
    let valid = |c: &[u8]| -> Option<u64> {
        let len = u16::from_le_bytes([*c.get(6)?, *c.get(7)?]) as usize;
        let body_end = 16 + len;
        let sum = c.get(body_end..body_end + 32)?;
        let ok =
            c.get(..4)? == b"AZBS" && azl_formats::sha256(c.get(..body_end)?).as_slice() == sum;
        let seq = u64::from_le_bytes(c.get(8..16)?.try_into().ok()?);
        ok.then_some(seq)
    };
    copies
        .iter()
        .filter_map(|c| valid(c).map(|seq| (seq, c)))
        .max_by_key(|(seq, _)| *seq)
        .map(|(seq, c)| (seq, hex(&azl_formats::sha256(c))))
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A bundle's sections, by byte range.
pub struct Sections {
    pub manifest: std::ops::Range<usize>,
    pub header: std::ops::Range<usize>,
    pub tree: std::ops::Range<usize>,
    pub data: std::ops::Range<usize>,
}

pub fn sections(bundle: &[u8]) -> Sections {
    let pre = Preamble::decode(bundle).unwrap_or_else(|e| panic!("bundle preamble: {e}"));
    let m_end = PREAMBLE_LEN + pre.manifest_len as usize;
    let h_end = m_end + pre.header_len as usize;
    let m = manifest_of(bundle);
    let t_end = h_end + m.rootfs.verity.hash_size as usize;
    Sections {
        manifest: PREAMBLE_LEN..m_end,
        header: m_end..h_end,
        tree: h_end..t_end,
        // Kernel, initramfs and cmdline payloads (UEFI boards) follow.
        data: t_end..(t_end + m.rootfs.data_size as usize).min(bundle.len()),
    }
}

/// The manifest a bundle carries (decoded, signature not checked).
pub fn manifest_of(bundle: &[u8]) -> azl_formats::manifest::Manifest {
    let pre = Preamble::decode(bundle).unwrap_or_else(|e| panic!("bundle preamble: {e}"));
    let section = bundle
        .get(PREAMBLE_LEN..PREAMBLE_LEN + pre.manifest_len as usize)
        .unwrap_or_else(|| panic!("bundle shorter than its manifest"));
    SignedManifest::from_bytes(section)
        .and_then(|s| s.manifest())
        .unwrap_or_else(|e| panic!("bundle manifest: {e}"))
}

/// Write a bundle into a slot partition of `disk` the way a copy of the
/// built slot would be: data at 0, the hash area at its offset, the
/// manifest region at the slot's end — bypassing the installer.
pub fn write_slot_raw(disk: &Path, slot: &str, bundle: &[u8]) {
    let s = sections(bundle);
    let m = manifest_of(bundle);
    let p = crate::partition(disk, slot);
    let data = bundle.get(s.data.clone()).unwrap_or_default();
    let tree = bundle.get(s.tree.clone()).unwrap_or_default();
    let section = bundle.get(s.manifest.clone()).unwrap_or_default();
    let region = region_of(section).unwrap_or_else(|| panic!("manifest too large for a region"));
    crate::write_at(disk, p.offset, data);
    crate::write_at(disk, p.offset + m.rootfs.verity.hash_offset, tree);
    crate::write_at(disk, p.offset + p.size - MANIFEST_REGION, &region);
}

/// Re-sign a bundle's header with `key` (a PKCS#8 file from `imagegen
/// keygen`) after `edit` changed it: hostile bundles that carry a valid
/// signature by the trusted key but a header that lies (an absurd size, a
/// digest of tampered bytes). The payloads are kept as they are.
pub fn resign_header(
    bundle: &[u8],
    key: &Path,
    edit: impl FnOnce(&mut azl_formats::bundle::Header),
) -> Vec<u8> {
    use azl_formats::bundle::{encode_head, Header, SignedHeader};
    use ring::signature::{Ed25519KeyPair, KeyPair};
    let s = sections(bundle);
    let sh = SignedHeader::from_bytes(bundle.get(s.header.clone()).unwrap_or_default())
        .unwrap_or_else(|e| panic!("bundle header envelope: {e}"));
    let mut h = Header::from_bytes(&sh.header).unwrap_or_else(|e| panic!("bundle header: {e}"));
    edit(&mut h);
    let der = std::fs::read(key).unwrap_or_else(|e| panic!("read {}: {e}", key.display()));
    let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
        .unwrap_or_else(|e| panic!("key {}: {e}", key.display()));
    let hb = h
        .to_bytes()
        .unwrap_or_else(|e| panic!("encode header: {e}"));
    let mut ed25519 = [0u8; 64];
    ed25519.copy_from_slice(pair.sign(&hb).as_ref());
    let signed = SignedHeader {
        header: hb,
        signature: azl_formats::manifest::Sig {
            key_id: azl_formats::manifest::key_id(pair.public_key().as_ref()),
            ed25519,
        },
    };
    let section = bundle.get(s.manifest.clone()).unwrap_or_default();
    let mut out = encode_head(section, &signed).unwrap_or_else(|e| panic!("encode head: {e}"));
    out.extend_from_slice(bundle.get(s.header.end..).unwrap_or_default());
    out
}

/// A bundle with another bundle's header (and the first one's manifest
/// and payloads): a header signed by another key, or for another manifest.
pub fn swap_header(bundle: &[u8], header_from: &[u8]) -> Vec<u8> {
    use azl_formats::bundle::{encode_head, SignedHeader};
    let (s, o) = (sections(bundle), sections(header_from));
    let other = SignedHeader::from_bytes(header_from.get(o.header).unwrap_or_default())
        .unwrap_or_else(|e| panic!("bundle header envelope: {e}"));
    let section = bundle.get(s.manifest.clone()).unwrap_or_default();
    let mut out = encode_head(section, &other).unwrap_or_else(|e| panic!("encode head: {e}"));
    out.extend_from_slice(bundle.get(s.header.end..).unwrap_or_default());
    out
}
