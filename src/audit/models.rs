//! The `audit_log` row.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use super::chain::HashInput;
use crate::store::schema::audit_log;

/// One stored audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = audit_log)]
#[serde(rename_all = "camelCase")]
pub struct AuditRow {
    pub seq: i64,
    pub tenant_id: String,
    pub occurred_at: NaiveDateTime,
    pub actor_type: String,
    pub actor_id: String,
    pub action: String,
    pub subject_type: Option<String>,
    pub subject_id: Option<String>,
    /// Canonical JSON, hashed exactly as stored.
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRow {
    /// The fields this row's hash covers (its `prev_hash` as stored).
    pub fn hash_input(&self) -> HashInput<'_> {
        HashInput {
            prev_hash: &self.prev_hash,
            seq: self.seq,
            tenant_id: &self.tenant_id,
            occurred_at: self.occurred_at,
            actor_type: &self.actor_type,
            actor_id: &self.actor_id,
            action: &self.action,
            subject_type: self.subject_type.as_deref(),
            subject_id: self.subject_id.as_deref(),
            details: &self.details,
        }
    }
}
