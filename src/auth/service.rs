//! The login and logout flows, free of actix: lockout, password check (off the async
//! executor), session creation and their audit entries. Handlers in `routes` call
//! these; tests and other front ends can too.
//!
//! Audit entries written here: `auth.login.succeeded`, `auth.login.failed` (reason
//! `unknown_user`, `bad_password` or `disabled`), `auth.login.locked` (the failure that
//! locked the pair), `auth.login.refused` (an attempt while locked) and `auth.logout`.
//! A caller who is not a known user is named by a pseudonym of what they typed (a
//! truncated hash), never the text itself: people type passwords into username fields.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::lockout::{self, Begin};
use super::models::AdminUserRow;
use super::sessions::{self, NewSession};
use super::{password, sha256_hex, users, AuthError, Principal, Role};
use crate::audit::{self, Actor, NewEntry};
use crate::config::Secret;
use crate::store::{tenant_queries, Database, DbConnection};

/// Runs `work` on the blocking pool with a pooled connection, flattening the errors.
pub async fn run<T, F>(db: &Database, work: F) -> Result<T, AuthError>
where
    F: FnOnce(&mut DbConnection) -> Result<T, AuthError> + Send + 'static,
    T: Send + 'static,
{
    db.run(move |conn| Ok(work(conn))).await?
}

/// A login attempt.
#[derive(Debug, Clone)]
pub struct LoginRequest {
    pub tenant_id: String,
    pub username: String,
    pub password: Secret<String>,
    /// The client's address (the lockout pairs it with the username).
    pub address: String,
    pub user_agent: Option<String>,
}

/// A successful login: the user and the session to hand to the browser.
#[derive(Debug, Clone)]
pub struct LoginOutcome {
    pub user: AdminUserRow,
    pub role: Role,
    pub session: NewSession,
}

/// An opaque, stable name for a username that may not exist.
fn pseudonym(username: &str) -> String {
    let digest = sha256_hex(&[b"aro-username-v1:", username.as_bytes()]);
    format!("username:{}", &digest[..16])
}

/// Checks the credentials and opens a session, or says why not.
pub async fn login(db: &Database, request: LoginRequest) -> Result<LoginOutcome, AuthError> {
    let now = Utc::now();
    let key = lockout::attempt_username(&request.username);
    let LoginRequest {
        tenant_id,
        password: typed,
        address,
        user_agent,
        ..
    } = request;

    let (attempt_id, user) = {
        let (tenant_id, key, address) = (tenant_id.clone(), key.clone(), address.clone());
        run(db, move |conn| {
            // No user exists in an unknown tenant (and nothing can be recorded there).
            if tenant_queries::find(conn, &tenant_id)?.is_none() {
                return Err(AuthError::InvalidCredentials);
            }
            match lockout::begin(conn, &tenant_id, &key, &address, now)? {
                Begin::Locked { until } => {
                    audit::record(
                        conn,
                        &NewEntry::new(
                            &tenant_id,
                            Actor::anonymous(pseudonym(&key)),
                            "auth.login.refused",
                        )
                        .at(now)
                        .details(json!({
                            "reason": "locked",
                            "address": address,
                            "lockedUntil": until.and_utc().to_rfc3339(),
                        })),
                    )?;
                    let left = (until - now.naive_utc()).num_seconds().max(1);
                    Err(AuthError::LockedOut {
                        retry_after_secs: left.unsigned_abs(),
                    })
                }
                Begin::Proceed { attempt_id } => {
                    let user = match users::normalize_username(&key) {
                        Ok(name) => users::find_by_username(conn, &tenant_id, &name)?,
                        Err(_) => None,
                    };
                    Ok((attempt_id, user))
                }
            }
        })
        .await?
    };

    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let verified = tokio::task::spawn_blocking(move || match stored {
        Some(hash) => password::verify(typed.expose(), &hash),
        None => {
            password::verify_dummy(typed.expose());
            false
        }
    })
    .await
    .map_err(|e| AuthError::Hash(e.to_string()))?;

    match user {
        Some(user) if verified && !user.disabled => {
            let role = user.role()?;
            run(db, move |conn| {
                succeed(
                    conn,
                    &attempt_id,
                    user,
                    role,
                    &address,
                    user_agent.as_deref(),
                    now,
                )
            })
            .await
        }
        user => {
            let reason = match &user {
                None => "unknown_user",
                Some(u) if u.disabled => "disabled",
                Some(_) => "bad_password",
            };
            let actor = user
                .as_ref()
                .map_or_else(|| Actor::anonymous(pseudonym(&key)), |u| Actor::user(&u.id));
            run(db, move |conn| {
                failed(conn, &tenant_id, &key, &address, actor, reason, now)
            })
            .await?;
            Err(AuthError::InvalidCredentials)
        }
    }
}

fn succeed(
    conn: &mut DbConnection,
    attempt_id: &str,
    user: AdminUserRow,
    role: Role,
    address: &str,
    user_agent: Option<&str>,
    now: DateTime<Utc>,
) -> Result<LoginOutcome, AuthError> {
    use diesel::Connection;
    let session = conn.transaction(|conn| {
        lockout::mark_success(conn, attempt_id)?;
        let session = sessions::create(conn, &user, address, user_agent, now)?;
        users::touch_login(conn, &user.id, now)?;
        audit::record(
            conn,
            &NewEntry::new(
                &user.tenant_id,
                Actor::user(&user.id),
                "auth.login.succeeded",
            )
            .at(now)
            .subject("admin_user", &user.id)
            .details(json!({"address": address, "role": role})),
        )?;
        Ok::<_, AuthError>(session)
    })?;
    // Housekeeping; a failure here does not undo the login.
    if let Err(err) = sessions::delete_expired(conn, now).and_then(|_| lockout::prune(conn, now)) {
        tracing::warn!(error = %err, "cannot prune expired sessions or old login attempts");
    }
    Ok(LoginOutcome {
        user,
        role,
        session,
    })
}

fn failed(
    conn: &mut DbConnection,
    tenant_id: &str,
    key: &str,
    address: &str,
    actor: Actor,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), AuthError> {
    audit::record(
        conn,
        &NewEntry::new(tenant_id, actor.clone(), "auth.login.failed")
            .at(now)
            .details(json!({"reason": reason, "address": address})),
    )?;
    if let Some(until) = lockout::current_lock(conn, tenant_id, key, address, now, None)? {
        tracing::warn!(address, "login locked after repeated failures");
        audit::record(
            conn,
            &NewEntry::new(tenant_id, actor, "auth.login.locked")
                .at(now)
                .details(json!({
                    "address": address,
                    "lockedUntil": until.and_utc().to_rfc3339(),
                })),
        )?;
    }
    Ok(())
}

/// Ends the principal's session (a token has none: nothing happens).
pub async fn logout(db: &Database, principal: &Principal) -> Result<(), AuthError> {
    let Some(session_id) = principal.session_id().map(str::to_string) else {
        return Ok(());
    };
    let tenant_id = principal.tenant_id.clone();
    let actor = principal.actor();
    let now = Utc::now();
    run(db, move |conn| {
        use diesel::Connection;
        conn.transaction(|conn| {
            sessions::delete(conn, &session_id)?;
            audit::record(
                conn,
                &NewEntry::new(&tenant_id, actor, "auth.logout").at(now),
            )?;
            Ok(())
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_stable_and_hide_the_text() {
        let a = pseudonym("hunter2-typed-in-username");
        assert_eq!(a, pseudonym("hunter2-typed-in-username"));
        assert!(!a.contains("hunter2"));
        assert_ne!(a, pseudonym("ann"));
    }
}
