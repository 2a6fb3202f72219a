//! The LLM classifier's monthly budget (`llm.monthly_budget`, SPEC §4): a count of the
//! requests sent per calendar month (UTC), persisted so that it survives restarts.
//!
//! The count lives in the existing `business_config` table (tenant, key → text value)
//! under the key `llm.calls.YYYY-MM`, one row per month, so no migration is needed.
//! A request is reserved *before* it is sent, by one atomic upsert that only increments
//! the count while it is below the limit:
//!
//! ```sql
//! INSERT … VALUES (tenant, 'llm.calls.2026-11', '1', now, 'llm_budget')
//! ON CONFLICT (tenant_id, key) DO UPDATE SET value = value + 1, …
//! WHERE value < limit
//! ```
//!
//! One row changed means the call may go out; none means the month's budget is spent.
//! The check and the increment are one statement, so concurrent replies (or several
//! processes on one PostgreSQL database) can never overspend. Every request sent counts,
//! whether or not it is answered: a timed-out request may still be billed.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};

use crate::store::schema::business_config;
use crate::store::{Database, DbConnection, StoreError};

/// The `business_config.updated_by` of the counter rows.
const UPDATED_BY: &str = "llm_budget";

/// The atomic reserve on SQLite (`?` placeholders).
const RESERVE_SQLITE: &str =
    "INSERT INTO business_config (tenant_id, key, value, updated_at, updated_by) \
     VALUES (?, ?, '1', ?, ?) \
     ON CONFLICT (tenant_id, key) DO UPDATE \
     SET value = CAST(CAST(business_config.value AS BIGINT) + 1 AS TEXT), \
         updated_at = excluded.updated_at \
     WHERE CAST(business_config.value AS BIGINT) < ?";

/// The same on PostgreSQL (`$n` placeholders).
const RESERVE_POSTGRES: &str =
    "INSERT INTO business_config (tenant_id, key, value, updated_at, updated_by) \
     VALUES ($1, $2, '1', $3, $4) \
     ON CONFLICT (tenant_id, key) DO UPDATE \
     SET value = CAST(CAST(business_config.value AS BIGINT) + 1 AS TEXT), \
         updated_at = excluded.updated_at \
     WHERE CAST(business_config.value AS BIGINT) < $5";

/// The `business_config` key counting the requests of `now`'s month.
pub fn month_key(now: DateTime<Utc>) -> String {
    format!("llm.calls.{}", now.format("%Y-%m"))
}

/// One tenant's monthly LLM budget. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LlmBudget {
    db: Database,
    tenant_id: String,
    limit: u64,
}

impl LlmBudget {
    pub fn new(db: Database, tenant_id: impl Into<String>, limit: u64) -> Self {
        Self {
            db,
            tenant_id: tenant_id.into(),
            limit,
        }
    }

    /// The requests allowed per month.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Takes one request from `now`'s month: `true` when it may be sent, `false` when
    /// the month's budget is spent (nothing is counted then).
    pub async fn reserve(&self, now: DateTime<Utc>) -> Result<bool, StoreError> {
        if self.limit == 0 {
            return Ok(false);
        }
        let tenant_id = self.tenant_id.clone();
        let key = month_key(now);
        let limit = i64::try_from(self.limit).unwrap_or(i64::MAX);
        let at = now.naive_utc();
        let changed = self
            .db
            .run(move |conn| {
                let changed = match conn {
                    DbConnection::Sqlite(c) => diesel::sql_query(RESERVE_SQLITE)
                        .bind::<Text, _>(&tenant_id)
                        .bind::<Text, _>(&key)
                        .bind::<Timestamp, _>(at)
                        .bind::<Text, _>(UPDATED_BY)
                        .bind::<BigInt, _>(limit)
                        .execute(c)?,
                    DbConnection::Postgres(c) => diesel::sql_query(RESERVE_POSTGRES)
                        .bind::<Text, _>(&tenant_id)
                        .bind::<Text, _>(&key)
                        .bind::<Timestamp, _>(at)
                        .bind::<Text, _>(UPDATED_BY)
                        .bind::<BigInt, _>(limit)
                        .execute(c)?,
                };
                Ok(changed)
            })
            .await?;
        Ok(changed > 0)
    }

    /// The requests counted in `now`'s month so far.
    pub async fn used(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let tenant_id = self.tenant_id.clone();
        let key = month_key(now);
        let value: Option<String> = self
            .db
            .run(move |conn| {
                Ok(business_config::table
                    .find((&tenant_id, &key))
                    .select(business_config::value)
                    .first(conn)
                    .optional()?)
            })
            .await?;
        Ok(value.and_then(|v| v.trim().parse().ok()).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_per_calendar_month() {
        let at = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .expect("date")
                .with_timezone(&Utc)
        };
        assert_eq!(month_key(at("2026-11-30T23:59:59Z")), "llm.calls.2026-11");
        assert_eq!(month_key(at("2026-12-01T00:00:00Z")), "llm.calls.2026-12");
    }
}
