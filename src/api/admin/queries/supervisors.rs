//! What the store knows of each provider domain, beside the live supervisors: the
//! persisted circuit-breaker state, outbox rows by status, and open dead letters.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use super::super::error::AdminError;
use super::utc;
use crate::store::schema::{breaker_state, dead_letters, outbox};
use crate::store::DbConnection;

/// A domain's breaker as last persisted.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredBreaker {
    pub state: String,
    pub failure_count: i32,
    pub success_count: i32,
    pub window_started_at: Option<DateTime<Utc>>,
    pub opened_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// One provider domain as the store sees it.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DomainStore {
    pub breaker: Option<StoredBreaker>,
    /// Outbox rows by status (`pending`, `in_flight`, `unknown`, `done`, `dead`).
    pub outbox: BTreeMap<String, i64>,
    pub open_dead_letters: i64,
}

/// Every domain that has a breaker, outbox rows or dead letters, by name.
pub fn by_domain(
    conn: &mut DbConnection,
    tenant_id: &str,
) -> Result<BTreeMap<String, DomainStore>, AdminError> {
    let mut domains: BTreeMap<String, DomainStore> = BTreeMap::new();
    type BreakerRow = (
        String,
        String,
        i32,
        i32,
        Option<NaiveDateTime>,
        Option<NaiveDateTime>,
        NaiveDateTime,
    );
    let breakers: Vec<BreakerRow> = breaker_state::table
        .filter(breaker_state::tenant_id.eq(tenant_id))
        .select((
            breaker_state::domain,
            breaker_state::state,
            breaker_state::failure_count,
            breaker_state::success_count,
            breaker_state::window_started_at,
            breaker_state::opened_at,
            breaker_state::updated_at,
        ))
        .load(conn)?;
    for (domain, state, failure_count, success_count, window, opened, updated) in breakers {
        domains.entry(domain).or_default().breaker = Some(StoredBreaker {
            state,
            failure_count,
            success_count,
            window_started_at: window.map(utc),
            opened_at: opened.map(utc),
            updated_at: utc(updated),
        });
    }
    let counts: Vec<(String, String, i64)> = outbox::table
        .filter(outbox::tenant_id.eq(tenant_id))
        .group_by((outbox::domain, outbox::status))
        .select((outbox::domain, outbox::status, diesel::dsl::count_star()))
        .load(conn)?;
    for (domain, status, n) in counts {
        domains.entry(domain).or_default().outbox.insert(status, n);
    }
    let dead: Vec<(String, i64)> = dead_letters::table
        .filter(dead_letters::tenant_id.eq(tenant_id))
        .filter(dead_letters::status.eq(super::dead_letters::OPEN))
        .group_by(dead_letters::domain)
        .select((dead_letters::domain, diesel::dsl::count_star()))
        .load(conn)?;
    for (domain, n) in dead {
        domains.entry(domain).or_default().open_dead_letters = n;
    }
    Ok(domains)
}
