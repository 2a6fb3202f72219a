//! The master key and the keys derived from it.
//!
//! The master key is `ARO_MASTER_KEY` when set (`Config::master_key`), otherwise the key
//! file `<data_dir>/master.key`: 64 hex digits and a newline, mode 0600, created with 32
//! random bytes from the OS RNG the first time a key is needed. A key file of the wrong
//! length, or one that group or others may access, is refused rather than used or
//! replaced. Purposes never share a key: each derives its own with HKDF-SHA256
//! ([`Key::derive`]), and a short public key id ([`Key::id`]) lets a reader tell "wrong
//! key" from "damaged data".

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::OsRng;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::CryptoError;
use crate::config::Config;

/// The key file's name inside the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";
/// Length of a key id.
pub const KEY_ID_LEN: usize = 8;

/// A 256-bit symmetric key. `Debug` masks it; it is zeroed when dropped.
#[derive(Clone)]
pub struct Key([u8; 32]);

impl Key {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A fresh random key from the OS RNG.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A public fingerprint of this key (HMAC-SHA256 of a fixed label, truncated):
    /// stored beside data sealed under the key so that opening it with another key can
    /// be reported as such. Reveals nothing usable about the key.
    pub fn id(&self) -> [u8; KEY_ID_LEN] {
        let full = hmac_sha256(&self.0, &[b"aro key id v1"]);
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&full[..KEY_ID_LEN]);
        id
    }

    /// The key for one `purpose` (e.g. `"aro backup v1"`), optionally specific to one
    /// object through `salt` (e.g. a random file id): HKDF-SHA256 (RFC 5869) with this
    /// key as input keying material.
    pub fn derive(&self, purpose: &str, salt: &[u8]) -> Key {
        Key(hkdf_sha256(&self.0, salt, purpose.as_bytes()))
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(********)")
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        for byte in self.0.iter_mut() {
            // SAFETY: `byte` is a valid, aligned, exclusive reference; the volatile
            // write only keeps the compiler from eliding the zeroing.
            unsafe { std::ptr::write_volatile(byte, 0) };
        }
    }
}

/// Where the master key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `ARO_MASTER_KEY` (or `master_key` in the configuration file).
    Configured,
    /// An existing key file.
    File(PathBuf),
    /// A key file created just now.
    Created(PathBuf),
    /// Handed over by the caller (tests, tools).
    Provided,
}

/// The master key of this installation.
#[derive(Debug, Clone)]
pub struct MasterKey {
    key: Key,
    source: KeySource,
}

impl std::ops::Deref for MasterKey {
    type Target = Key;

    fn deref(&self) -> &Key {
        &self.key
    }
}

impl MasterKey {
    /// The configured key, else the key file in the data directory, created (0600,
    /// random) when it does not exist yet.
    pub fn load_or_create(config: &Config) -> Result<Self, CryptoError> {
        Self::resolve(config, true)
    }

    /// Like [`MasterKey::load_or_create`] but never creates a key file: for reading
    /// data sealed earlier, where a new key could only fail.
    pub fn load(config: &Config) -> Result<Self, CryptoError> {
        Self::resolve(config, false)
    }

    /// A master key given directly.
    pub fn from_key(key: Key) -> Self {
        Self {
            key,
            source: KeySource::Provided,
        }
    }

    /// The key file's path for a data directory.
    pub fn key_file(data_dir: &Path) -> PathBuf {
        data_dir.join(MASTER_KEY_FILE)
    }

    pub fn key(&self) -> &Key {
        &self.key
    }

    pub fn source(&self) -> &KeySource {
        &self.source
    }

