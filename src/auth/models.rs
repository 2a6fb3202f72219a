//! Rows of the security tables: `admin_users`, `sessions`, `login_attempts`,
//! `api_tokens` and `integration_secrets`. `Debug` leaves out password hashes and
//! ciphertexts.

use std::fmt;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::{AuthError, Role};
use crate::store::schema::{
    admin_users, api_tokens, integration_secrets, login_attempts, sessions,
};

/// An admin user.
#[derive(Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = admin_users)]
pub struct AdminUserRow {
    pub id: String,
    pub tenant_id: String,
    pub username: String,
    /// An argon2id PHC string.
    pub password_hash: String,
    pub role: String,
    pub disabled: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub last_login_at: Option<NaiveDateTime>,
}

impl AdminUserRow {
    /// The stored role; an unknown value (edited by hand) is treated as no access.
    pub fn role(&self) -> Result<Role, AuthError> {
        self.role.parse().map_err(|_| AuthError::Unauthenticated)
    }
}

impl fmt::Debug for AdminUserRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminUserRow")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("role", &self.role)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

/// A signed-in browser. `id` is the SHA-256 of the cookie's value, never the value.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub id: String,
    pub tenant_id: String,
    pub user_id: String,
    /// SHA-256 of the session's CSRF token.
    pub csrf_token_hash: String,
    pub address: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

/// One login attempt for a (username, address) pair. An attempt in progress is
/// recorded as failed and marked successful once the password verified.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = login_attempts)]
pub struct LoginAttemptRow {
    pub id: String,
    pub tenant_id: String,
    pub username: String,
    pub address: String,
    pub success: bool,
    pub attempted_at: NaiveDateTime,
}

/// An API token. `token_hash` is the SHA-256 of the token; the token itself is shown
/// once, when created.
#[derive(Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_tokens)]
pub struct ApiTokenRow {
    pub id: String,
    pub tenant_id: String,
    pub token_hash: String,
    pub name: String,
    pub role: String,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub expires_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

impl ApiTokenRow {
    pub fn role(&self) -> Result<Role, AuthError> {
        self.role.parse().map_err(|_| AuthError::Unauthenticated)
    }
}

impl fmt::Debug for ApiTokenRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiTokenRow")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

/// An integration secret sealed under the master key: `ciphertext` is the sealed
/// buffer's version byte followed by its ciphertext and tag; the nonce is kept apart.
#[derive(Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = integration_secrets)]
pub struct SecretRow {
    pub tenant_id: String,
    pub name: String,
    /// Hex id of the master key that sealed it (`crypto::Key::id`).
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub updated_at: NaiveDateTime,
}

impl fmt::Debug for SecretRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretRow")
            .field("tenant_id", &self.tenant_id)
            .field("name", &self.name)
            .field("key_id", &self.key_id)
            .field("updated_at", &self.updated_at)
            .finish_non_exhaustive()
    }
}
