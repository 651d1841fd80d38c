//! Reading a kernel module's `.modinfo` ELF section: the NUL-separated
//! `key=value` strings that carry its name, dependencies and vermagic.
//! (Debian ships no modules.dep, so this is where dependencies come from.)
use object::{Architecture, Object, ObjectSection};

/// What imagegen needs from `.modinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModInfo {
    /// `name=` (normalized: `-` → `_`), when present.
    pub name: Option<String>,
    /// `depends=`, normalized, in the order listed.
    pub depends: Vec<String>,
    /// `softdep=pre: a b post: c`: the `pre:` names (module names or
    /// aliases) that should be loaded first when available.
    pub softdep_pre: Vec<String>,
    /// `alias=` values (e.g. `crypto-crc32c`), for resolving softdeps.
    pub aliases: Vec<String>,
    /// `vermagic=`: starts with the kernel release the module was built for.
    pub vermagic: Option<String>,
    /// ELF machine of the module.
    pub arch: Architecture,
}

#[derive(Debug, thiserror::Error)]
pub enum ModinfoError {
    #[error("not a valid ELF object: {0}")]
    Elf(#[from] object::Error),
    #[error("no .modinfo section (not a kernel module?)")]
    NoModinfo,
}

/// Module names compare with `-` and `_` treated as equal; `_` is canonical.
pub fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// The `pre:` names of a softdep value (`pre: a b post: c`).
pub fn softdep_pre(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_pre = false;
    for w in value.split_whitespace() {
        match w {
            "pre:" => in_pre = true,
            "post:" => in_pre = false,
            name if in_pre => out.push(normalize(name)),
            _ => {}
        }
    }
    out
}

/// Parse the `.modinfo` of an (uncompressed) module image.
pub fn parse(elf: &[u8]) -> Result<ModInfo, ModinfoError> {
    let file = object::File::parse(elf)?;
    let section = file
        .section_by_name(".modinfo")
        .ok_or(ModinfoError::NoModinfo)?;
    let data = section.data()?;
    let mut info = ModInfo {
        name: None,
        depends: Vec::new(),
        softdep_pre: Vec::new(),
        aliases: Vec::new(),
        vermagic: None,
        arch: file.architecture(),
    };
    for entry in data.split(|b| *b == 0).filter(|e| !e.is_empty()) {
        let Ok(entry) = std::str::from_utf8(entry) else {
            continue; // descriptions may be in any encoding; we need none of them
        };
        let Some((key, value)) = entry.split_once('=') else {
            continue;
        };
        match key {
            "name" => info.name = Some(normalize(value)),
            "depends" => {
                info.depends = value
                    .split(',')
                    .filter(|d| !d.is_empty())
                    .map(normalize)
                    .collect()
            }
            "vermagic" => info.vermagic = Some(value.to_string()),
            "alias" => info.aliases.push(value.to_string()),
            "softdep" => info.softdep_pre.extend(softdep_pre(value)),
            _ => {}
        }
    }
    Ok(info)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use object::write::Object as WObject;
    use object::{BinaryFormat, Endianness, SectionKind};

    /// A relocatable aarch64 ELF with the given `.modinfo` strings, like a `.ko`.
    pub(crate) fn synthetic_ko(arch: Architecture, modinfo: &[&str]) -> Vec<u8> {
        let mut obj = WObject::new(BinaryFormat::Elf, arch, Endianness::Little);
        let text = obj.add_section(Vec::new(), b".text".to_vec(), SectionKind::Text);
        obj.append_section_data(text, &[0xc0, 0x03, 0x5f, 0xd6], 4); // ret
        let mi = obj.add_section(Vec::new(), b".modinfo".to_vec(), SectionKind::ReadOnlyData);
        let mut data = Vec::new();
        for s in modinfo {
            data.extend_from_slice(s.as_bytes());
            data.push(0);
        }
        obj.append_section_data(mi, &data, 1);
        obj.write().unwrap()
    }

    #[test]
    fn synthetic() {
        let ko = synthetic_ko(
            Architecture::Aarch64,
            &[
                "license=GPL",
                "description=caf\u{e9}",
                "depends=dm-bufio,dm_mod,",
                "name=dm_verity",
                "vermagic=6.1.0-28-arm64 SMP mod_unload modversions aarch64",
            ],
        );
        let i = parse(&ko).unwrap();
        assert_eq!(i.name.as_deref(), Some("dm_verity"));
        assert_eq!(i.depends, ["dm_bufio", "dm_mod"]);
        assert_eq!(
            softdep_pre("pre: crypto-crc32c foo post: bar"),
            ["crypto_crc32c", "foo"]
        );
        assert!(softdep_pre("post: bar").is_empty());
        assert!(i.vermagic.unwrap().starts_with("6.1.0-28-arm64 "));
        assert_eq!(i.arch, Architecture::Aarch64);

        let i = parse(&synthetic_ko(Architecture::X86_64, &["depends="])).unwrap();
        assert!(i.depends.is_empty() && i.name.is_none());
        assert_eq!(i.arch, Architecture::X86_64);

        assert!(matches!(parse(b"nope"), Err(ModinfoError::Elf(_))));
        let mut obj = WObject::new(BinaryFormat::Elf, Architecture::Aarch64, Endianness::Little);
        obj.add_section(Vec::new(), b".text".to_vec(), SectionKind::Text);
        assert!(matches!(
            parse(&obj.write().unwrap()),
            Err(ModinfoError::NoModinfo)
        ));
    }

    /// A real Debian module, when scripts/kernels.sh has fetched the kernel.
    #[test]
    fn real_debian_module() {
        let dir = crate::modules::tests::debian_kernel();
        let release = std::fs::read_dir(dir.join("lib/modules"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .file_name()
            .into_string()
            .unwrap();
        let blk = dir.join(format!("lib/modules/{release}/kernel/drivers/block"));
        let ko = std::fs::read_dir(&blk)
            .unwrap()
            .flatten()
            .find(|e| e.file_name().to_string_lossy().starts_with("virtio_blk.ko"))
            .expect("virtio_blk module")
            .path();
        let data = crate::modules::decompress::read_module(&ko).unwrap();
        let i = parse(&data).unwrap();
        assert_eq!(i.name.as_deref(), Some("virtio_blk"));
        assert_eq!(i.arch, Architecture::Aarch64);
        assert!(i.vermagic.unwrap().starts_with(&format!("{release} ")));
    }
}
