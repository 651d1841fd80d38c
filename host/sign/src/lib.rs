//! Manifest signing keys and the signature scheme (see `docs/manifest.md`).
//!
//! - The private key is an Ed25519 key in a PKCS#8 file (DER, or PEM with a
//!   `PRIVATE KEY` label); `imagegen keygen` writes a v2 document (with the
//!   public key, as ring's `generate_pkcs8` makes), v1 files such as
//!   `openssl genpkey -algorithm ed25519` writes are accepted too.
//! - The public key is the raw 32-byte Ed25519 key: `KEY.pub` next to the
//!   private key, `/etc/azl-edge/manifest.pub` in the initramfs.
//! - The key id is the first 8 bytes of sha256(public key) — the same
//!   definition as init's `manifest::key_id`.
//! - The signature is Ed25519 over the `Manifest` envelope bytes, which are
//!   stored verbatim in [`SignedManifest::manifest`]; [`verify`] is the
//!   formats contract's `signature::verify`, the very check init runs
//!   (signed at all, key length, key id, signature, then decodes).
//! - A bundle header (`formats::bundle::Header`) is signed the same way
//!   ([`sign_header`]): Ed25519 over its envelope bytes, by the key that
//!   signed the manifest it names.
//! - Key files are read with a cap ([`KEY_FILE_MAX`]) and must be regular
//!   files: a FIFO or `/dev/zero` given as a key is refused at once.
#![forbid(unsafe_code)]
use azl_fileread::ReadError;
use azl_formats::bundle::{Header, SignedHeader};
use azl_formats::envelope::Enveloped;
use azl_formats::manifest::{Hex, Manifest, Sig, SignedManifest};
use azl_formats::FormatError;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

pub use azl_formats::manifest::{key_id, KEY_ID_LEN};
/// The manifest signature check and its errors: the formats contract's,
/// shared with init (`VerifyError::NoKey` only arises from `accept`).
pub use azl_formats::signature::{verify, VerifyError, PUBLIC_KEY_LEN};
/// Largest key file read (private PKCS#8 or raw public key): an Ed25519
/// PKCS#8 v2 key is 83 bytes DER, ~170 as PEM; 4 KiB leaves room for
/// comments and line endings, and stops `/dev/zero` or a huge file.
pub const KEY_FILE_MAX: u64 = 4 << 10;
/// Suffix appended to the private key's file name for the public key file.
pub const PUBLIC_KEY_SUFFIX: &str = ".pub";

/// Where the public key of the private key at `private` lives: `KEY.pub`.
pub fn public_key_path(private: &Path) -> PathBuf {
    let mut s = private.as_os_str().to_owned();
    s.push(PUBLIC_KEY_SUFFIX);
    PathBuf::from(s)
}

/// Why bytes are not a usable Ed25519 PKCS#8 private key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    #[error("empty file")]
    Empty,
    #[error("32 raw bytes: this looks like a public key (KEY.pub), not a PKCS#8 private key")]
    LooksLikePublicKey,
    #[error("not a PKCS#8 private key (expected DER, or PEM with \"BEGIN PRIVATE KEY\")")]
    NotPkcs8,
    #[error("encrypted PKCS#8 keys are not supported; decrypt it with `openssl pkey`")]
    Encrypted,
    #[error("OpenSSH private keys are not supported; use `imagegen keygen`")]
    OpenSsh,
    #[error("PEM block {label:?} is not a PKCS#8 private key (expected \"PRIVATE KEY\")")]
    PemLabel { label: String },
    #[error("malformed PEM: {0}")]
    Pem(&'static str),
    #[error("not an Ed25519 key (PKCS#8 holds another algorithm)")]
    WrongAlgorithm,
    #[error("unsupported PKCS#8 version")]
    UnsupportedVersion,
    #[error("the public key in the file does not belong to its private key")]
    Inconsistent,
    #[error("invalid Ed25519 PKCS#8 key ({0})")]
    Rejected(String),
}

