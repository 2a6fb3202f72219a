//! Browser sessions: the `aro_session` cookie, the `sessions` table and CSRF tokens.
//!
//! - The cookie holds 32 random bytes (base64url). The table stores only
//!   `SHA-256("aro-session-v1:" ‖ value)` as the session id, so a copy of the database
//!   cannot be used to sign in.
//! - Sessions last 24 hours from the last request (rolling): a request more than a
//!   minute after the previous one moves `expires_at` to 24 hours from now.
//! - The CSRF token is derived from the cookie's value, `base64url(SHA-256(
//!   "aro-csrf-v1:" ‖ value))`; the table keeps its SHA-256. A page can ask
//!   `GET /v1/auth/me` for it again; another site can neither read the cookie
//!   (`HttpOnly`) nor the answer, so it cannot forge the token.
//! - The cookie: `HttpOnly; SameSite=Strict; Path=/`, plus `Secure` when the public URL
//!   is https; no `Max-Age` (the browser forgets it when closed; the server enforces
//!   the 24 hours).

use actix_web::http::header::{HeaderMap, COOKIE};
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;

use super::models::{AdminUserRow, SessionRow};
use super::{constant_time_eq, random_token, sha256_hex};
use crate::config::Secret;
use crate::store::schema::{admin_users, sessions};
use crate::store::DbConnection;

pub const COOKIE_NAME: &str = "aro_session";
/// A session ends this long after its last request.
pub const SESSION_TTL: Duration = Duration::hours(24);
/// Requests closer together than this do not write the session's new expiry.
pub const BUMP_AFTER: Duration = Duration::seconds(60);
/// Longest user agent kept.
const MAX_USER_AGENT: usize = 256;

/// The table's id for a cookie value.
pub fn session_id(cookie_value: &str) -> String {
    sha256_hex(&[b"aro-session-v1:", cookie_value.as_bytes()])
}

/// The CSRF token of the session with this cookie value.
pub fn csrf_token(cookie_value: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(b"aro-csrf-v1:")
        .chain_update(cookie_value.as_bytes())
        .finalize();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
}

fn csrf_hash(csrf: &str) -> String {
    sha256_hex(&[csrf.as_bytes()])
}

/// Whether `presented` is this session's CSRF token.
pub fn csrf_matches(session: &SessionRow, presented: &str) -> bool {
    constant_time_eq(
        csrf_hash(presented).as_bytes(),
        session.csrf_token_hash.as_bytes(),
    )
}

/// A session just created: the cookie value and CSRF token go to the browser once.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub cookie_value: Secret<String>,
    pub csrf_token: Secret<String>,
    pub row: SessionRow,
}

/// Creates a session for `user`.
pub fn create(
    conn: &mut DbConnection,
    user: &AdminUserRow,
    address: &str,
    user_agent: Option<&str>,
    now: DateTime<Utc>,
) -> QueryResult<NewSession> {
    let value = random_token();
    let csrf = csrf_token(&value);
    let at = now.naive_utc();
    let row = SessionRow {
        id: session_id(&value),
        tenant_id: user.tenant_id.clone(),
        user_id: user.id.clone(),
        csrf_token_hash: csrf_hash(&csrf),
        address: Some(address.to_string()),
        user_agent: user_agent.map(|ua| ua.chars().take(MAX_USER_AGENT).collect()),
        created_at: at,
        last_seen_at: at,
        expires_at: at + SESSION_TTL,
    };
    diesel::insert_into(sessions::table)
        .values(&row)
        .execute(conn)?;
    Ok(NewSession {
        cookie_value: Secret::new(value),
        csrf_token: Secret::new(csrf),
        row,
    })
}

/// The live session for a cookie value and its user: not expired, user not disabled.
pub fn lookup(
    conn: &mut DbConnection,
    cookie_value: &str,
    now: DateTime<Utc>,
) -> QueryResult<Option<(SessionRow, AdminUserRow)>> {
    sessions::table
        .inner_join(admin_users::table)
        .filter(sessions::id.eq(session_id(cookie_value)))
        .filter(sessions::expires_at.gt(now.naive_utc()))
        .filter(admin_users::disabled.eq(false))
        .select((SessionRow::as_select(), AdminUserRow::as_select()))
        .first(conn)
        .optional()
}

/// Rolls the session forward (24 hours from now) unless it was seen within a minute.
pub fn bump(conn: &mut DbConnection, session: &SessionRow, now: DateTime<Utc>) -> QueryResult<()> {
    let at = now.naive_utc();
    if at - session.last_seen_at < BUMP_AFTER {
        return Ok(());
    }
    diesel::update(sessions::table.find(&session.id))
        .set((
            sessions::last_seen_at.eq(at),
            sessions::expires_at.eq(at + SESSION_TTL),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn delete(conn: &mut DbConnection, id: &str) -> QueryResult<usize> {
    diesel::delete(sessions::table.find(id)).execute(conn)
}

/// Removes sessions that ended before `now`.
pub fn delete_expired(conn: &mut DbConnection, now: DateTime<Utc>) -> QueryResult<usize> {
    diesel::delete(sessions::table.filter(sessions::expires_at.le(now.naive_utc()))).execute(conn)
}

/// The `aro_session` value from the request's `Cookie` headers.
pub fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim().trim_matches('"').to_string())
        .filter(|value| !value.is_empty())
}

/// The `Set-Cookie` value that starts a session.
pub fn set_cookie(value: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE_NAME}={value}; Path=/; HttpOnly; SameSite=Strict{secure}")
}

/// The `Set-Cookie` value that ends it in the browser.
pub fn clear_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0; \
         Expires=Thu, 01 Jan 1970 00:00:00 GMT{secure}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    #[test]
    fn ids_and_csrf_tokens_are_derived_not_stored() {
        let value = random_token();
        let id = session_id(&value);
        assert_eq!(id.len(), 64);
        assert_ne!(id, value);
        let csrf = csrf_token(&value);
        assert_ne!(csrf, value);
        assert_eq!(csrf, csrf_token(&value));
        let row = SessionRow {
            id,
            tenant_id: "default".into(),
            user_id: "u".into(),
            csrf_token_hash: csrf_hash(&csrf),
            address: None,
            user_agent: None,
            created_at: Utc::now().naive_utc(),
            last_seen_at: Utc::now().naive_utc(),
            expires_at: Utc::now().naive_utc(),
        };
        assert!(csrf_matches(&row, &csrf));
        assert!(!csrf_matches(&row, "forged"));
        assert!(!csrf_matches(&row, &csrf_token(&random_token())));
    }

    #[test]
    fn the_cookie_is_read_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("a=1; aro_session=abc; b=2"),
        );
        assert_eq!(cookie_value(&headers).as_deref(), Some("abc"));
        headers.insert(COOKIE, HeaderValue::from_static("aro_session_x=1"));
        assert_eq!(cookie_value(&headers), None);
        headers.insert(COOKIE, HeaderValue::from_static("aro_session="));
        assert_eq!(cookie_value(&headers), None);
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_on_https() {
        let plain = set_cookie("v", false);
        assert_eq!(plain, "aro_session=v; Path=/; HttpOnly; SameSite=Strict");
        assert!(set_cookie("v", true).ends_with("; Secure"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
    }
}
