//! The Admin API's queries: plain functions over a connection, one module per area,
//! answering serializable views (camelCase JSON). Every query is scoped to the caller's
//! tenant.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::support::Cursor;

/// The columns of an [`appointments::EscalationRow`], in order.
macro_rules! escalation_columns {
    () => {
        (
            $crate::store::schema::escalations::id,
            $crate::store::schema::escalations::appointment_id,
            $crate::store::schema::escalations::customer_id,
            $crate::store::schema::escalations::reason,
            $crate::store::schema::escalations::priority,
            $crate::store::schema::escalations::status,
            $crate::store::schema::escalations::details,
            $crate::store::schema::escalations::created_at,
            $crate::store::schema::escalations::resolved_at,
            $crate::store::schema::escalations::resolved_by,
            $crate::store::schema::escalations::resolution,
        )
    };
}

pub mod appointments;
pub mod customers;
pub mod dead_letters;
pub mod escalations;
pub mod supervisors;

/// One page of a keyset-paginated list.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page from up to `limit + 1` rows: the extra row only says there is more.
    pub fn from_rows(mut rows: Vec<T>, limit: i64, cursor: impl Fn(&T) -> Cursor) -> Self {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if more {
            rows.last().map(|last| cursor(last).encode())
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }
}

pub(crate) fn utc(at: NaiveDateTime) -> DateTime<Utc> {
    at.and_utc()
}

/// A stored JSON document, or its text when it does not parse (shown, not hidden).
pub(crate) fn json_or_text(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}