/// Errors reading or writing key files; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read: missing, not a regular file (FIFO,
    /// device), or larger than [`KEY_FILE_MAX`]. The error names the path.
    #[error("reading key {0}")]
    Read(#[source] ReadError),
    #[error("key {path}: {source}")]
    Format {
        path: PathBuf,
        source: KeyFormatError,
    },
    #[error(
        "public key {path}: {len} bytes, expected a raw {PUBLIC_KEY_LEN}-byte Ed25519 public key"
    )]
    PublicKeyLength { path: PathBuf, len: u64 },
    #[error("{path} already exists (use --force to replace it)")]
    Exists { path: PathBuf },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("generating an Ed25519 key: the system random number generator failed")]
    Generate,
}

/// Something about a key that works but should be fixed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyWarning {
    /// The private key file can be read (or written) by group or others.
    Permissions { path: PathBuf, mode: u32 },
}

impl fmt::Display for KeyWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Permissions { path, mode } => write!(
                f,
                "private key {} is accessible by group or others (mode {:04o}); run `chmod 600 {}`",
                path.display(),
                mode & 0o7777,
                path.display()
            ),
        }
    }
}

/// An Ed25519 private key for signing manifests.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    warnings: Vec<KeyWarning>,
}

impl fmt::Debug for SigningKey {
    /// Shows the key id only, never key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &Hex(&self.key_id()).to_string())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Load a PKCS#8 private key file (DER or PEM). Loose permissions are
    /// not an error; they are reported by [`SigningKey::warnings`].
    pub fn load(path: &Path) -> Result<SigningKey, KeyError> {
        let bytes = azl_fileread::read(path, KEY_FILE_MAX).map_err(KeyError::Read)?;
        let mut key = SigningKey::from_pkcs8(&bytes).map_err(|source| KeyError::Format {
            path: path.to_path_buf(),
            source,
        })?;
        let meta = std::fs::metadata(path).map_err(|err| {
            KeyError::Read(ReadError::Io {
                path: path.to_path_buf(),
                err,
            })
        })?;
        if let Some(w) = permission_warning(path, &meta) {
            key.warnings.push(w);
        }
        Ok(key)
    }

    /// Parse a PKCS#8 v1 or v2 Ed25519 private key, DER or PEM.
    pub fn from_pkcs8(bytes: &[u8]) -> Result<SigningKey, KeyFormatError> {
        let der = decode_key_file(bytes)?;
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).map_err(|e| {
            match e.to_string().as_str() {
                "InvalidEncoding" => KeyFormatError::NotPkcs8,
                "WrongAlgorithm" => KeyFormatError::WrongAlgorithm,
                "VersionNotSupported" => KeyFormatError::UnsupportedVersion,
                "InconsistentComponents" => KeyFormatError::Inconsistent,
                other => KeyFormatError::Rejected(other.to_string()),
            }
        })?;
        Ok(SigningKey {
            pair,
            warnings: Vec::new(),
        })
    }

    /// The raw 32-byte public key.
    pub fn public_key(&self) -> [u8; PUBLIC_KEY_LEN] {
        let mut out = [0u8; PUBLIC_KEY_LEN];
        for (dst, src) in out.iter_mut().zip(self.pair.public_key().as_ref()) {
            *dst = *src;
        }
        out
    }

    /// [`key_id`] of [`SigningKey::public_key`].
    pub fn key_id(&self) -> [u8; KEY_ID_LEN] {
        key_id(&self.public_key())
    }

    /// Problems found while loading (e.g. file permissions) that the caller
    /// should show to the user.
    pub fn warnings(&self) -> &[KeyWarning] {
        &self.warnings
    }

    /// The detached signature over `msg`: Ed25519 by this key, with its
    /// key id. The one signing routine behind manifests ([`sign`]) and
    /// bundle headers ([`sign_header`]); [`azl_formats::signature::check`]
    /// is its counterpart.
    pub fn sign(&self, msg: &[u8]) -> Sig {
        Sig {
            key_id: self.key_id(),
            ed25519: self.sign_bytes(msg),
        }
    }

    fn sign_bytes(&self, msg: &[u8]) -> [u8; 64] {
        let sig = self.pair.sign(msg);
        let mut out = [0u8; 64];
        for (dst, src) in out.iter_mut().zip(sig.as_ref()) {
            *dst = *src;
        }
        out
    }
}

#[cfg(unix)]
fn permission_warning(path: &Path, meta: &std::fs::Metadata) -> Option<KeyWarning> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode();
    (mode & 0o077 != 0).then(|| KeyWarning::Permissions {
        path: path.to_path_buf(),
        mode,
    })
}

