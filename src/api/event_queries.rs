//! Reading the event log for the Event API: a tenant's events after a cursor, in `seq`
//! order, and the canonical envelope they are published in (SPEC §7).
//!
//! The cursor is the event's `seq`. Every event is written by the engine store's single
//! writer, one transaction at a time, so `seq` grows in commit order on both backends:
//! a reader that has seen `seq = n` has seen every event below it.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::{json, Value};

use crate::store::models::to_utc;
use crate::store::schema::events;
use crate::store::DbConnection;

/// A row of `events`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = events)]
pub struct EventRow {
    pub seq: i64,
    pub event_id: String,
    pub tenant_id: String,
    pub event_type: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub aggregate_version: i64,
    pub occurred_at: NaiveDateTime,
    pub recorded_at: NaiveDateTime,
    pub profile: String,
    pub payload: String,
    pub workflow_id: Option<String>,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
}

impl EventRow {
    /// The canonical envelope: `{eventId, eventType, occurredAt, tenantId, profile,
    /// aggregate:{type,id,version}, payload, metadata:{workflowId, correlationId,
    /// causationId}}`.
    pub fn envelope(&self) -> Value {
        json!({
            "eventId": self.event_id,
            "eventType": self.event_type,
            "occurredAt": to_utc(self.occurred_at).to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "tenantId": self.tenant_id,
            "profile": self.profile,
            "aggregate": {
                "type": self.aggregate_type,
                "id": self.aggregate_id,
                "version": self.aggregate_version,
            },
            "payload": serde_json::from_str::<Value>(&self.payload)
                .unwrap_or_else(|_| Value::String(self.payload.clone())),
            "metadata": {
                "workflowId": self.workflow_id,
                "correlationId": self.correlation_id,
                "causationId": self.causation_id,
            },
        })
    }
}

/// Up to `limit` events of `tenant_id` after `after`, oldest first; only the given
/// types when `types` is not empty.
pub fn after(
    conn: &mut DbConnection,
    tenant_id: &str,
    after: i64,
    limit: i64,
    types: &[String],
) -> QueryResult<Vec<EventRow>> {
    let mut query = events::table
        .filter(events::tenant_id.eq(tenant_id))
        .filter(events::seq.gt(after))
        .into_boxed();
    if !types.is_empty() {
        query = query.filter(events::event_type.eq_any(types));
    }
    query
        .order(events::seq.asc())
        .limit(limit)
        .select(EventRow::as_select())
        .load(conn)
}

/// The newest `seq` of `tenant_id` (0 when it has no events).
pub fn head(conn: &mut DbConnection, tenant_id: &str) -> QueryResult<i64> {
    let newest: Option<i64> = events::table
        .filter(events::tenant_id.eq(tenant_id))
        .select(diesel::dsl::max(events::seq))
        .first(conn)?;
    Ok(newest.unwrap_or(0))
}

/// Parses a cursor: the decimal `seq` of the last event seen, `0` for the beginning.
pub fn parse_cursor(text: &str) -> Option<i64> {
    let text = text.trim();
    if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<i64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_plain_sequence_numbers() {
        assert_eq!(parse_cursor("0"), Some(0));
        assert_eq!(parse_cursor(" 42 "), Some(42));
        for bad in ["", "-1", "abc", "1.5", "99999999999999999999", "+3"] {
            assert_eq!(parse_cursor(bad), None, "{bad}");
        }
    }
}
