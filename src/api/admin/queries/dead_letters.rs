//! Dead letters (SPEC §6: kept 30 days, replay or archive): the list (filter by status
//! and domain; keyset-paginated by `(created_at, id)`, oldest first; phone numbers in
//! payloads masked), and the bookkeeping of a replay or an archive with its audit entry.
//!
//! A dead letter is `open` until someone acts: `replayed` (its outbox row is queued
//! again, by the messaging supervisor) or `archived` (kept for the record, not retried).
//! Dead letters of inbound work (domain `inbox`, no outbox row) can only be archived.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::Value;

use super::super::error::AdminError;
use super::super::support::{mask_phone, Cursor};
use super::{json_or_text, utc, Page};
use crate::audit::{self, NewEntry};
use crate::store::schema::dead_letters;
use crate::store::DbConnection;

pub const OPEN: &str = "open";
pub const REPLAYED: &str = "replayed";
pub const ARCHIVED: &str = "archived";

/// Which dead letters a list returns.
#[derive(Debug, Clone)]
pub struct DeadLetterFilter {
    pub tenant_id: String,
    pub status: Option<String>,
    pub domain: Option<String>,
    pub after: Option<Cursor>,
    pub limit: i64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetterView {
    pub id: String,
    pub outbox_id: Option<String>,
    pub domain: String,
    pub kind: String,
    /// The work as it was queued, phone numbers masked.
    pub payload: Value,
    pub error: String,
    pub attempts: i32,
    pub status: String,
    pub replayable: bool,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
}

type Row = (
    String,
    Option<String>,
    String,
    String,
    String,
    String,
    i32,
    String,
    NaiveDateTime,
    NaiveDateTime,
    Option<NaiveDateTime>,
    Option<String>,
);

macro_rules! columns {
    () => {
        (
            dead_letters::id,
            dead_letters::outbox_id,
            dead_letters::domain,
            dead_letters::kind,
            dead_letters::payload,
            dead_letters::error,
            dead_letters::attempts,
            dead_letters::status,
            dead_letters::created_at,
            dead_letters::expires_at,
            dead_letters::resolved_at,
            dead_letters::resolved_by,
        )
    };
}

fn view(
    (
        id,
        outbox_id,
        domain,
        kind,
        payload,
        error,
        attempts,
        status,
        created_at,
        expires_at,
        resolved_at,
        resolved_by,
    ): Row,
) -> DeadLetterView {
    let mut payload = json_or_text(&payload);
    mask_phones(&mut payload);
    DeadLetterView {
        replayable: outbox_id.is_some() && status == OPEN,
        id,
        outbox_id,
        domain,
        kind,
        payload,
        error,
        attempts,
        status,
        created_at: utc(created_at),
        expires_at: utc(expires_at),
        resolved_at: resolved_at.map(utc),
        resolved_by,
    }
}

/// Masks every string in `value` that is a phone number in E.164 form.
pub fn mask_phones(value: &mut Value) {
    match value {
        Value::String(text) if crate::config::values::is_e164(text) => {
            *text = mask_phone(text);
        }
        Value::Array(items) => items.iter_mut().for_each(mask_phones),
        Value::Object(map) => map.values_mut().for_each(mask_phones),
        _ => {}
    }
}

/// One page of dead letters, oldest first.
pub fn list(
    conn: &mut DbConnection,
    filter: &DeadLetterFilter,
) -> Result<Page<DeadLetterView>, AdminError> {
    let mut query = dead_letters::table
        .filter(dead_letters::tenant_id.eq(filter.tenant_id.clone()))
        .select(columns!())
        .order((dead_letters::created_at.asc(), dead_letters::id.asc()))
        .limit(filter.limit + 1)
        .into_boxed();
    if let Some(status) = &filter.status {
        query = query.filter(dead_letters::status.eq(status.clone()));
    }
    if let Some(domain) = &filter.domain {
        query = query.filter(dead_letters::domain.eq(domain.clone()));
    }
    if let Some(after) = &filter.after {
        query = query.filter(
            dead_letters::created_at
                .gt(after.at)
                .or(dead_letters::created_at
                    .eq(after.at)
                    .and(dead_letters::id.gt(after.id.clone()))),
        );
    }
    let rows: Vec<Row> = query.load(conn)?;
    Ok(Page::from_rows(
        rows.into_iter().map(view).collect(),
        filter.limit,
        |d| Cursor {
            at: d.created_at.naive_utc(),
            id: d.id.clone(),
        },
    ))
}

/// The dead letter `id` of `tenant_id`.
pub fn find(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
) -> Result<Option<DeadLetterView>, AdminError> {
    let row: Option<Row> = dead_letters::table
        .filter(dead_letters::tenant_id.eq(tenant_id))
        .filter(dead_letters::id.eq(id))
        .select(columns!())
        .first(conn)
        .optional()?;
    Ok(row.map(view))
}

/// After the supervisor replayed the dead letter `id` (status `replayed`): records who
/// did it, and the audit entry, in one transaction.
pub fn record_replay(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
    by: &str,
    audit_entry: &NewEntry,
) -> Result<Option<DeadLetterView>, AdminError> {
    conn.transaction(|conn| {
        diesel::update(
            dead_letters::table
                .filter(dead_letters::tenant_id.eq(tenant_id))
                .filter(dead_letters::id.eq(id))
                .filter(dead_letters::status.eq(REPLAYED)),
        )
        .set(dead_letters::resolved_by.eq(Some(by)))
        .execute(conn)?;
        audit::record(conn, audit_entry)?;
        find(conn, tenant_id, id)
    })
}

/// Archives an open dead letter and appends the audit entry in one transaction; `None`
/// when it is not open (nothing was written).
pub fn archive(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
    by: &str,
    at: DateTime<Utc>,
    audit_entry: &NewEntry,
) -> Result<Option<DeadLetterView>, AdminError> {
    conn.transaction(|conn| {
        let changed = diesel::update(
            dead_letters::table
                .filter(dead_letters::tenant_id.eq(tenant_id))
                .filter(dead_letters::id.eq(id))
                .filter(dead_letters::status.eq(OPEN)),
        )
        .set((
            dead_letters::status.eq(ARCHIVED),
            dead_letters::resolved_at.eq(Some(at.naive_utc())),
            dead_letters::resolved_by.eq(Some(by)),
        ))
        .execute(conn)?;
        if changed == 0 {
            return Ok(None);
        }
        audit::record(conn, audit_entry)?;
        find(conn, tenant_id, id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_in_payloads_are_masked() {
        let mut payload = serde_json::json!({
            "to": "+15559876543",
            "body": "See you at 3",
            "nested": [{"phone": "+447700900123"}],
            "count": 3
        });
        mask_phones(&mut payload);
        assert_eq!(payload["to"], "*******6543");
        assert_eq!(payload["nested"][0]["phone"], "********0123");
        assert_eq!(payload["body"], "See you at 3");
    }
}