#[cfg(not(unix))]
fn permission_warning(_: &Path, _: &std::fs::Metadata) -> Option<KeyWarning> {
    None
}

/// DER as is; PEM (`-----BEGIN PRIVATE KEY-----`) decoded to DER.
fn decode_key_file(bytes: &[u8]) -> Result<Vec<u8>, KeyFormatError> {
    let text = bytes.trim_ascii();
    if text.is_empty() {
        return Err(KeyFormatError::Empty);
    }
    if !text.starts_with(b"-----BEGIN ") {
        if bytes.len() == PUBLIC_KEY_LEN {
            return Err(KeyFormatError::LooksLikePublicKey);
        }
        return Ok(bytes.to_vec());
    }
    let text = std::str::from_utf8(text).map_err(|_| KeyFormatError::Pem("not UTF-8"))?;
    let mut lines = text.lines().map(str::trim);
    let first = lines.next().unwrap_or_default();
    let label = first
        .strip_prefix("-----BEGIN ")
        .and_then(|l| l.strip_suffix("-----"))
        .ok_or(KeyFormatError::Pem("bad BEGIN line"))?;
    match label {
        "PRIVATE KEY" => {}
        "ENCRYPTED PRIVATE KEY" => return Err(KeyFormatError::Encrypted),
        "OPENSSH PRIVATE KEY" => return Err(KeyFormatError::OpenSsh),
        other => {
            return Err(KeyFormatError::PemLabel {
                label: other.to_string(),
            })
        }
    }
    let end = format!("-----END {label}-----");
    let mut b64 = String::new();
    for line in lines {
        if line == end {
            return base64_decode(&b64).ok_or(KeyFormatError::Pem("invalid base64"));
        }
        if line.contains(':') {
            return Err(KeyFormatError::Pem("PEM headers are not supported"));
        }
        b64.push_str(line);
    }
    Err(KeyFormatError::Pem("missing END line"))
}

/// Standard base64 with `=` padding (what PEM uses), through the `base64`
/// crate (canonical encodings only). `None` if malformed or empty.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    if s.is_empty() {
        return None;
    }
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

/// Read a raw 32-byte Ed25519 public key file.
pub fn load_public_key(path: &Path) -> Result<[u8; PUBLIC_KEY_LEN], KeyError> {
    let bytes = azl_fileread::read(path, KEY_FILE_MAX).map_err(KeyError::Read)?;
    <[u8; PUBLIC_KEY_LEN]>::try_from(bytes.as_slice()).map_err(|_| KeyError::PublicKeyLength {
        path: path.to_path_buf(),
        len: bytes.len() as u64,
    })
}

/// What [`generate_key_files`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedKey {
    pub private_path: PathBuf,
    pub public_path: PathBuf,
    pub public_key: [u8; PUBLIC_KEY_LEN],
    pub key_id: [u8; KEY_ID_LEN],
}

/// Generate a new Ed25519 key: the PKCS#8 v2 private key goes to `path`
/// (mode 0600), the raw public key to `path.pub` (mode 0644).
///
/// Both are written to temporary files in the same directory and renamed
/// into place, so a failure never leaves a partial file. Without `force`,
/// an existing `path` or `path.pub` is an error and is never replaced.
pub fn generate_key_files(path: &Path, force: bool) -> Result<GeneratedKey, KeyError> {
    let pub_path = public_key_path(path);
    if !force {
        for p in [path, pub_path.as_path()] {
            if p.symlink_metadata().is_ok() {
                return Err(KeyError::Exists {
                    path: p.to_path_buf(),
                });
            }
        }
    }
    let rng = SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| KeyError::Generate)?;
    let key = SigningKey::from_pkcs8(pkcs8.as_ref()).map_err(|source| KeyError::Format {
        path: path.to_path_buf(),
        source,
    })?;
    let public_key = key.public_key();

    let private_tmp = write_temp(path, pkcs8.as_ref(), 0o600)?;
    let public_tmp = write_temp(&pub_path, &public_key, 0o644)?;
    persist(private_tmp, path, force)?;
    if let Err(e) = persist(public_tmp, &pub_path, force) {
        if !force {
            // Only remove what this call created; with --force the old key is gone anyway.
            let _ = std::fs::remove_file(path);
        }
        return Err(e);
    }
    sync_parent(path);
    Ok(GeneratedKey {
        private_path: path.to_path_buf(),
        public_path: pub_path,
        public_key,
        key_id: key_id(&public_key),
    })
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A fully written, synced temporary file next to `dest` with `mode`.
fn write_temp(dest: &Path, bytes: &[u8], mode: u32) -> Result<tempfile::NamedTempFile, KeyError> {
    let werr = |source| KeyError::Write {
        path: dest.to_path_buf(),
        source,
    };
    let name = dest
        .file_name()
        .map(|n| format!(".{}.", n.to_string_lossy()))
        .unwrap_or_else(|| ".key.".to_string());
    let mut builder = tempfile::Builder::new();
    builder.prefix(&name).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut tmp = builder.tempfile_in(parent_dir(dest)).map_err(werr)?;
    tmp.write_all(bytes).map_err(werr)?;
    tmp.as_file().sync_all().map_err(werr)?;
    Ok(tmp)
}

