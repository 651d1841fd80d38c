//! The verified root's health after boot: dm-verity's status (`V` or `C`
//! for corruption seen) and the kernel's verity complaints, for diagnoses.
use super::verity::DeviceMapper;
use std::os::unix::fs::OpenOptionsExt;

/// The dm device name of the verified root.
pub const DM_NAME: &str = "root";

/// Kernel log lines about verity corruption (at most 8).
pub fn kernel_verity_errors() -> Vec<String> {
    use std::io::Read;
    let mut out = Vec::new();
    let Ok(mut f) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
    else {
        return out;
    };
    let mut buf = vec![0u8; 8192];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let rec = String::from_utf8_lossy(buf.get(..n).unwrap_or(&[])).into_owned();
                let msg = rec
                    .split_once(';')
                    .map(|(_, m)| m)
                    .unwrap_or(&rec)
                    .trim()
                    .to_string();
                if msg.contains("verity") && (msg.contains("corrupt") || msg.contains("error")) {
                    out.push(msg);
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(_) => break,
        }
    }
    out.truncate(8);
    out
}

/// The verity device's health: `Ok(())` while no corruption was seen.
pub fn check_health(dm: &DeviceMapper) -> Result<(), String> {
    match dm.verity_status(DM_NAME) {
        Ok(s) if s.trim() == "C" => {
            let lines = kernel_verity_errors();
            Err(if lines.is_empty() {
                "corruption detected".into()
            } else {
                lines.join("; ")
            })
        }
        _ => Ok(()),
    }
}
