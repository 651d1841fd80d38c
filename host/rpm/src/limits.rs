//! Caps on what a repository may make the build read or allocate. A real
//! Fedora 41 `primary.xml` is ~80 MiB uncompressed for ~75k packages; the
//! caps leave room above that and stop a hostile repository long before
//! memory runs out.

/// `repomd.xml`.
pub const REPOMD_MAX: u64 = 1 << 20;
/// One metadata file as stored (compressed).
pub const METADATA_MAX: u64 = 256 << 20;
/// One metadata file decompressed.
pub const METADATA_OPEN_MAX: u64 = 1 << 30;
/// Packages in one repository.
pub const PACKAGES_MAX: usize = 500_000;
/// Dependency entries of one kind in one package.
pub const ENTRIES_MAX: usize = 100_000;
/// Nesting of a rich dependency.
pub const RICH_DEPTH_MAX: usize = 16;
/// Bytes of one dependency expression.
pub const DEP_LEN_MAX: usize = 4096;
/// Bytes of files one package may declare (and its payload may expand
/// to). The largest Fedora packages (kernel modules, firmware) stay well
/// below it.
pub const PACKAGE_UNPACKED_MAX: u64 = 2 << 30;