    fn resolve(config: &Config, create: bool) -> Result<Self, CryptoError> {
        if let Some(configured) = &config.master_key {
            return Ok(Self {
                key: Key::from_bytes(*configured.expose()),
                source: KeySource::Configured,
            });
        }
        let path = Self::key_file(&config.data_dir);
        match read_key_file(&path) {
            Ok(key) => Ok(Self {
                key,
                source: KeySource::File(path),
            }),
            Err(CryptoError::KeyFileIo { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                if !create {
                    return Err(CryptoError::NoKey { path });
                }
                create_key_file(&path)
            }
            Err(other) => Err(other),
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CryptoError + '_ {
    move |source| CryptoError::KeyFileIo {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads and checks a key file: owner-only permissions, exactly one 32-byte key.
fn read_key_file(path: &Path) -> Result<Key, CryptoError> {
    let metadata = fs::metadata(path).map_err(io_err(path))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(CryptoError::KeyFilePermissions {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = metadata;
    let raw = fs::read(path).map_err(io_err(path))?;
    parse_key(&raw).ok_or_else(|| CryptoError::KeyFileLength {
        path: path.to_path_buf(),
        found: describe_length(&raw),
    })
}

/// 64 hex digits (surrounding whitespace ignored) or exactly 32 raw bytes.
fn parse_key(raw: &[u8]) -> Option<Key> {
    let trimmed = raw.trim_ascii();
    if trimmed.len() == 64 && trimmed.iter().all(u8::is_ascii_hexdigit) {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(trimmed, &mut bytes).ok()?;
        return Some(Key(bytes));
    }
    let bytes: [u8; 32] = raw.try_into().ok()?;
    Some(Key(bytes))
}

fn describe_length(raw: &[u8]) -> String {
    let trimmed = raw.trim_ascii();
    if !trimmed.is_empty() && trimmed.iter().all(u8::is_ascii_hexdigit) {
        format!("{} hex digits", trimmed.len())
    } else {
        format!("{} bytes", raw.len())
    }
}

/// Creates the key file without ever exposing a partial one: the key is written and
/// synced to a private temporary file, then hard-linked to its name, which fails if
/// another process created the file first (then that file is used).
fn create_key_file(path: &Path) -> Result<MasterKey, CryptoError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let key = Key::generate();
    let tmp = dir.join(format!(".master.key.{}.tmp", uuid::Uuid::new_v4().simple()));
    let written = write_private(&tmp, format!("{}\n", hex::encode(key.bytes())).as_bytes());
    let linked = written.and_then(|()| match fs::hard_link(&tmp, path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(io_err(path)(e)),
    });
    let _ = fs::remove_file(&tmp);
    if !linked? {
        return Ok(MasterKey {
            key: read_key_file(path)?,
            source: KeySource::File(path.to_path_buf()),
        });
    }
    if let Ok(handle) = fs::File::open(&dir) {
        let _ = handle.sync_all();
    }
    Ok(MasterKey {
        key,
        source: KeySource::Created(path.to_path_buf()),
    })
}

fn write_private(path: &Path, contents: &[u8]) -> Result<(), CryptoError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io_err(path))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(io_err(path))?;
    }
    file.write_all(contents).map_err(io_err(path))?;
    file.sync_all().map_err(io_err(path))
}

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 over the concatenation of `parts`. Keys longer than the 64-byte block
/// are hashed first and shorter ones zero-padded, exactly as RFC 2104 does, so this
/// takes any key without a fallible constructor.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut mac = <HmacSha256 as Mac>::new(&block.into());
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// HKDF-SHA256 (RFC 5869) producing one 32-byte block.
fn hkdf_sha256(ikm: &[u8], salt: &[u8], info: &[u8]) -> [u8; 32] {
    let prk = hmac_sha256(salt, &[ikm]);
    hmac_sha256(&prk, &[info, &[1u8]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigSources;

    fn config(dir: &Path, key: Option<&str>) -> Config {
        let mut env = vec![(
            "ARO_DATA_DIR".to_string(),
            dir.join("data").display().to_string(),
        )];
        if let Some(key) = key {
            env.push(("ARO_MASTER_KEY".to_string(), key.to_string()));
        }
        Config::load(&ConfigSources { file: None, env })
            .expect("valid")
            .config
    }

    #[test]
    fn hkdf_matches_rfc_5869_test_case_1() {
        let ikm = [0x0bu8; 22];
        let salt: Vec<u8> = (0x00..=0x0c).collect();
        let info: Vec<u8> = (0xf0..=0xf9).collect();
        let okm = hkdf_sha256(&ikm, &salt, &info);
        assert_eq!(
            hex::encode(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
        );
    }

    #[test]
    fn derived_keys_differ_by_purpose_and_salt() {
        let master = Key::from_bytes([9; 32]);
        let a = master.derive("aro backup v1", b"file-1");
        let b = master.derive("aro backup v1", b"file-2");
        let c = master.derive("aro secrets v1", b"file-1");
        assert_ne!(a.bytes(), b.bytes());
        assert_ne!(a.bytes(), c.bytes());
        assert_eq!(a.bytes(), master.derive("aro backup v1", b"file-1").bytes());
        assert_ne!(master.id(), Key::from_bytes([8; 32]).id());
        assert_eq!(format!("{master:?}"), "Key(********)");
    }

    #[test]
    fn configured_key_wins_and_no_file_is_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = config(dir.path(), Some(&"ab".repeat(32)));
        let key = MasterKey::load_or_create(&cfg).expect("key");
        assert_eq!(key.source(), &KeySource::Configured);
        assert_eq!(key.bytes(), &[0xab; 32]);
        assert!(!MasterKey::key_file(&cfg.data_dir).exists());
    }

    #[test]
    fn key_file_is_created_once_with_mode_0600_then_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = config(dir.path(), None);
        assert!(matches!(
            MasterKey::load(&cfg),
            Err(CryptoError::NoKey { .. })
        ));
        let created = MasterKey::load_or_create(&cfg).expect("created");
        let path = MasterKey::key_file(&cfg.data_dir);
        assert_eq!(created.source(), &KeySource::Created(path.clone()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let text = fs::read_to_string(&path).expect("read");
        assert_eq!(text.trim().len(), 64);
        let again = MasterKey::load_or_create(&cfg).expect("loaded");
        assert_eq!(again.source(), &KeySource::File(path.clone()));
        assert_eq!(again.bytes(), created.bytes());
        assert_eq!(
            MasterKey::load(&cfg).expect("load").bytes(),
            created.bytes()
        );
        let leftovers: Vec<_> = fs::read_dir(&cfg.data_dir)
            .expect("dir")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn key_files_with_loose_permissions_or_wrong_length_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = config(dir.path(), None);
        let path = MasterKey::key_file(&cfg.data_dir);
        MasterKey::load_or_create(&cfg).expect("created");

        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).expect("chmod");
        let err = MasterKey::load_or_create(&cfg).expect_err("group-readable");
        assert!(matches!(
            err,
            CryptoError::KeyFilePermissions { mode: 0o640, .. }
        ));
        assert!(err.to_string().contains("chmod 600"), "{err}");

        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        fs::write(&path, "abcd\n").expect("write");
        let err = MasterKey::load_or_create(&cfg).expect_err("short");
        assert!(matches!(err, CryptoError::KeyFileLength { .. }), "{err}");
        assert!(err.to_string().contains("4 hex digits"), "{err}");
        // The bad file is left alone, not replaced by a new key.
        assert_eq!(fs::read_to_string(&path).expect("read"), "abcd\n");

        fs::write(&path, [5u8; 32]).expect("write raw");
        assert_eq!(
            MasterKey::load(&cfg).expect("raw 32 bytes").bytes(),
            &[5u8; 32]
        );
    }
}
