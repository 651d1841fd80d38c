//! Finding the init binary (`/init` in the initramfs) and checking that it
//! can run there: a 64-bit little-endian aarch64 ELF executable, statically
//! linked (the initramfs has no dynamic loader).
//!
//! Search order: `--init`, `[image] init`, `$AZL_INIT`, then next to the
//! imagegen executable in a cargo target dir
//! (`<exe dir>/../aarch64-unknown-linux-musl/release/init` and
//! `<exe dir>/../../aarch64-unknown-linux-musl/release/init`).
use crate::expand::Env;
use object::elf;
use object::read::elf::{ElfFile64, FileHeader, ProgramHeader};
use object::Endianness;
use std::path::{Path, PathBuf};

/// How init is cross-built (for messages).
pub const BUILD_HINT: &str =
    "cargo build --release -p azl-init --target aarch64-unknown-linux-musl";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitBinary {
    pub path: PathBuf,
    /// Where the path came from: "--init", "[image] init", "$AZL_INIT", "default".
    pub origin: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum InitBinError {
    #[error("no init binary found; looked at:\n{}\nbuild it with `{BUILD_HINT}`, or pass --init PATH",
        .tried.iter().map(|p| format!("  {}", p.display())).collect::<Vec<_>>().join("\n"))]
    NotFound { tried: Vec<PathBuf> },
    #[error("init binary {path} (from {origin}) does not exist")]
    Missing { path: PathBuf, origin: &'static str },
    #[error("cannot read init binary {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("init binary {path} is not an ELF file")]
    NotElf { path: PathBuf },
    #[error("init binary {path} is not a 64-bit little-endian ELF (aarch64 Linux needs one)")]
    WrongClass { path: PathBuf },
    #[error("init binary {path} is an ELF for {machine} (e_machine {number}), not aarch64 (e_machine 183); build it with `{BUILD_HINT}`")]
    WrongMachine {
        path: PathBuf,
        number: u16,
        machine: &'static str,
    },
    #[error(
        "init binary {path} is not an executable (ELF type {e_type}); pass the linked program"
    )]
    NotExecutable { path: PathBuf, e_type: u16 },
    #[error("init binary {path} is dynamically linked (interpreter {interp}), but the initramfs has no dynamic loader; link it statically (musl)")]
    Dynamic { path: PathBuf, interp: String },
}

fn machine_name(m: u16) -> &'static str {
    match m {
        elf::EM_386 => "x86",
        elf::EM_X86_64 => "x86-64",
        elf::EM_ARM => "32-bit ARM",
        elf::EM_AARCH64 => "aarch64",
        elf::EM_RISCV => "RISC-V",
        elf::EM_PPC64 => "ppc64",
        elf::EM_S390 => "s390",
        _ => "another machine",
    }
}

/// Pick the init binary (it must exist; it is not checked here).
pub fn locate(
    cli: Option<&Path>,
    config: Option<&Path>,
    env: &dyn Env,
    exe: Option<&Path>,
) -> Result<InitBinary, InitBinError> {
    let explicit = [
        (cli.map(Path::to_path_buf), "--init"),
        (config.map(Path::to_path_buf), "[image] init"),
        (
            env.var("AZL_INIT")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            "$AZL_INIT",
        ),
    ];
    if let Some((Some(path), origin)) = explicit.into_iter().find(|(p, _)| p.is_some()) {
        if !path.is_file() {
            return Err(InitBinError::Missing { path, origin });
        }
        return Ok(InitBinary { path, origin });
    }
    // <exe dir>/.. and <exe dir>/../.., spelled without `..`.
    let exe_dir = exe.and_then(Path::parent);
    let tried: Vec<PathBuf> = [
        exe_dir.and_then(Path::parent),
        exe_dir.and_then(Path::parent).and_then(Path::parent),
    ]
    .into_iter()
    .flatten()
    .map(|d| d.join("aarch64-unknown-linux-musl/release/init"))
    .collect();
    match tried.iter().find(|p| p.is_file()) {
        Some(p) => Ok(InitBinary {
            path: p.clone(),
            origin: "default",
        }),
        None => Err(InitBinError::NotFound { tried }),
    }
}

/// Read `path` and check it is a static aarch64 executable. Returns its bytes.
pub fn check(path: &Path) -> Result<Vec<u8>, InitBinError> {
    let data = std::fs::read(path).map_err(|source| InitBinError::Read {
        path: path.into(),
        source,
    })?;
    check_bytes(path, &data)?;
    Ok(data)
}

