//! Queries behind the inbox part of the engine's `Store` port: recording inbound work
//! (a repeat of a (tenant, source, dedup key) is a duplicate, not an error), reading what
//! is pending, recording outcomes, and marking items processed inside an appointment's
//! commit — only while they are still pending, so work takes effect exactly once.

use actors::ports::store::{InboxAccept, InboxRecord, InboxStatus, InboxUpdate, NewInbox};
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::connection::DbConnection;
use super::engine_queries::QueryError;
use super::models::{to_naive, InboxRow, NewDeadLetterRow, NewEscalationRow};
use super::schema::{dead_letters, escalations, inbox};

/// How long dead letters are kept (SPEC §6: 30 days).
const DEAD_LETTER_DAYS: i64 = 30;

type QueryResult<T> = Result<T, QueryError>;

/// Records `item`, or finds that its (tenant, source, dedup key) was recorded before.
pub fn accept(conn: &mut DbConnection, item: &NewInbox) -> QueryResult<InboxAccept> {
    // In a savepoint of its own: on PostgreSQL a failed statement aborts the enclosing
    // transaction unless its savepoint is rolled back. (`ON CONFLICT DO NOTHING` is not
    // available through diesel's MultiConnection.)
    let inserted = conn.transaction(|conn| {
        diesel::insert_into(inbox::table)
            .values(InboxRow::from(item))
            .execute(conn)
    });
    match inserted {
        Ok(_) => Ok(InboxAccept::Accepted),
        // The dedup index: PostgreSQL names the index, SQLite its columns.
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info))
            if info.message().contains("inbox_dedup")
                || info.message().contains("inbox.dedup_key") =>
        {
            Ok(InboxAccept::Duplicate)
        }
        Err(other) => Err(QueryError::Diesel(other)),
    }
}

/// Pending items, oldest first.
pub fn pending(conn: &mut DbConnection, limit: usize) -> QueryResult<Vec<InboxRecord>> {
    let rows: Vec<InboxRow> = inbox::table
        .filter(inbox::status.eq(InboxStatus::Pending.as_str()))
        .order((inbox::received_at.asc(), inbox::id.asc()))
        .limit(i64::try_from(limit).unwrap_or(i64::MAX))
        .select(InboxRow::as_select())
        .load(conn)?;
    rows.into_iter()
        .map(|row| InboxRecord::try_from(row).map_err(QueryError::from))
        .collect()
}

/// Deletes items received before `before` that are no longer pending.
pub fn prune(conn: &mut DbConnection, before: DateTime<Utc>) -> QueryResult<u64> {
    let removed = diesel::delete(
        inbox::table
            .filter(inbox::status.ne(InboxStatus::Pending.as_str()))
            .filter(inbox::received_at.lt(to_naive(before))),
    )
    .execute(conn)?;
    Ok(u64::try_from(removed).unwrap_or(0))
}

/// Marks the items a commit applies as processed; `AlreadyApplied` when one of them
/// is no longer pending (the caller's transaction then writes nothing).
pub fn mark_processed(
    conn: &mut DbConnection,
    ids: &[String],
    now: DateTime<Utc>,
) -> QueryResult<()> {
    for id in ids {
        let changed = diesel::update(
            inbox::table
                .find(id)
                .filter(inbox::status.eq(InboxStatus::Pending.as_str())),
        )
        .set((
            inbox::status.eq(InboxStatus::Processed.as_str()),
            inbox::attempts.eq(inbox::attempts + 1),
            inbox::processed_at.eq(Some(to_naive(now))),
        ))
        .execute(conn)?;
        if changed == 0 {
            return Err(QueryError::AlreadyApplied(format!("inbox {id}")));
        }
    }
    Ok(())
}

/// Records how an attempt ended. Only a pending item changes: when a repeated delivery
/// answers after the item was applied, the first outcome stands.
pub fn update(
    conn: &mut DbConnection,
    update: &InboxUpdate,
    new_id: &mut dyn FnMut() -> String,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let pending = inbox::table
        .find(update.id())
        .filter(inbox::status.eq(InboxStatus::Pending.as_str()));
    let now_naive = to_naive(now);
    match update {
        InboxUpdate::Rejected { error, .. } => {
            diesel::update(pending)
                .set((
                    inbox::status.eq(InboxStatus::Rejected.as_str()),
                    inbox::attempts.eq(inbox::attempts + 1),
                    inbox::last_error.eq(Some(error)),
                    inbox::processed_at.eq(Some(now_naive)),
                ))
                .execute(conn)?;
        }
        InboxUpdate::Retry { error, .. } => {
            diesel::update(pending)
                .set((
                    inbox::attempts.eq(inbox::attempts + 1),
                    inbox::last_error.eq(Some(error)),
                ))
                .execute(conn)?;
        }
        InboxUpdate::Dead {
            id,
            error,
            escalation,
        } => {
            let row: Option<InboxRow> = pending
                .select(InboxRow::as_select())
                .first(conn)
                .optional()?;
            let Some(row) = row else {
                return Ok(());
            };
            diesel::update(inbox::table.find(id))
                .set((
                    inbox::status.eq(InboxStatus::Dead.as_str()),
                    inbox::attempts.eq(inbox::attempts + 1),
                    inbox::last_error.eq(Some(error)),
                    inbox::processed_at.eq(Some(now_naive)),
                ))
                .execute(conn)?;
            diesel::insert_into(dead_letters::table)
                .values(NewDeadLetterRow {
                    id: new_id(),
                    tenant_id: row.tenant_id.clone(),
                    outbox_id: None,
                    domain: "inbox".to_string(),
                    kind: row.source.clone(),
                    payload: row.payload.clone(),
                    error: error.clone(),
                    attempts: row.attempts + 1,
                    status: "open".to_string(),
                    created_at: now_naive,
                    expires_at: to_naive(now + Duration::days(DEAD_LETTER_DAYS)),
                })
                .execute(conn)?;
            diesel::insert_into(escalations::table)
                .values(NewEscalationRow::from(escalation))
                .execute(conn)?;
        }
    }
    Ok(())
}
