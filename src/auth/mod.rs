//! Who may do what (SPEC §8): admin users with argon2id passwords and roles (owner,
//! staff, viewer), 24-hour rolling sessions in an `HttpOnly; SameSite=Strict` cookie
//! with a CSRF token, lockout of a (username, address) pair after 5 failed logins in
//! 15 minutes, hashed API tokens scoped to a tenant and a role, the [`Principal`]
//! extractor with its role guards, the in-memory admin rate limit, and integration
//! secrets sealed under the master key.
//!
//! Layout, as in `store`: [`models`] holds the rows; [`users`], [`sessions`],
//! [`tokens`], [`lockout`] and [`secrets`] the queries of one table each; [`password`]
//! the policy and hashing; [`service`] the login flow (no actix); [`principal`] the
//! extractor; [`routes`] the thin handlers. Errors are [`AuthError`] (and
//! [`secrets::SecretsError`]), mapped once to the HTTP envelope in `http::error`.
//!
//! Nothing here logs a password, token, session id, CSRF token or secret value; the
//! types holding them wrap them in [`crate::config::Secret`].

mod error;
pub mod lockout;
pub mod models;
pub mod password;
pub mod principal;
pub mod rate_limit;
mod role;
pub mod routes;
pub mod secrets;
pub mod service;
pub mod sessions;
pub mod tokens;
pub mod users;

pub use error::AuthError;
pub use principal::{
    OwnerOnly, PresentedCsrf, Principal, PrincipalKind, StaffOrAbove, ViewerOrAbove,
};
pub use role::Role;

use sha2::{Digest, Sha256};

/// Hex SHA-256 of `parts` joined, used to store tokens and session ids hashed.
pub(crate) fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}

/// Equality that takes the same time wherever the inputs differ (for secrets' hashes).
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// 32 random bytes from the OS, base64url without padding (43 characters).
pub(crate) fn random_token() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_tokens_are_long_and_distinct() {
        let a = random_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token());
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
