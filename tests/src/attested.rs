//! Pieces of the attested-commit test (`tests/update_attested.rs`): a boot
//! the host talks to while it runs, and two mailbox disks to talk through.
//!
//! The guest has no network. The host and the guest exchange files
//! through raw virtio disks instead: the guest writes its attestation
//! report into the *outbox* disk (`dd … conv=fsync`, so QEMU has written
//! it to the image file) and says so on the serial console; the host
//! reads the file, verifies the report, signs approvals and writes them
//! into the *inbox* disk, header last; the guest polls the inbox with its
//! page cache dropped (`echo 3 > /proc/sys/vm/drop_caches`), so it reads
//! what QEMU reads from the file now.
use crate::{read_at, write_at, Boot, Booted};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// First bytes of the inbox and outbox disks (distinct, so the control
/// script finds each by the sha256 of its first 4 KiB).
pub const INBOX_LABEL: &[u8] = b"azl-e2e inbox\n";
pub const OUTBOX_LABEL: &[u8] = b"azl-e2e outbox\n";
/// Where a mailbox's payload starts (after the label block).
pub const PAYLOAD: u64 = 4096;

/// A 1 MiB mailbox disk starting with `label`.
pub fn mailbox(dir: &Path, name: &str, label: &[u8]) -> PathBuf {
    crate::update::raw_disk(dir, name, label)
}

/// Put approvals into an inbox: each at its own 4 KiB block from block 2,
/// then (after a sync) the header line at block 1:
/// `APPROVALS name:len name:len …`. The guest waits for the header.
pub fn write_inbox(inbox: &Path, approvals: &[(&str, Vec<u8>)]) {
    let mut header = String::from("APPROVALS");
    for (i, (name, bytes)) in approvals.iter().enumerate() {
        assert!(bytes.len() <= 4096, "{name}: {} bytes", bytes.len());
        write_at(inbox, PAYLOAD * (2 + i as u64), bytes);
        header.push_str(&format!(" {name}:{}", bytes.len()));
    }
    sync(inbox);
    header.push('\n');
    write_at(inbox, PAYLOAD, header.as_bytes());
    sync(inbox);
}

fn sync(p: &Path) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(p)
        .and_then(|f| f.sync_all())
        .unwrap_or_else(|e| panic!("sync {}: {e}", p.display()));
}

/// Guest shell functions for the mailboxes: `$IN` and `$OUT` must be set.
/// `send_report FILE` writes FILE to the outbox and prints
/// `report-ready=LEN`; `take_approvals` waits (up to 120 s) for the
/// inbox header, then runs `update approve` on each approval in order and
/// prints `A NAME rc=N MESSAGE` for each.
pub const MAILBOX_SH: &str = r#"send_report() { dd if=$1 of=$OUT bs=4096 seek=1 conv=fsync 2>/dev/null; echo "report-ready=$(wc -c < $1)"; }
take_approvals() {
  i=0; h=""
  while [ $i -lt 600 ]; do
    echo 3 > /proc/sys/vm/drop_caches
    h=$(dd if=$IN bs=4096 skip=1 count=1 2>/dev/null | head -n 1 | tr -d '\000')
    case "$h" in APPROVALS*) break;; esac
    sleep 0.2; i=$((i+1))
  done
  echo "inbox=$h"
  k=2
  for e in ${h#APPROVALS}; do
    name=${e%%:*}; len=${e#*:}
    dd if=$IN bs=4096 skip=$k count=1 2>/dev/null | head -c $len > /tmp/approval.$name
    m=$(/sbin/init update approve /tmp/approval.$name 2>&1)
    echo "A $name rc=$? $(echo "$m" | tr '\n' ' ')"
    k=$((k+1))
  done
}
"#;

/// The result line `A NAME rc=N MESSAGE` of approval `name`: (rc, message).
pub fn approve_result(b: &Booted, name: &str) -> (String, String) {
    let needle = format!("A {name} rc=");
    let l = b
        .serial
        .lines()
        .find(|l| l.contains(&needle))
        .unwrap_or_else(|| panic!("no result for approval {name}\n{}", b.dump()));
    let rest = l.split(&needle).nth(1).unwrap_or_default();
    let (rc, msg) = rest.split_once(' ').unwrap_or((rest, ""));
    (rc.to_string(), msg.trim().to_string())
}

/// The report the guest put into `outbox`, `len` bytes.
pub fn read_outbox(outbox: &Path, len: usize) -> Vec<u8> {
    read_at(outbox, PAYLOAD, len)
}

/// A boot the host interacts with: `imagegen run` in the background
/// (its own process group), the serial log in a file the host watches.
pub struct Live {
    child: Child,
    log: PathBuf,
    err: PathBuf,
    started: Instant,
}

impl Live {
    pub fn start(out: &Path, opts: &Boot, log: &Path) -> Live {
        use std::os::unix::process::CommandExt;
        let err = log.with_extension("stderr");
        let file = |p: &Path| {
            std::fs::File::create(p).unwrap_or_else(|e| panic!("create {}: {e}", p.display()))
        };
        let mut cmd = crate::run_command(out, opts, Duration::from_secs(240));
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file(log))
            .stderr(file(&err))
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run imagegen run: {e}"));
        Live {
            child,
            log: log.to_path_buf(),
            err,
            started: Instant::now(),
        }
    }

    fn serial(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// Wait until a serial line contains `needle`; returns the text after
    /// it on that line. Panics (after stopping the boot) at `limit` or if
    /// the boot ends first.
    pub fn wait_for(&mut self, needle: &str, limit: Duration) -> String {
        loop {
            let text = self.serial();
            if let Some(l) = text.lines().find(|l| l.contains(needle)) {
                return l
                    .split(needle)
                    .nth(1)
                    .unwrap_or_default()
                    .trim()
                    .to_string();
            }
            let ended = matches!(self.child.try_wait(), Ok(Some(_)));
            if ended || self.started.elapsed() >= limit {
                self.kill();
                panic!(
                    "serial log lacks {needle:?} ({})\n{text}",
                    if ended { "the boot ended" } else { "timed out" }
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn kill(&mut self) {
        let pgid = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &pgid]).status();
        let _ = self.child.wait();
    }

    /// Wait for the boot to end by itself (`limit` after its start at
    /// most) and return its log.
    pub fn finish(mut self, limit: Duration) -> Booted {
        let code = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status.code(),
                Ok(None) if self.started.elapsed() < limit => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                Ok(None) => {
                    self.kill();
                    panic!("the boot did not end within {limit:?}\n{}", self.serial());
                }
                Err(e) => panic!("wait for imagegen run: {e}"),
            }
        };
        let b = Booted {
            code,
            serial: self.serial(),
            stderr: String::from_utf8_lossy(&std::fs::read(&self.err).unwrap_or_default())
                .into_owned(),
            elapsed: self.started.elapsed(),
        };
        assert_ne!(b.code, Some(124), "boot timed out\n{}", b.dump());
        b
    }
}
