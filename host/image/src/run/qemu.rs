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
/// How the machine starts its kernel.
#[derive(Debug, Clone)]
pub enum Firmware<'a> {
    /// QEMU loads the kernel itself (`-kernel -initrd -append`).
    Direct {
        kernel: &'a Path,
        initrd: &'a Path,
        /// Full kernel command line.
        cmdline: &'a str,
    },
    /// UEFI firmware in two pflash devices: the read-only code and the
    /// board's writable variable store; it starts the kernel from the ESP.
    Uefi { code: &'a Path, vars: &'a Path },
}

/// Debian's edk2 for arm64 (`qemu-efi-aarch64`).
pub const AAVMF_CODE: &str = "/usr/share/AAVMF/AAVMF_CODE.fd";
/// Its variable store template (copied per image, never used in place).
pub const AAVMF_VARS: &str = "/usr/share/AAVMF/AAVMF_VARS.fd";

#[derive(Debug, Clone)]
pub struct QemuInputs<'a> {
    pub qemu: &'a Qemu,
    pub firmware: Firmware<'a>,
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
    match &i.firmware {
        Firmware::Direct {
            kernel,
            initrd,
            cmdline,
        } => {
            a.push("-kernel".into());
            a.push(kernel.into());
            a.push("-initrd".into());
            a.push(initrd.into());
            a.push("-append".into());
            a.push(cmdline.into());
        }
        Firmware::Uefi { code, vars } => {
            let mut c = OsString::from("if=pflash,format=raw,readonly=on,file=");
            c.push(qemu_escape(code));
            let mut v = OsString::from("if=pflash,format=raw,file=");
            v.push(qemu_escape(vars));
            // No default NIC: edk2 would try PXE and HTTP boot over IPv4
            // and IPv6 on it (minutes under TCG) before the ESP's script.
            a.extend([
                "-drive".into(),
                c,
                "-drive".into(),
                v,
                "-nic".into(),
                "none".into(),
            ]);
        }
    }
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
            firmware: Firmware::Direct {
                kernel: Path::new("/o/kernel"),
                initrd: Path::new("/o/initramfs.cpio.gz"),
                cmdline: "console=ttyAMA0 panic=-1 x=1",
            },
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
        let efi = QemuInputs {
            firmware: Firmware::Uefi {
                code: Path::new("/fw/CODE.fd"),
                vars: Path::new("/o/efi-vars.fd"),
            },
            ..tty
        };
        let line = shell_quote("q", &args(&efi));
        assert!(
            line.contains(
                " -drive if=pflash,format=raw,readonly=on,file=/fw/CODE.fd -drive if=pflash,format=raw,file=/o/efi-vars.fd -nic none "
            ),
            "{line}"
        );
        assert!(
            !line.contains("-kernel") && !line.contains("-append"),
            "{line}"
        );
        assert_eq!(
            shell_quote("a", &["it's".into(), "".into()]),
            r"a 'it'\''s' ''"
        );
    }
}
