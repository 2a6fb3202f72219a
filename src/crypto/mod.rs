//! Cryptography for data ARO keeps at rest: the master key (from `ARO_MASTER_KEY` or a
//! 0600 key file created on first use), keys derived from it per purpose (HKDF-SHA256),
//! and AES-256-GCM sealing of byte buffers with a versioned header. Used by encrypted
//! backups (`ops::backup`) and meant for integration secrets too (SPEC §8).
//!
//! Nothing here logs; keys mask themselves in `Debug` and are zeroed when dropped.

mod master_key;
mod seal;

use std::path::PathBuf;

pub use master_key::{Key, KeySource, MasterKey, KEY_ID_LEN, MASTER_KEY_FILE};
pub use seal::{open, seal, NONCE_LEN, SEAL_OVERHEAD, SEAL_VERSION, TAG_LEN};

/// Everything that can go wrong loading keys or sealing and opening data.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The key file (or its directory) could not be read or written.
    #[error("master key file {path}: {source}")]
    KeyFileIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The key file does not hold exactly one 32-byte key.
    #[error(
        "master key file {path} does not hold a 32-byte key ({found}); expected 64 hex digits \
         or 32 raw bytes"
    )]
    KeyFileLength { path: PathBuf, found: String },
    /// The key file may be read or written by other users.
    #[error(
        "master key file {path} is accessible to group or others (mode {mode:04o}); \
         run `chmod 600 {path}`"
    )]
    KeyFilePermissions { path: PathBuf, mode: u32 },
    /// No key is configured and the key file does not exist (and may not be created here).
    #[error(
        "no master key: ARO_MASTER_KEY is not set and {path} does not exist; set \
         ARO_MASTER_KEY or copy the master.key that was in use into the data directory"
    )]
    NoKey { path: PathBuf },
    /// The sealed buffer is shorter than its header, nonce and tag.
    #[error("sealed data is truncated ({len} bytes)")]
    Truncated { len: usize },
    /// The sealed buffer names a format version this build does not know.
    #[error("sealed data has unknown format version {0}")]
    UnsupportedVersion(u8),
    /// Authentication failed: the key is wrong or the data or its context was altered.
    #[error("authentication failed: wrong key, or the data was altered")]
    Authentication,
    /// Encryption itself failed (only for absurdly large inputs).
    #[error("encryption failed")]
    Encryption,
}
