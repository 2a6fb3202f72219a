//! AES-256-GCM sealing of byte buffers.
//!
//! A sealed buffer is `version (1 byte) ‖ nonce (12 bytes, random) ‖ ciphertext ‖ tag
//! (16 bytes)`. The version byte is authenticated together with the caller's associated
//! data, so neither can be changed without `open` failing. Nonces come from the OS RNG;
//! with random 96-bit nonces one key must not seal more than about 2³² buffers, which is
//! why callers that seal many buffers derive a key per file or purpose
//! ([`super::Key::derive`]).

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

use super::{CryptoError, Key};

/// The format version written by [`seal`].
pub const SEAL_VERSION: u8 = 1;
/// Length of the random nonce.
pub const NONCE_LEN: usize = 12;
/// Length of the authentication tag.
pub const TAG_LEN: usize = 16;
/// Bytes a sealed buffer has on top of its plaintext.
pub const SEAL_OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

/// Encrypts and authenticates `plaintext`, binding `aad` (which is not stored: `open`
/// must be given the same bytes).
pub fn seal(key: &Key, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let cipher = Aes256Gcm::new(key.bytes().into());
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let bound = bound_aad(SEAL_VERSION, aad);
    let ciphertext = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad: &bound,
            },
        )
        .map_err(|_| CryptoError::Encryption)?;
    let mut out = Vec::with_capacity(SEAL_OVERHEAD + plaintext.len());
    out.push(SEAL_VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// Checks and decrypts a buffer made by [`seal`] under `key` with the same `aad`.
pub fn open(key: &Key, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if sealed.len() < SEAL_OVERHEAD {
        return Err(CryptoError::Truncated { len: sealed.len() });
    }
    let version = sealed[0];
    if version != SEAL_VERSION {
        return Err(CryptoError::UnsupportedVersion(version));
    }
    let nonce = Nonce::from_slice(&sealed[1..1 + NONCE_LEN]);
    let cipher = Aes256Gcm::new(key.bytes().into());
    let bound = bound_aad(version, aad);
    cipher
        .decrypt(
            nonce,
            Payload {
                msg: &sealed[1 + NONCE_LEN..],
                aad: &bound,
            },
        )
        .map_err(|_| CryptoError::Authentication)
}

fn bound_aad(version: u8, aad: &[u8]) -> Vec<u8> {
    let mut bound = Vec::with_capacity(1 + aad.len());
    bound.push(version);
    bound.extend_from_slice(aad);
    bound
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> Key {
        Key::from_bytes([byte; 32])
    }

    #[test]
    fn round_trip_with_and_without_associated_data() {
        let k = key(1);
        for (plaintext, aad) in [
            (&b"hello, secrets"[..], &b""[..]),
            (&b""[..], &b"context"[..]),
            (&[7u8; 4096][..], &b"tenant:default/name:stripe"[..]),
        ] {
            let sealed = seal(&k, plaintext, aad).expect("seal");
            assert_eq!(sealed.len(), plaintext.len() + SEAL_OVERHEAD);
            assert_eq!(sealed[0], SEAL_VERSION);
            assert_eq!(open(&k, &sealed, aad).expect("open"), plaintext);
        }
    }

    #[test]
    fn nonces_are_fresh_each_time() {
        let k = key(1);
        let a = seal(&k, b"same", b"").expect("seal");
        let b = seal(&k, b"same", b"").expect("seal");
        assert_ne!(a[1..1 + NONCE_LEN], b[1..1 + NONCE_LEN]);
        assert_ne!(a, b);
    }

    #[test]
    fn wrong_key_fails() {
        let sealed = seal(&key(1), b"payload", b"aad").expect("seal");
        assert!(matches!(
            open(&key(2), &sealed, b"aad"),
            Err(CryptoError::Authentication)
        ));
    }

    #[test]
    fn wrong_associated_data_fails() {
        let sealed = seal(&key(1), b"payload", b"aad").expect("seal");
        assert!(matches!(
            open(&key(1), &sealed, b"other"),
            Err(CryptoError::Authentication)
        ));
    }

    #[test]
    fn every_flipped_byte_fails() {
        let k = key(3);
        let sealed = seal(&k, b"a short secret value", b"ctx").expect("seal");
        for i in 0..sealed.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = sealed.clone();
                bad[i] ^= bit;
                let err = open(&k, &bad, b"ctx").expect_err("tampered byte must fail");
                if i == 0 {
                    assert!(matches!(err, CryptoError::UnsupportedVersion(_)), "{err}");
                } else {
                    assert!(matches!(err, CryptoError::Authentication), "{err}");
                }
            }
        }
    }

    #[test]
    fn truncated_input_is_refused() {
        let k = key(1);
        let sealed = seal(&k, b"x", b"").expect("seal");
        assert!(matches!(
            open(&k, &sealed[..SEAL_OVERHEAD - 1], b""),
            Err(CryptoError::Truncated { .. })
        ));
        assert!(matches!(
            open(&k, &sealed[..sealed.len() - 1], b""),
            Err(CryptoError::Authentication)
        ));
    }
}
