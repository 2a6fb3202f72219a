//! API tokens: `aro_` followed by 32 random bytes in base64url, shown once when created
//! and stored as their SHA-256. Each is scoped to one tenant and one role, may expire,
//! can be revoked, and records when it was last used (at most once a minute).

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use serde_json::json;

use super::models::ApiTokenRow;
use super::{random_token, sha256_hex, AuthError, Role};
use crate::audit::{self, Actor, NewEntry};
use crate::config::Secret;
use crate::store::schema::api_tokens;
use crate::store::DbConnection;

pub const PREFIX: &str = "aro_";
/// `aro_` and 43 base64url characters.
pub const TOKEN_LENGTH: usize = 47;
/// Uses closer together than this do not write `last_used_at`.
const TOUCH_AFTER: Duration = Duration::seconds(60);
const MAX_NAME: usize = 100;

/// What the table stores for a token.
pub fn token_hash(token: &str) -> String {
    sha256_hex(&[token.as_bytes()])
}

/// Whether `text` has the shape of a token (before looking it up).
pub fn looks_like_token(text: &str) -> bool {
    text.len() == TOKEN_LENGTH
        && text.starts_with(PREFIX)
        && text[PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A token just created; `token` is shown to its owner once and never again.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub row: ApiTokenRow,
    pub token: Secret<String>,
}

/// A token's name: 1–100 printable characters.
pub fn validate_name(name: &str) -> Result<String, AuthError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(AuthError::Invalid {
            field: "name",
            message: format!("a token name has 1 to {MAX_NAME} printable characters"),
        });
    }
    Ok(name.to_string())
}

/// Creates a token and its `auth.token.created` audit entry in one transaction.
pub fn create(
    conn: &mut DbConnection,
    tenant_id: &str,
    name: &str,
    role: Role,
    expires_at: Option<DateTime<Utc>>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<IssuedToken, AuthError> {
    let name = validate_name(name)?;
    if expires_at.is_some_and(|at| at <= now) {
        return Err(AuthError::Invalid {
            field: "expiresAt",
            message: "a token's expiry must be in the future".to_string(),
        });
    }
    let token = format!("{PREFIX}{}", random_token());
    let row = ApiTokenRow {
        id: uuid::Uuid::now_v7().to_string(),
        tenant_id: tenant_id.to_string(),
        token_hash: token_hash(&token),
        name,
        role: role.as_str().to_string(),
        created_at: now.naive_utc(),
        last_used_at: None,
        expires_at: expires_at.map(|at| at.naive_utc()),
        revoked_at: None,
    };
    conn.transaction(|conn| {
        diesel::insert_into(api_tokens::table)
            .values(&row)
            .execute(conn)?;
        audit::record(
            conn,
            &NewEntry::new(tenant_id, actor.clone(), "auth.token.created")
                .at(now)
                .subject("api_token", &row.id)
                .details(json!({
                    "role": row.role,
                    "expiresAt": expires_at.map(|at| at.to_rfc3339()),
                })),
        )?;
        Ok::<_, AuthError>(())
    })?;
    Ok(IssuedToken {
        row,
        token: Secret::new(token),
    })
}

/// The live token with this value (not revoked, not expired), its use recorded.
pub fn authenticate(
    conn: &mut DbConnection,
    presented: &str,
    now: DateTime<Utc>,
) -> QueryResult<Option<ApiTokenRow>> {
    if !looks_like_token(presented) {
        return Ok(None);
    }
    let at = now.naive_utc();
    let found = api_tokens::table
        .filter(api_tokens::token_hash.eq(token_hash(presented)))
        .filter(api_tokens::revoked_at.is_null())
        .select(ApiTokenRow::as_select())
        .first(conn)
        .optional()?;
    let Some(mut row) = found else {
        return Ok(None);
    };
    if row.expires_at.is_some_and(|expiry| expiry <= at) {
        return Ok(None);
    }
    if row.last_used_at.is_none_or(|used| at - used >= TOUCH_AFTER) {
        diesel::update(api_tokens::table.find(&row.id))
            .set(api_tokens::last_used_at.eq(Some(at)))
            .execute(conn)?;
        row.last_used_at = Some(at);
    }
    Ok(Some(row))
}

/// Revokes a tenant's token (with an `auth.token.revoked` audit entry). Revoking a
/// revoked token changes nothing and answers the row as it is.
pub fn revoke(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<ApiTokenRow, AuthError> {
    conn.transaction(|conn| {
        let changed = diesel::update(
            api_tokens::table
                .filter(api_tokens::id.eq(id))
                .filter(api_tokens::tenant_id.eq(tenant_id))
                .filter(api_tokens::revoked_at.is_null()),
        )
        .set(api_tokens::revoked_at.eq(Some(now.naive_utc())))
        .execute(conn)?;
        let row = api_tokens::table
            .filter(api_tokens::id.eq(id))
            .filter(api_tokens::tenant_id.eq(tenant_id))
            .select(ApiTokenRow::as_select())
            .first(conn)
            .optional()?
            .ok_or_else(|| AuthError::NotFound(format!("token {id}")))?;
        if changed > 0 {
            audit::record(
                conn,
                &NewEntry::new(tenant_id, actor.clone(), "auth.token.revoked")
                    .at(now)
                    .subject("api_token", id),
            )?;
        }
        Ok(row)
    })
}

/// A tenant's tokens, newest first.
pub fn list(conn: &mut DbConnection, tenant_id: &str) -> QueryResult<Vec<ApiTokenRow>> {
    api_tokens::table
        .filter(api_tokens::tenant_id.eq(tenant_id))
        .order(api_tokens::created_at.desc())
        .select(ApiTokenRow::as_select())
        .load(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_a_recognisable_shape() {
        let token = format!("{PREFIX}{}", random_token());
        assert!(looks_like_token(&token));
        assert!(!looks_like_token("aro_short"));
        assert!(!looks_like_token(&token.replacen("aro_", "xyz_", 1)));
        assert!(!looks_like_token(&format!(
            "{}!",
            &token[..TOKEN_LENGTH - 1]
        )));
        assert_eq!(token_hash(&token).len(), 64);
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(
            validate_name("  ci deploy ").ok().as_deref(),
            Some("ci deploy")
        );
        assert!(validate_name("").is_err());
        assert!(validate_name("a\nb").is_err());
        assert!(validate_name(&"x".repeat(101)).is_err());
    }
}
