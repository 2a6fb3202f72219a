//! Queries behind event subscriptions: creating one (its signing secret sealed like
//! every integration secret), listing, moving the cursor back for a replay, and what
//! the deliverer reads and records.
//!
//! **The signing secret.** It is stored with [`crate::auth::secrets::set_secret`] under
//! the name `subscription.<id>`: sealed with AES-256-GCM under the master key, bound to
//! its tenant and name, audited as `secrets.set`, and re-sealed by `aro secrets
//! rotate-key` with every other secret. The `subscriptions` row's own
//! `secret_nonce`/`secret_ciphertext` columns stay empty: a copy there would not be
//! re-sealed by a key rotation and would stop opening.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::json;

use super::subscriptions::SubscriptionError;
use crate::audit::{self, Actor, NewEntry};
use crate::auth::secrets;
use crate::config::Secret;
use crate::crypto::Key;
use crate::store::models::to_naive;
use crate::store::schema::subscriptions;
use crate::store::DbConnection;

/// Subscription statuses.
pub const ACTIVE: &str = "active";
/// The longest wait between two attempts of a failing delivery.
pub const MAX_BACKOFF_SECS: i64 = 300;

/// A subscription, without its secret columns.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = subscriptions)]
pub struct SubscriptionRow {
    pub id: String,
    pub tenant_id: String,
    pub url: String,
    /// A JSON array of event types; empty for every type.
    pub event_types: String,
    pub status: String,
    /// The `seq` of the last event delivered (or skipped by a replay's start).
    pub cursor: i64,
    pub attempts: i32,
    pub next_attempt_at: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl SubscriptionRow {
    /// The event types it receives (empty: all).
    pub fn types(&self) -> Vec<String> {
        serde_json::from_str(&self.event_types).unwrap_or_default()
    }
}

/// The integration-secret name of a subscription's signing secret.
pub fn secret_name(subscription_id: &str) -> String {
    format!("subscription.{subscription_id}")
}

/// A subscription to create.
#[derive(Debug)]
pub struct NewSubscription {
    pub id: String,
    pub tenant_id: String,
    pub url: String,
    pub secret: Secret<String>,
    pub event_types: Vec<String>,
    /// Deliver events after this cursor.
    pub cursor: i64,
}

/// Creates a subscription, seals its secret and audits both, in one transaction.
pub fn create(
    conn: &mut DbConnection,
    master: &Key,
    new: &NewSubscription,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<SubscriptionRow, SubscriptionError> {
    let at = to_naive(now);
    conn.transaction(|conn| {
        diesel::insert_into(subscriptions::table)
            .values((
                subscriptions::id.eq(&new.id),
                subscriptions::tenant_id.eq(&new.tenant_id),
                subscriptions::url.eq(&new.url),
                subscriptions::secret_nonce.eq(Vec::<u8>::new()),
                subscriptions::secret_ciphertext.eq(Vec::<u8>::new()),
                subscriptions::event_types.eq(json!(new.event_types).to_string()),
                subscriptions::status.eq(ACTIVE),
                subscriptions::cursor.eq(new.cursor),
                subscriptions::attempts.eq(0),
                subscriptions::next_attempt_at.eq(None::<NaiveDateTime>),
                subscriptions::last_error.eq(None::<String>),
                subscriptions::created_at.eq(at),
                subscriptions::updated_at.eq(at),
            ))
            .execute(conn)?;
        secrets::set_secret(
            conn,
            master,
            &new.tenant_id,
            &secret_name(&new.id),
            new.secret.expose(),
            actor,
            now,
        )?;
        audit::record(
            conn,
            &NewEntry::new(&new.tenant_id, actor.clone(), "subscription.created")
                .at(now)
                .subject("subscription", &new.id)
                .details(json!({"eventTypes": new.event_types, "cursor": new.cursor})),
        )?;
        find(conn, &new.tenant_id, &new.id)?.ok_or(SubscriptionError::NotFound)
    })
}

/// The subscription `id` of `tenant_id`.
pub fn find(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
) -> Result<Option<SubscriptionRow>, SubscriptionError> {
    Ok(subscriptions::table
        .filter(subscriptions::tenant_id.eq(tenant_id))
        .filter(subscriptions::id.eq(id))
        .select(SubscriptionRow::as_select())
        .first(conn)
        .optional()?)
}

/// A tenant's subscriptions, oldest first.
pub fn list(
    conn: &mut DbConnection,
    tenant_id: &str,
) -> Result<Vec<SubscriptionRow>, SubscriptionError> {
    Ok(subscriptions::table
        .filter(subscriptions::tenant_id.eq(tenant_id))
        .order((subscriptions::created_at.asc(), subscriptions::id.asc()))
        .select(SubscriptionRow::as_select())
        .load(conn)?)
}

/// Moves the cursor to `after` (events after it are delivered again, in order) and
/// clears any backoff.
pub fn replay(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
    after: i64,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<SubscriptionRow, SubscriptionError> {
    conn.transaction(|conn| {
        let changed = diesel::update(
            subscriptions::table
                .filter(subscriptions::tenant_id.eq(tenant_id))
                .filter(subscriptions::id.eq(id)),
        )
        .set((
            subscriptions::cursor.eq(after),
            subscriptions::attempts.eq(0),
            subscriptions::next_attempt_at.eq(None::<NaiveDateTime>),
            subscriptions::last_error.eq(None::<String>),
            subscriptions::updated_at.eq(to_naive(now)),
        ))
        .execute(conn)?;
        if changed == 0 {
            return Err(SubscriptionError::NotFound);
        }
        audit::record(
            conn,
            &NewEntry::new(tenant_id, actor.clone(), "subscription.replayed")
                .at(now)
                .subject("subscription", id)
                .details(json!({"after": after})),
        )?;
        find(conn, tenant_id, id)?.ok_or(SubscriptionError::NotFound)
    })
}

/// Active subscriptions of every tenant whose next attempt is due, and whether any
/// subscription is active at all.
pub fn due(
    conn: &mut DbConnection,
    now: DateTime<Utc>,
) -> Result<(Vec<SubscriptionRow>, bool), SubscriptionError> {
    let active: i64 = subscriptions::table
        .filter(subscriptions::status.eq(ACTIVE))
        .count()
        .get_result(conn)?;
    if active == 0 {
        return Ok((Vec::new(), false));
    }
    let rows = subscriptions::table
        .filter(subscriptions::status.eq(ACTIVE))
        .filter(
            subscriptions::next_attempt_at
                .is_null()
                .or(subscriptions::next_attempt_at.le(to_naive(now))),
        )
        .order(subscriptions::id.asc())
        .select(SubscriptionRow::as_select())
        .load(conn)?;
    Ok((rows, true))
}

/// The subscription's signing secret.
pub fn signing_secret(
    conn: &mut DbConnection,
    master: &Key,
    tenant_id: &str,
    id: &str,
) -> Result<Option<Secret<String>>, SubscriptionError> {
    Ok(secrets::get_secret(
        conn,
        master,
        tenant_id,
        &secret_name(id),
    )?)
}

/// Records a delivered event: the cursor moves from `from` to `to` and the backoff
/// clears. `false` when the cursor was moved meanwhile (a replay): nothing changed.
pub fn advance(
    conn: &mut DbConnection,
    id: &str,
    from: i64,
    to: i64,
    now: DateTime<Utc>,
) -> Result<bool, SubscriptionError> {
    let changed = diesel::update(
        subscriptions::table
            .filter(subscriptions::id.eq(id))
            .filter(subscriptions::cursor.eq(from)),
    )
    .set((
        subscriptions::cursor.eq(to),
        subscriptions::attempts.eq(0),
        subscriptions::next_attempt_at.eq(None::<NaiveDateTime>),
        subscriptions::last_error.eq(None::<String>),
        subscriptions::updated_at.eq(to_naive(now)),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

/// The wait before attempt `attempts + 1` after `attempts` failures: 1 s, 2 s, 4 s, …
/// up to [`MAX_BACKOFF_SECS`].
pub fn backoff(attempts: i32) -> Duration {
    let exponent = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    Duration::seconds((1i64 << exponent).min(MAX_BACKOFF_SECS))
}

/// Records a failed attempt at the event after `cursor`: one more attempt, the next
/// one after the backoff. Ignored when the cursor was moved meanwhile.
pub fn failed(
    conn: &mut DbConnection,
    id: &str,
    cursor: i64,
    error: &str,
    now: DateTime<Utc>,
) -> Result<(), SubscriptionError> {
    // Written first: on SQLite a transaction that starts with a read may not be able to
    // upgrade to a write.
    let matching = || {
        subscriptions::table
            .filter(subscriptions::id.eq(id))
            .filter(subscriptions::cursor.eq(cursor))
    };
    conn.transaction(|conn| {
        let changed = diesel::update(matching())
            .set((
                subscriptions::attempts.eq(subscriptions::attempts + 1),
                subscriptions::last_error.eq(Some(error)),
                subscriptions::updated_at.eq(to_naive(now)),
            ))
            .execute(conn)?;
        if changed == 0 {
            return Ok(());
        }
        let attempts: i32 = matching().select(subscriptions::attempts).first(conn)?;
        diesel::update(matching())
            .set(subscriptions::next_attempt_at.eq(Some(to_naive(now + backoff(attempts)))))
            .execute(conn)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        let secs: Vec<i64> = [1, 2, 3, 4, 9, 10, 50]
            .into_iter()
            .map(|n| backoff(n).num_seconds())
            .collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 256, 300, 300]);
    }
}
