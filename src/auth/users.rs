//! Queries on `admin_users`, and creating a user (with its audit entry).
//!
//! Usernames are case-insensitive: stored trimmed and lower-cased, 1–64 characters of
//! `a-z 0-9 . _ @ + -`. Audit entries name users by id only (a username may be an
//! e-mail address).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde_json::json;

use super::models::AdminUserRow;
use super::{AuthError, Role};
use crate::audit::{self, Actor, NewEntry};
use crate::store::schema::admin_users;
use crate::store::DbConnection;

pub const MAX_USERNAME: usize = 64;

/// The stored form of a username, or why it is not acceptable.
pub fn normalize_username(raw: &str) -> Result<String, AuthError> {
    let name = raw.trim().to_lowercase();
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._@+-".contains(c));
    if name.is_empty() || name.chars().count() > MAX_USERNAME || !valid_chars {
        return Err(AuthError::Invalid {
            field: "username",
            message: format!(
                "a username has 1 to {MAX_USERNAME} characters: letters, digits and . _ @ + -"
            ),
        });
    }
    Ok(name)
}

pub fn find_by_username(
    conn: &mut DbConnection,
    tenant_id: &str,
    username: &str,
) -> QueryResult<Option<AdminUserRow>> {
    admin_users::table
        .filter(admin_users::tenant_id.eq(tenant_id))
        .filter(admin_users::username.eq(username))
        .select(AdminUserRow::as_select())
        .first(conn)
        .optional()
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<AdminUserRow>> {
    admin_users::table
        .find(id)
        .select(AdminUserRow::as_select())
        .first(conn)
        .optional()
}

/// A tenant's users by username.
pub fn list(conn: &mut DbConnection, tenant_id: &str) -> QueryResult<Vec<AdminUserRow>> {
    admin_users::table
        .filter(admin_users::tenant_id.eq(tenant_id))
        .order(admin_users::username.asc())
        .select(AdminUserRow::as_select())
        .load(conn)
}

pub fn touch_login(conn: &mut DbConnection, id: &str, now: DateTime<Utc>) -> QueryResult<()> {
    diesel::update(admin_users::table.find(id))
        .set(admin_users::last_login_at.eq(Some(now.naive_utc())))
        .execute(conn)
        .map(|_| ())
}

/// What [`create`] needs; the password is already checked and hashed.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub tenant_id: String,
    /// Already normalized ([`normalize_username`]).
    pub username: String,
    pub password_hash: String,
    pub role: Role,
}

/// Inserts the user and its `auth.user.created` audit entry in one transaction.
pub fn create(
    conn: &mut DbConnection,
    user: &NewUser,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<AdminUserRow, AuthError> {
    let at = now.naive_utc();
    let row = AdminUserRow {
        id: uuid::Uuid::now_v7().to_string(),
        tenant_id: user.tenant_id.clone(),
        username: user.username.clone(),
        password_hash: user.password_hash.clone(),
        role: user.role.as_str().to_string(),
        disabled: false,
        created_at: at,
        updated_at: at,
        last_login_at: None,
    };
    conn.transaction(|conn| {
        // The insert comes first: it takes SQLite's write lock, and the unique index
        // on (tenant, username) decides a race between two creations.
        diesel::insert_into(admin_users::table)
            .values(&row)
            .execute(conn)
            .map_err(|err| match err {
                DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                    AuthError::Conflict(format!("user {:?}", row.username))
                }
                other => other.into(),
            })?;
        audit::record(
            conn,
            &NewEntry::new(&row.tenant_id, actor.clone(), "auth.user.created")
                .at(now)
                .subject("admin_user", &row.id)
                .details(json!({"role": row.role})),
        )?;
        Ok(row.clone())
    })
}
