//! azl-rpm: what an image build needs from RPM repositories (Azure Linux,
//! Fedora and their kind), read as hostile input.
//!
//! - [`evr`]: epoch:version-release and rpm's order of them (the `rpm`
//!   crate's rpmvercmp, not a copy);
//! - [`dep`]: dependencies as rpm writes them — `name op evr` and rich
//!   expressions `(a or b)`, `(a if b else c)` — and rpm's rule for when a
//!   provide satisfies a requirement;
//! - [`repomd`]: `repodata/repomd.xml`, the index of a repository's
//!   metadata files with their checksums and sizes;
//! - [`metadata`]: loading one of those files: size-capped, checksum
//!   checked against repomd before and after decompression (gzip, xz,
//!   zstd);
//! - [`repo`]: a repository's package list (repomd → primary);
//! - [`source`]: where a repository's files come from — a local directory
//!   or HTTP(S) ([`source::open`] picks by scheme) — always with a size
//!   cap, and over HTTP with timeouts and a bounded, http(s)-only redirect
//!   rule;
//! - [`repomd_sig`]: `repo_gpgcheck`, the detached signature of repomd.xml
//!   verified against the repository's keys before repomd is parsed;
//! - [`cache`]: RPM files stored by checksum (verified on every read,
//!   written atomically), so that rebuilds from the lock work offline;
//! - [`package`]: one RPM file — checksum, digests, OpenPGP signature —
//!   unpacked in memory with its paths, links and file types checked, and
//!   merged with the other packages of the image (conflicts refused);
//! - [`primary`]: `primary.xml` → the packages with their provides,
//!   requires, conflicts, obsoletes, weak dependencies and the file list
//!   primary carries;
//! - [`solve`]: dependency resolution with a SAT solver (resolvo):
//!   requirements, provides and files, rich dependencies, conflicts and
//!   obsoletes, newest first, and explanations that name the chain.
//!
//! Every reader bounds what it allocates by the bytes present and by the
//! caps in [`limits`]; every error names the file and what was wrong.
pub mod cache;
pub mod decompress;
pub mod dep;
pub mod evr;
pub mod filelists;
pub mod keys;
pub mod limits;
pub mod metadata;
pub mod package;
pub mod primary;
pub mod repo;
pub mod repomd;
pub mod repomd_sig;
pub mod solve;
pub mod source;
#[cfg(feature = "testing")]
pub mod testing;
mod xml;