fn check_bytes(path: &Path, data: &[u8]) -> Result<(), InitBinError> {
    let p = || path.to_path_buf();
    if !data.starts_with(&elf::ELFMAG) {
        return Err(InitBinError::NotElf { path: p() });
    }
    // e_ident[EI_CLASS] and e_ident[EI_DATA].
    if data.get(4) != Some(&elf::ELFCLASS64) || data.get(5) != Some(&elf::ELFDATA2LSB) {
        return Err(InitBinError::WrongClass { path: p() });
    }
    let file =
        ElfFile64::<Endianness>::parse(data).map_err(|_| InitBinError::NotElf { path: p() })?;
    let endian = file.endian();
    let header = file.elf_header();
    let machine = header.e_machine(endian);
    if machine != elf::EM_AARCH64 {
        return Err(InitBinError::WrongMachine {
            path: p(),
            number: machine,
            machine: machine_name(machine),
        });
    }
    let e_type = header.e_type(endian);
    if e_type != elf::ET_EXEC && e_type != elf::ET_DYN {
        return Err(InitBinError::NotExecutable { path: p(), e_type });
    }
    for ph in file.elf_program_headers() {
        if ph.p_type(endian) == elf::PT_INTERP {
            let interp = ph
                .data(endian, data)
                .map(|d| {
                    String::from_utf8_lossy(d)
                        .trim_end_matches('\0')
                        .to_string()
                })
                .unwrap_or_default();
            return Err(InitBinError::Dynamic { path: p(), interp });
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::expand::MapEnv;

    /// A minimal static ELF64 executable header for `machine` (no program headers).
    pub(crate) fn fake_elf(machine: u16, e_type: u16) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(&elf::ELFMAG);
        h[4] = elf::ELFCLASS64;
        h[5] = elf::ELFDATA2LSB;
        h[6] = 1; // EI_VERSION
        h[16..18].copy_from_slice(&e_type.to_le_bytes());
        h[18..20].copy_from_slice(&machine.to_le_bytes());
        h[20..24].copy_from_slice(&1u32.to_le_bytes());
        h[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
        h[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        h[58..60].copy_from_slice(&64u16.to_le_bytes()); // e_shentsize
        h
    }

    /// The same with one PT_INTERP program header.
    fn fake_dynamic_elf() -> Vec<u8> {
        let mut h = fake_elf(elf::EM_AARCH64, elf::ET_DYN);
        let interp = b"/lib/ld-linux-aarch64.so.1\0";
        h[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        h[56..58].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
        let mut ph = vec![0u8; 56];
        ph[..4].copy_from_slice(&elf::PT_INTERP.to_le_bytes());
        ph[8..16].copy_from_slice(&120u64.to_le_bytes()); // p_offset
        ph[32..40].copy_from_slice(&(interp.len() as u64).to_le_bytes()); // p_filesz
        ph[40..48].copy_from_slice(&(interp.len() as u64).to_le_bytes()); // p_memsz
        h.extend_from_slice(&ph);
        h.extend_from_slice(interp);
        h
    }

    #[test]
    fn checks() {
        let p = Path::new("init");
        check_bytes(p, &fake_elf(elf::EM_AARCH64, elf::ET_EXEC)).unwrap();
        check_bytes(p, &fake_elf(elf::EM_AARCH64, elf::ET_DYN)).unwrap();
        let e = check_bytes(p, &fake_elf(elf::EM_X86_64, elf::ET_EXEC))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("is an ELF for x86-64 (e_machine 62), not aarch64 (e_machine 183)"),
            "{e}"
        );
        assert!(matches!(
            check_bytes(p, b"#!/bin/sh\n"),
            Err(InitBinError::NotElf { .. })
        ));
        let mut be = fake_elf(elf::EM_AARCH64, elf::ET_EXEC);
        be[4] = elf::ELFCLASS32;
        assert!(matches!(
            check_bytes(p, &be),
            Err(InitBinError::WrongClass { .. })
        ));
        assert!(matches!(
            check_bytes(p, &fake_elf(elf::EM_AARCH64, elf::ET_REL)),
            Err(InitBinError::NotExecutable { .. })
        ));
        let e = check_bytes(p, &fake_dynamic_elf()).unwrap_err().to_string();
        assert!(
            e.contains("dynamically linked (interpreter /lib/ld-linux-aarch64.so.1)"),
            "{e}"
        );
    }

    #[test]
    fn search_order() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("a");
        let b = t.path().join("b");
        std::fs::write(&a, b"").unwrap();
        std::fs::write(&b, b"").unwrap();
        let env = MapEnv::new([("AZL_INIT", b.to_str().unwrap())]);
        let none = MapEnv::default();
        assert_eq!(
            locate(Some(&a), Some(&b), &env, None).unwrap().origin,
            "--init"
        );
        assert_eq!(
            locate(None, Some(&a), &env, None).unwrap().origin,
            "[image] init"
        );
        assert_eq!(locate(None, None, &env, None).unwrap().path, b);
        let e = locate(Some(&t.path().join("nope")), None, &none, None).unwrap_err();
        assert!(
            e.to_string().ends_with("(from --init) does not exist"),
            "{e}"
        );

        // Default: target/<triple>/release/init next to target/release/imagegen.
        let exe = t.path().join("target/release/imagegen");
        let e = locate(None, None, &none, Some(&exe))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("aarch64-unknown-linux-musl/release/init") && e.contains(BUILD_HINT),
            "{e}"
        );
        let init = t
            .path()
            .join("target/aarch64-unknown-linux-musl/release/init");
        std::fs::create_dir_all(init.parent().unwrap()).unwrap();
        std::fs::write(&init, b"").unwrap();
        let found = locate(None, None, &none, Some(&exe)).unwrap();
        assert_eq!(found.origin, "default");
        assert_eq!(found.path, init);
        let exe2 = t
            .path()
            .join("target/x86_64-unknown-linux-gnu/release/imagegen");
        assert!(locate(None, None, &none, Some(&exe2)).is_ok());
    }
}