fn persist(tmp: tempfile::NamedTempFile, dest: &Path, replace: bool) -> Result<(), KeyError> {
    let res = if replace {
        tmp.persist(dest)
    } else {
        tmp.persist_noclobber(dest)
    };
    res.map(drop).map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            KeyError::Exists {
                path: dest.to_path_buf(),
            }
        } else {
            KeyError::Write {
                path: dest.to_path_buf(),
                source: e.error,
            }
        }
    })
}

/// Make the renames durable (best effort: not every filesystem supports it).
fn sync_parent(path: &Path) {
    if let Ok(dir) = std::fs::File::open(parent_dir(path)) {
        let _ = dir.sync_all();
    }
}

/// Signing failed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("encoding the manifest: {0}")]
    Encode(FormatError),
    #[error("encoding the bundle header: {0}")]
    EncodeHeader(FormatError),
}

/// Encode `manifest` and sign it with `key`; `None` makes an unsigned
/// manifest (`--insecure-unsigned`), which only images that allow unsigned
/// manifests boot.
pub fn sign(manifest: &Manifest, key: Option<&SigningKey>) -> Result<SignedManifest, SignError> {
    let bytes = manifest.to_bytes().map_err(SignError::Encode)?;
    let signature = key.map(|k| k.sign(&bytes));
    Ok(SignedManifest {
        manifest: bytes,
        signature,
    })
}

/// Encode a bundle `header` and sign it with `key` — the same key and
/// scheme as the manifest it names. Bundles are always signed: there is no
/// unsigned form.
pub fn sign_header(header: &Header, key: &SigningKey) -> Result<SignedHeader, SignError> {
    let bytes = header.to_bytes().map_err(SignError::EncodeHeader)?;
    Ok(SignedHeader {
        signature: key.sign(&bytes),
        header: bytes,
    })
}

/// Fixtures for tests here and in other crates (feature `testing`).
#[cfg(any(test, feature = "testing"))]
#[allow(
    clippy::expect_used,
    reason = "test fixtures only (feature `testing`): a failing system RNG fails the test"
)]
pub mod testing {
    use super::SigningKey;
    use azl_formats::manifest::Manifest;
    use ring::rand::SystemRandom;
    use ring::signature::Ed25519KeyPair;

    /// A manifest with every field set (shared with the inspect and attest tests).
    pub fn sample_manifest() -> Manifest {
        let mut m = azl_formats::manifest::example();
        m.image_version = "1.2.3".into();
        m.build_epoch = 1_700_000_000;
        m.cmdline = "console=ttyAMA0 quiet".into();
        m.rootfs.verity.salt = vec![1, 2, 3];
        if let Some(p) = m.partitions.first_mut() {
            p.size = 8 << 20;
        }
        m
    }

