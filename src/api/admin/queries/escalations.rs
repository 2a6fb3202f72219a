//! Escalations: the staff inbox (filter by status and priority; keyset-paginated by
//! `(created_at, id)`, oldest first) and marking one resolved together with its audit
//! entry.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::Value;

use super::super::error::AdminError;
use super::super::support::Cursor;
use super::appointments::{escalation_view, EscalationRow, EscalationView};
use super::Page;
use crate::audit::{self, NewEntry};
use crate::store::schema::escalations;
use crate::store::DbConnection;

/// Which escalations a list returns.
#[derive(Debug, Clone)]
pub struct EscalationFilter {
    pub tenant_id: String,
    pub status: Option<String>,
    pub priority: Option<String>,
    pub after: Option<Cursor>,
    pub limit: i64,
}

/// One page of escalations, oldest first.
pub fn list(
    conn: &mut DbConnection,
    filter: &EscalationFilter,
) -> Result<Page<EscalationView>, AdminError> {
    let mut query = escalations::table
        .filter(escalations::tenant_id.eq(filter.tenant_id.clone()))
        .select(escalation_columns!())
        .order((escalations::created_at.asc(), escalations::id.asc()))
        .limit(filter.limit + 1)
        .into_boxed();
    if let Some(status) = &filter.status {
        query = query.filter(escalations::status.eq(status.clone()));
    }
    if let Some(priority) = &filter.priority {
        query = query.filter(escalations::priority.eq(priority.clone()));
    }
    if let Some(after) = &filter.after {
        query = query.filter(
            escalations::created_at
                .gt(after.at)
                .or(escalations::created_at
                    .eq(after.at)
                    .and(escalations::id.gt(after.id.clone()))),
        );
    }
    let rows: Vec<EscalationRow> = query.load(conn)?;
    Ok(Page::from_rows(
        rows.into_iter().map(escalation_view).collect(),
        filter.limit,
        |e| Cursor {
            at: e.created_at.naive_utc(),
            id: e.id.clone(),
        },
    ))
}

/// The escalation `id` of `tenant_id`.
pub fn find(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
) -> Result<Option<EscalationView>, AdminError> {
    let row: Option<EscalationRow> = escalations::table
        .filter(escalations::tenant_id.eq(tenant_id))
        .filter(escalations::id.eq(id))
        .select(escalation_columns!())
        .first(conn)
        .optional()?;
    Ok(row.map(escalation_view))
}

/// A resolution to record.
#[derive(Debug, Clone)]
pub struct Resolution {
    pub tenant_id: String,
    pub id: String,
    pub resolution: String,
    /// Who resolved it, as shown to staff (`resolved_by`).
    pub by: String,
    /// Kept in the escalation's details as `resolutionNote` (never audited).
    pub note: Option<String>,
    pub at: DateTime<Utc>,
}

/// Marks an open escalation resolved and appends `audit` in the same transaction.
/// `None` when it is not open (any more): then nothing was written.
pub fn resolve(
    conn: &mut DbConnection,
    resolution: &Resolution,
    audit_entry: &NewEntry,
) -> Result<Option<EscalationView>, AdminError> {
    // Write first: on SQLite a transaction that reads before it writes cannot wait for
    // the write lock held by the engine's writer (it fails at once as "locked").
    conn.transaction(|conn| {
        let row = escalations::table
            .filter(escalations::tenant_id.eq(&resolution.tenant_id))
            .filter(escalations::id.eq(&resolution.id));
        let changed = diesel::update(row.filter(escalations::status.eq("open")))
            .set((
                escalations::status.eq("resolved"),
                escalations::resolved_at.eq(Some(resolution.at.naive_utc())),
                escalations::resolved_by.eq(Some(&resolution.by)),
                escalations::resolution.eq(Some(&resolution.resolution)),
            ))
            .execute(conn)?;
        if changed == 0 {
            return Ok(None);
        }
        if let Some(note) = &resolution.note {
            let text: String = row.select(escalations::details).first(conn)?;
            let mut details: Value = serde_json::from_str(&text)
                .unwrap_or_else(|_| serde_json::json!({"original": text}));
            if let Value::Object(map) = &mut details {
                map.insert("resolutionNote".to_string(), Value::String(note.clone()));
            }
            diesel::update(row)
                .set(escalations::details.eq(details.to_string()))
                .execute(conn)?;
        }
        audit::record(conn, audit_entry)?;
        find(conn, &resolution.tenant_id, &resolution.id)
    })
}
