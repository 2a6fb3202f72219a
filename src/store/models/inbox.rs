//! The `inbox` table's row and its conversions to the engine's inbox records.

use actors::ports::store::{InboxRecord, InboxStatus, NewInbox};
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::engine::{corrupt, json_text, parse_json, to_naive, to_utc, CorruptRow};
use crate::store::schema::inbox;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = inbox)]
pub struct InboxRow {
    pub id: String,
    pub tenant_id: String,
    pub source: String,
    pub dedup_key: String,
    pub payload: String,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub received_at: NaiveDateTime,
    pub processed_at: Option<NaiveDateTime>,
}

impl From<&NewInbox> for InboxRow {
    fn from(item: &NewInbox) -> Self {
        Self {
            id: item.id.clone(),
            tenant_id: item.tenant_id.clone(),
            source: item.source.clone(),
            dedup_key: item.dedup_key.clone(),
            payload: json_text(&item.payload),
            status: InboxStatus::Pending.as_str().to_string(),
            attempts: 0,
            last_error: None,
            received_at: to_naive(item.received_at),
            processed_at: None,
        }
    }
}

pub fn inbox_status(text: &str) -> Result<InboxStatus, CorruptRow> {
    [
        InboxStatus::Pending,
        InboxStatus::Processed,
        InboxStatus::Rejected,
        InboxStatus::Dead,
    ]
    .into_iter()
    .find(|s| s.as_str() == text)
    .ok_or_else(|| corrupt("inbox.status", text))
}

impl TryFrom<InboxRow> for InboxRecord {
    type Error = CorruptRow;

    fn try_from(row: InboxRow) -> Result<Self, CorruptRow> {
        Ok(Self {
            status: inbox_status(&row.status)?,
            attempts: row.attempts,
            last_error: row.last_error,
            item: NewInbox {
                payload: parse_json("inbox.payload", &row.payload)?,
                id: row.id,
                tenant_id: row.tenant_id,
                source: row.source,
                dedup_key: row.dedup_key,
                received_at: to_utc(row.received_at),
            },
        })
    }
}