    /// A fresh key in memory.
    pub fn test_key() -> SigningKey {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .expect("the system RNG generates a key");
        SigningKey::from_pkcs8(doc.as_ref()).expect("ring's own PKCS#8 document loads")
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{sample_manifest, test_key};
    use super::*;
    use std::process::Command;

    #[test]
    fn key_id_is_sha256_prefix() {
        // RFC 8032 test 1 public key; sha256 prefix computed independently.
        let pk = [
            0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64,
            0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68,
            0xf7, 0x07, 0x51, 0x1a,
        ];
        assert_eq!(Hex(&key_id(&pk)).to_string(), "21fe31dfa154a261");
    }

    #[test]
    fn sign_verify_roundtrip() {
        let key = test_key();
        let m = sample_manifest();
        let sm = sign(&m, Some(&key)).unwrap();
        assert_eq!(sm.signature.as_ref().unwrap().key_id, key.key_id());
        assert_eq!(verify(&sm, &key.public_key()).unwrap(), m);
        // Through the on-disk region too.
        let back = SignedManifest::from_region(&sm.to_region().unwrap()).unwrap();
        assert_eq!(verify(&back, &key.public_key()).unwrap(), m);
        // Ed25519 is deterministic: the same manifest signs the same.
        assert_eq!(sign(&m, Some(&key)).unwrap(), sm);
    }

    #[test]
    fn header_signature_verifies_with_the_shared_check() {
        use azl_formats::signature::check;
        let (key, other) = (test_key(), test_key());
        let h = Header::for_root(b"section", Some(4), (8192, [1; 32]), (4096, [2; 32]));
        let sh = sign_header(&h, &key).unwrap();
        assert_eq!(Header::from_bytes(&sh.header).unwrap(), h);
        assert_eq!(sh.signature.key_id, key.key_id());
        assert_eq!(check(&sh.header, &sh.signature, &key.public_key()), Ok(()));
        // Same routine as the manifest's: the header bytes signed as a
        // manifest payload give the same signature.
        assert_eq!(key.sign(&sh.header), sh.signature);
        // Deterministic.
        assert_eq!(sign_header(&h, &key).unwrap(), sh);
        assert!(matches!(
            check(&sh.header, &sh.signature, &other.public_key()),
            Err(VerifyError::KeyMismatch { .. })
        ));
        let mut bad = sh.clone();
        bad.header[10] ^= 1;
        assert_eq!(
            check(&bad.header, &bad.signature, &key.public_key()),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn edited_manifest_is_bad_signature() {
        let key = test_key();
        let sm = sign(&sample_manifest(), Some(&key)).unwrap();
        for i in 0..sm.manifest.len() {
            let mut bad = sm.clone();
            bad.manifest[i] ^= 0x01;
            assert_eq!(
                verify(&bad, &key.public_key()),
                Err(VerifyError::BadSignature),
                "byte {i}"
            );
        }
        let mut bad = sm.clone();
        if let Some(s) = bad.signature.as_mut() {
            s.ed25519[0] ^= 0x80;
        }
        assert_eq!(
            verify(&bad, &key.public_key()),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn other_key_is_key_mismatch() {
        let (a, b) = (test_key(), test_key());
        let sm = sign(&sample_manifest(), Some(&a)).unwrap();
        assert_eq!(
            verify(&sm, &b.public_key()),
            Err(VerifyError::KeyMismatch {
                expected: b.key_id(),
                found: a.key_id()
            })
        );
        assert_eq!(
            verify(&sm, &[0; 31]),
            Err(VerifyError::BadPublicKey { len: 31 })
        );
    }

    #[test]
    fn unsigned_and_undecodable() {
        let key = test_key();
        let sm = sign(&sample_manifest(), None).unwrap();
        assert!(sm.signature.is_none());
        assert_eq!(verify(&sm, &key.public_key()), Err(VerifyError::Unsigned));
        // A validly signed payload that is not a manifest.
        let junk = SignedManifest {
            manifest: b"AZMN\x01\x00".to_vec(),
            signature: Some(Sig {
                key_id: key.key_id(),
                ed25519: key.sign_bytes(b"AZMN\x01\x00"),
            }),
        };
        assert!(matches!(
            verify(&junk, &key.public_key()),
            Err(VerifyError::Decode(_))
        ));
    }

    #[test]
    fn keygen_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.key");
        let g = generate_key_files(&path, false).unwrap();
        assert_eq!(g.public_path, dir.path().join("signing.key.pub"));
        assert_eq!(std::fs::read(&g.public_path).unwrap(), g.public_key);
        assert_eq!(g.key_id, key_id(&g.public_key));
        let key = SigningKey::load(&path).unwrap();
        assert_eq!(key.public_key(), g.public_key);
        assert!(key.warnings().is_empty(), "{:?}", key.warnings());
        assert_eq!(load_public_key(&g.public_path).unwrap(), g.public_key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // v2 document: ring's strict parser accepts it (it requires the public key).
        assert!(Ed25519KeyPair::from_pkcs8(&std::fs::read(&path).unwrap()).is_ok());

        // No overwrite without --force; nothing changed, no temporary left.
        let before = std::fs::read(&path).unwrap();
        assert!(matches!(
            generate_key_files(&path, false),
            Err(KeyError::Exists { .. })
        ));
        assert_eq!(std::fs::read(&path).unwrap(), before);
        // An existing .pub alone also blocks it.
        let other = dir.path().join("other.key");
        std::fs::write(public_key_path(&other), b"x").unwrap();
        assert!(matches!(
            generate_key_files(&other, false),
            Err(KeyError::Exists { .. })
        ));
        assert!(!other.exists());
        // --force replaces both.
        let g2 = generate_key_files(&path, true).unwrap();
        assert_ne!(g2.public_key, g.public_key);
        assert_eq!(SigningKey::load(&path).unwrap().public_key(), g2.public_key);
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["other.key.pub", "signing.key", "signing.key.pub"]);
    }

    #[test]
    fn load_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        assert!(matches!(
            SigningKey::load(&missing),
            Err(KeyError::Read(ReadError::Io { .. }))
        ));
        let cases: [(&[u8], KeyFormatError); 6] = [
            (b"", KeyFormatError::Empty),
            (&[7; 32], KeyFormatError::LooksLikePublicKey),
            (b"hello, not a key at all", KeyFormatError::NotPkcs8),
            (
                b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
                KeyFormatError::Encrypted,
            ),
            (
                b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
                KeyFormatError::PemLabel {
                    label: "PUBLIC KEY".into(),
                },
            ),
            (
                b"-----BEGIN PRIVATE KEY-----\nA*AA\n-----END PRIVATE KEY-----\n",
                KeyFormatError::Pem("invalid base64"),
            ),
        ];
        for (bytes, want) in cases {
            let p = dir.path().join("k");
            std::fs::write(&p, bytes).unwrap();
            match SigningKey::load(&p) {
                Err(KeyError::Format { path, source }) => {
                    assert_eq!(path, p);
                    assert_eq!(source, want);
                }
                other => panic!("{bytes:?}: {other:?}"),
            }
        }
        // Error messages name the file.
        let p = dir.path().join("k");
        let msg = SigningKey::load(&p).unwrap_err().to_string();
        assert!(msg.contains(&p.display().to_string()), "{msg}");
    }

    /// Run `f` on another thread; fail if it does not return within 5 s
    /// (a FIFO used to block the loader forever).
    fn within_5s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(std::time::Duration::from_secs(5))
            .expect("the key loader blocked for 5 s")
    }

    /// Regression: key files were read with `fs::read` — a FIFO hung the
    /// loader, `/dev/zero` grew memory until abort. Both key loaders now
    /// refuse them at once, naming the path and the file type; an
    /// oversized regular file is refused by size.
    #[test]
    fn fifo_dev_zero_and_huge_key_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("key.fifo");
        assert!(Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let huge = dir.path().join("huge.key");
        std::fs::write(&huge, vec![b'A'; KEY_FILE_MAX as usize + 1]).unwrap();
        for (path, want) in [
            (fifo.clone(), "is a FIFO, not a regular file"),
            (
                PathBuf::from("/dev/zero"),
                "is a character device, not a regular file",
            ),
            (huge.clone(), "larger than the 4096 bytes allowed"),
        ] {
            let p = path.clone();
            let private = within_5s(move || SigningKey::load(&p).map(|k| k.key_id()));
            let p = path.clone();
            let public = within_5s(move || load_public_key(&p));
            for msg in [
                private.unwrap_err().to_string(),
                public.unwrap_err().to_string(),
            ] {
                assert!(msg.contains(&path.display().to_string()), "{msg}");
                assert!(msg.contains(want), "{msg}");
            }
        }
    }

    #[cfg(unix)]
    #[test]
    fn loose_permissions_warn() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        generate_key_files(&path, false).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let key = SigningKey::load(&path).unwrap();
        assert_eq!(
            key.warnings(),
            [KeyWarning::Permissions {
                path: path.clone(),
                mode: 0o100644
            }]
        );
        assert!(key.warnings()[0].to_string().contains("0644"));
    }

    fn hex_bytes(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn base64() {
        assert_eq!(base64_decode("TWFu").unwrap(), b"Man");
        assert_eq!(base64_decode("TWE=").unwrap(), b"Ma");
        assert_eq!(base64_decode("TQ==").unwrap(), b"M");
        assert!(base64_decode("TQ=").is_none());
        assert!(base64_decode("T===").is_none());
        assert!(base64_decode("TQ==TWFu").is_none());
        assert!(base64_decode("").is_none());
    }

    /// `(major, minor)` of the installed openssl (scripts/setup.sh installs
    /// it; a missing openssl fails the test).
    fn openssl_version() -> (u32, u32) {
        let out = Command::new("openssl")
            .arg("version")
            .output()
            .expect("running openssl (installed by scripts/setup.sh)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let ver = text.split_whitespace().nth(1).expect("openssl version");
        let mut it = ver.split('.').map(|n| n.parse::<u32>().unwrap());
        (it.next().unwrap(), it.next().unwrap())
    }

    fn run(cmd: &mut Command) -> Vec<u8> {
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// openssl reads keygen's key as Ed25519, agrees on the public key and
    /// verifies our signatures; its own keys load here.
    #[test]
    fn openssl_interop() {
        let version = openssl_version();
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k");
        let g = generate_key_files(&key, false).unwrap();
        let der = std::fs::read(&key).unwrap();
        // RFC 8410 §10.3 v2 layout: version 1, the seed, then [1] the public key.
        assert_eq!(der.len(), 83);
        assert_eq!(der[..16], hex_bytes("3051020101300506032b657004220420"));
        assert_eq!(der[48..51], [0x81, 0x21, 0x00]);
        assert_eq!(der[51..], g.public_key);
        // OpenSSL reads PKCS#8 v2 only from 3.5 on; older ones get the same
        // key as v1 (version 0, no public key).
        let for_openssl = if version >= (3, 5) {
            key.clone()
        } else {
            let mut v1 = hex_bytes("302e020100");
            v1.extend_from_slice(&der[5..48]);
            let p = dir.path().join("k.v1");
            std::fs::write(&p, v1).unwrap();
            p
        };
        let text = run(Command::new("openssl")
            .args(["pkey", "-inform", "DER", "-noout", "-text", "-in"])
            .arg(&for_openssl));
        let text = String::from_utf8_lossy(&text);
        assert!(text.contains("ED25519 Private-Key"), "{text}");
        let spki = run(Command::new("openssl")
            .args([
                "pkey", "-inform", "DER", "-pubout", "-outform", "DER", "-in",
            ])
            .arg(&for_openssl));
        assert_eq!(spki[spki.len() - 32..], g.public_key);

        // openssl verifies our manifest signature.
        let sk = SigningKey::load(&key).unwrap();
        let sm = sign(&sample_manifest(), Some(&sk)).unwrap();
        let (msg, sig, pubder) = (
            dir.path().join("msg"),
            dir.path().join("sig"),
            dir.path().join("pub.der"),
        );
        std::fs::write(&msg, &sm.manifest).unwrap();
        std::fs::write(&sig, sm.signature.unwrap().ed25519).unwrap();
        std::fs::write(&pubder, &spki).unwrap();
        run(Command::new("openssl")
            .args([
                "pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-rawin", "-inkey",
            ])
            .arg(&pubder)
            .arg("-in")
            .arg(&msg)
            .arg("-sigfile")
            .arg(&sig));

        // A PKCS#8 v1 key from openssl, PEM and DER, loads.
        let pem = dir.path().join("o.pem");
        run(Command::new("openssl")
            .args(["genpkey", "-algorithm", "ed25519", "-out"])
            .arg(&pem));
        let der = dir.path().join("o.der");
        run(Command::new("openssl")
            .args(["pkey", "-outform", "DER", "-in"])
            .arg(&pem)
            .arg("-out")
            .arg(&der));
        let a = SigningKey::load(&pem).unwrap();
        let b = SigningKey::load(&der).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        // Another algorithm is refused as such.
        let ec = dir.path().join("ec.pem");
        run(Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
            ])
            .arg(&ec));
        assert!(matches!(
            SigningKey::load(&ec),
            Err(KeyError::Format {
                source: KeyFormatError::WrongAlgorithm,
                ..
            })
        ));
    }
}
