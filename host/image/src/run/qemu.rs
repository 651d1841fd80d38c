//! The QEMU command line for booting a built image: machine, CPU and
//! devices from the board, kernel/initrd/cmdline from the output directory,
//! disks, the TPM, and the serial console wiring.
use crate::board::Qemu;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The QEMU system emulator for a board architecture.
pub fn binary_for(arch: &str) -> String {
    format!("qemu-system-{arch}")
}

/// Inputs of the command line.
#[derive(Debug, Clone)]
pub struct QemuInputs<'a> {
    pub qemu: &'a Qemu,
    pub kernel: &'a Path,
    pub initrd: &'a Path,
    /// Full kernel command line.
    pub cmdline: &'a str,
    pub disks: &'a [PathBuf],
    /// swtpm control socket, when a TPM is attached.
    pub tpm_socket: Option<&'a Path>,
    /// With a terminal, the console also multiplexes the monitor (Ctrl-A C)
    /// and Ctrl-A X quits; without one (CI) plain stdio and no monitor.
    pub stdin_is_tty: bool,
    pub extra: &'a [String],
}

/// QEMU option values are comma-separated: a literal comma is doubled.
fn qemu_escape(p: &Path) -> OsString {
    let s = p.as_os_str().to_string_lossy();
    OsString::from(s.replace(',', ",,"))
}

/// Arguments after the program name.
pub fn args(i: &QemuInputs) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::new();
    let mut push = |items: &[&str]| a.extend(items.iter().map(OsString::from));
    push(&["-machine", &i.qemu.machine, "-cpu", &i.qemu.cpu]);
    push(&[
        "-m",
        &i.qemu.memory_mb.to_string(),
        "-smp",
        &i.qemu.smp.to_string(),
    ]);
    push(&["-nographic", "-no-reboot"]);
    if i.stdin_is_tty {
        push(&["-serial", "mon:stdio"]);
    } else {
        push(&["-serial", "stdio", "-monitor", "none"]);
    }
    a.push("-kernel".into());
    a.push(i.kernel.into());
    a.push("-initrd".into());
    a.push(i.initrd.into());
    a.push("-append".into());
    a.push(i.cmdline.into());
    for d in &i.qemu.devices {
        a.push("-device".into());
        a.push(d.into());
    }
    for (n, disk) in i.disks.iter().enumerate() {
        let mut drive = OsString::from(format!("if=none,id=d{n},file="));
        drive.push(qemu_escape(disk));
        drive.push(",format=raw");
        a.push("-drive".into());
        a.push(drive);
        a.push("-device".into());
        a.push(format!("virtio-blk-device,drive=d{n}").into());
    }
    if let Some(sock) = i.tpm_socket {
        let mut chardev = OsString::from("socket,id=chrtpm,path=");
        chardev.push(qemu_escape(sock));
        a.push("-chardev".into());
        a.push(chardev);
        a.push("-tpmdev".into());
        a.push("emulator,id=tpm0,chardev=chrtpm".into());
        a.push("-device".into());
        a.push("tpm-tis-device,tpmdev=tpm0".into());
    }
    a.extend(i.extra.iter().map(OsString::from));
    a
}

/// A command line as a shell would need it typed (for the log line).
pub fn shell_quote(program: &str, args: &[OsString]) -> String {
    std::iter::once(program.to_string())
        .chain(args.iter().map(|a| {
            let s = a.to_string_lossy();
            if !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./=,:@%+".contains(&b))
            {
                s.into_owned()
            } else {
                format!("'{}'", s.replace('\'', r"'\''"))
            }
        }))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qemu() -> Qemu {
        Qemu {
            machine: "virt".into(),
            cpu: "cortex-a57".into(),
            memory_mb: 512,
            smp: 1,
            devices: vec!["i6300esb".into()],
        }
    }

    #[test]
    fn command_line() {
        let q = qemu();
        let disks = [PathBuf::from("/d/a.img"), PathBuf::from("/d/b,c.img")];
        let extra = ["-s".to_string()];
        let i = QemuInputs {
            qemu: &q,
            kernel: Path::new("/o/kernel"),
            initrd: Path::new("/o/initramfs.cpio.gz"),
            cmdline: "console=ttyAMA0 panic=-1 x=1",
            disks: &disks,
            tpm_socket: Some(Path::new("/t/sock")),
            stdin_is_tty: false,
            extra: &extra,
        };
        let line = shell_quote("qemu-system-aarch64", &args(&i));
        assert_eq!(
            line,
            "qemu-system-aarch64 -machine virt -cpu cortex-a57 -m 512 -smp 1 -nographic -no-reboot \
             -serial stdio -monitor none -kernel /o/kernel -initrd /o/initramfs.cpio.gz \
             -append 'console=ttyAMA0 panic=-1 x=1' -device i6300esb \
             -drive if=none,id=d0,file=/d/a.img,format=raw -device virtio-blk-device,drive=d0 \
             -drive if=none,id=d1,file=/d/b,,c.img,format=raw -device virtio-blk-device,drive=d1 \
             -chardev socket,id=chrtpm,path=/t/sock -tpmdev emulator,id=tpm0,chardev=chrtpm \
             -device tpm-tis-device,tpmdev=tpm0 -s"
        );
        let tty = QemuInputs {
            stdin_is_tty: true,
            tpm_socket: None,
            disks: &[],
            extra: &[],
            ..i
        };
        let line = shell_quote("q", &args(&tty));
        assert!(line.contains(" -serial mon:stdio -kernel "), "{line}");
        assert!(
            !line.contains("-monitor") && !line.contains("tpm"),
            "{line}"
        );
        assert_eq!(
            shell_quote("a", &["it's".into(), "".into()]),
            r"a 'it'\''s' ''"
        );
    }
}
